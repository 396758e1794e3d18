"""Soundscape ecology: acoustic indices of recordings and predicted soundscape maps (torch-free).

- :mod:`engine.ecology.indices`: acoustic indices per recording and per window, computed with
  scikit-maad (the engine extra; imported only when indices are computed).
- :mod:`engine.ecology.table`: reading recordings to compute indices for (pair tables, SoundingEarth,
  a plain folder of audio files, a campaign folder) and the indices CSV with its JSON companion.
- :mod:`engine.ecology.atlas_indices`: computing and storing them in an atlas (format version 2).
- :mod:`engine.ecology.maps`: predicted index and composition layers for every tile of an atlas from
  the stored indices (numpy only, for the app), with a per-tile uncertainty and a 24-hour profile.
"""
