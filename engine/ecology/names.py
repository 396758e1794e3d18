"""The acoustic indices' names and meanings, without scikit-maad: what the app and the stored tables need.

The values are computed by :mod:`engine.ecology.indices` (which imports scikit-maad, the engine extra).
"""

from __future__ import annotations

__all__ = ["COMPOSITION", "DESCRIPTIONS", "INDEX_NAMES"]

INDEX_NAMES = ("ACI", "ADI", "AEI", "BI", "NDSI", "Ht", "Hf", "rBA", "anthropophony_energy", "biophony_energy",
               "biophony_share", "anthropophony_share", "geophony_share")
COMPOSITION = ("biophony_share", "anthropophony_share", "geophony_share")
DESCRIPTIONS = {
    "ACI": "Acoustic Complexity Index (Pieretti et al. 2011), sum over frequency bins",
    "ADI": "Acoustic Diversity Index (Villanueva-Rivera et al. 2011), Shannon",
    "AEI": "Acoustic Evenness Index (Villanueva-Rivera et al. 2011), Gini",
    "BI": "Bioacoustic Index (Boelman et al. 2007) over the biophony band",
    "NDSI": "Normalized Difference Soundscape Index (Kasten et al. 2012): (B - A) / (B + A)",
    "Ht": "temporal entropy of the envelope (Sueur et al. 2008)",
    "Hf": "spectral entropy of the mean spectrum (Sueur et al. 2008)",
    "rBA": "ratio of biophony to anthropophony energy",
    "anthropophony_energy": "power in the anthropophony band (scikit-maad soundscape_index)",
    "biophony_energy": "power in the biophony band (scikit-maad soundscape_index)",
    "biophony_share": "our composition: the non-stationary part of the biophony band, (1 - s) B / (A + B)",
    "anthropophony_share": "our composition: A / (A + B), the anthropophony band's share",
    "geophony_share": "our composition: the stationary part of the biophony band, s B / (A + B) (s: per-bin "
                      "median over mean power)",
}
