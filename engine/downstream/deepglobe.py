"""DeepGlobe 2018 Land Cover as distributed: ``train/<id>_sat.jpg`` (2448×2448 RGB, 50 cm) with
``train/<id>_mask.png``, whose pixels carry one of 7 RGB codes. Torch-free.

The six land-cover classes are scored; "unknown" (black) pixels are ignored, as in the challenge.
The dataset's notes say mask values are not always exactly 0 or 255 and are to be thresholded at 128;
we do that, and refuse a mask whose colours are not the 7 codes (a binarised colour outside them, or
more than 1% of pixels far from both 0 and 255 in some channel: not a DeepGlobe mask at all).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.downstream.decode import read_rgb
from engine.downstream.layouts import refuse_other_dataset
from engine.downstream.metrics import IGNORE
from engine.errors import DatasetError, ImageFileError

log = logging.getLogger(__name__)

CLASSES = ("urban_land", "agriculture_land", "rangeland", "forest_land", "water", "barren_land")
# RGB code -> class index; unknown (black) -> IGNORE.
CODES: dict[tuple[int, int, int], int] = {
    (0, 255, 255): 0,
    (255, 255, 0): 1,
    (255, 0, 255): 2,
    (0, 255, 0): 3,
    (0, 0, 255): 4,
    (255, 255, 255): 5,
    (0, 0, 0): IGNORE,
}
AMBIGUOUS_BAND = (64, 192)  # a channel value in [64, 192) is far from both 0 and 255
AMBIGUOUS_LIMIT = 0.01
_INVALID = -2


def _lookup_table() -> np.ndarray:
    # Index = 4·R + 2·G + B of the binarised colour; the one combination that is no code is invalid.
    table = np.full(8, _INVALID, np.int8)
    for (r, g, b), label in CODES.items():
        table[4 * (r > 127) + 2 * (g > 127) + (b > 127)] = label
    return table


def decode_mask(rgb: np.ndarray, path: str | Path) -> np.ndarray:
    """Turn a DeepGlobe mask (H, W, 3) uint8 into class indices (H, W) int8, unknown = -1.

    Raises:
        ImageFileError: a colour outside the 7 codes, naming ``path`` and the colour.
    """
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ImageFileError(path, "is not an RGB mask", "use the DeepGlobe <id>_mask.png as distributed")
    lo, hi = AMBIGUOUS_BAND
    ambiguous = ((rgb >= lo) & (rgb < hi)).any(axis=2)
    fraction = float(ambiguous.mean())
    if fraction > AMBIGUOUS_LIMIT:
        y, x = np.argwhere(ambiguous)[0]
        raise ImageFileError(path, f"is not a DeepGlobe mask: {100 * fraction:.1f}% of pixels are far from the "
                             f"7 colour codes (e.g. {tuple(int(v) for v in rgb[y, x])} at x={x}, y={y})",
                             "use the <id>_mask.png files as distributed")
    bits = (rgb > 127).astype(np.uint8)
    labels = _lookup_table()[4 * bits[..., 0] + 2 * bits[..., 1] + bits[..., 2]]
    bad = labels == _INVALID
    if bad.any():
        y, x = np.argwhere(bad)[0]
        raise ImageFileError(path, f"colour {tuple(int(v) for v in rgb[y, x])} at x={x}, y={y} is not one of the "
                             f"7 DeepGlobe codes ({int(bad.sum())} pixels)", "use the masks as distributed")
    return labels


def read_mask(path: str | Path) -> np.ndarray:
    """Decode a mask file to class indices (see :func:`decode_mask`)."""
    return decode_mask(read_rgb(path), path)


@dataclass(frozen=True)
class DeepGlobeSamples:
    folder: Path
    ids: list[str]
    images: list[Path]
    masks: list[Path]
    unpaired: list[str]  # satellite images without a mask, skipped


def _id_key(name: str) -> tuple[int, str]:
    return (int(name), name) if name.isdigit() else (1 << 62, name)


def list_deepglobe(root: str | Path) -> DeepGlobeSamples:
    """List ``<id>_sat.jpg`` / ``<id>_mask.png`` pairs in ``root/train`` (or ``root`` itself).

    Satellite images without a mask are skipped and counted (DeepGlobe's valid/ and test/ folders have
    none; only train/ is labelled). Raises :class:`DatasetError` when the root holds no pairs.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(root, "dataset folder not found", "check --root")
    folder = next((f for f in (root / "train", root) if f.is_dir() and next(f.glob("*_sat.jpg"), None)), None)
    if folder is None:
        refuse_other_dataset(root, "DeepGlobe Land Cover", "train/<id>_sat.jpg with train/<id>_mask.png")
    ids, images, masks, unpaired = [], [], [], []
    for sat in sorted(folder.glob("*_sat.jpg"), key=lambda p: _id_key(p.name[: -len("_sat.jpg")])):
        sample_id = sat.name[: -len("_sat.jpg")]
        mask = folder / f"{sample_id}_mask.png"
        if mask.is_file():
            ids.append(sample_id)
            images.append(sat)
            masks.append(mask)
        else:
            unpaired.append(str(sat))
    if unpaired:
        log.warning("DeepGlobe: skipping %d image(s) without a mask, e.g. %s", len(unpaired), unpaired[0])
    if not ids:
        raise DatasetError(folder, "no <id>_sat.jpg has its <id>_mask.png",
                           "use the labelled train/ folder of DeepGlobe Land Cover")
    return DeepGlobeSamples(folder, ids, images, masks, unpaired)


def encode_mask(labels: np.ndarray) -> np.ndarray:
    """Class indices (unknown = -1) back to the RGB codes: for writing predictions and fixtures."""
    out = np.zeros((*labels.shape, 3), np.uint8)
    for colour, label in CODES.items():
        out[labels == label] = colour
    return out
