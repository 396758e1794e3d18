"""Decoding aerial images: the central region of a picture, resized, as uint8 RGB (torch-free).

A recording is made at the centre of its image, so training looks at the central region and crops
from there. Large JPEGs (SoundingEarth's 1024 px) are decoded with libjpeg's DCT scaling (PIL's
draft mode) straight to the smallest scale that still covers the output, which is several times
faster than a full decode followed by a resize.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from engine.errors import ImageFileError

_DECODE_ERRORS = (OSError, SyntaxError, ValueError, UnidentifiedImageError, Image.DecompressionBombError)


def decode_central_region(path: str | Path, region: float, size: int) -> np.ndarray:
    """The central ``region`` fraction of the image's shorter side, resized to ``size`` x ``size``.

    Args:
        path: any image PIL reads (JPEG, PNG, TIFF ...); greyscale and RGBA become RGB.
        region: fraction of the shorter side kept around the centre, in (0, 1].
        size: output side in pixels.
    Returns:
        uint8 array (size, size, 3).
    Raises:
        ImageFileError: missing, corrupt or truncated file.
    """
    path = Path(path)
    try:
        with Image.open(path) as im:
            w, h = im.size
            side = min(w, h) * region
            if im.format == "JPEG":
                # Ask for the smallest DCT scale at which the kept region still has >= size pixels.
                im.draft("RGB", (math.ceil(w * size / side), math.ceil(h * size / side)))
            scale = im.size[0] / w
            half = side * scale / 2
            cx, cy = im.size[0] / 2, im.size[1] / 2
            rgb = im.convert("RGB")
            out = rgb.resize((size, size), Image.Resampling.BILINEAR, box=(cx - half, cy - half, cx + half, cy + half))
            return np.asarray(out, dtype=np.uint8)
    except FileNotFoundError:
        raise ImageFileError(path, "file not found", "check the path or remove the row") from None
    except _DECODE_ERRORS as err:
        message = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ImageFileError(path, f"unreadable image ({message})",
                             "the file is corrupt or truncated; re-copy it or remove the row") from None
