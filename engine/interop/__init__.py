"""Interoperability with other projects' models: importing their released weights as runs.

``engine.interop.conventions`` (torch-free) says what inputs an imported model expects;
``engine.interop.soundingearth`` (torch) reads and converts the SoundingEarth authors' checkpoints.
"""
