"""Decoding images for the downstream datasets, with one-line errors that name the file. Torch-free."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from engine.errors import ImageFileError, brief


def read_rgb(path: str | Path, size: int | None = None) -> np.ndarray:
    """Decode an image file to RGB, optionally resized to ``size``×``size``.

    Args:
        path: a TIFF, JPEG or PNG file.
        size: the side of the square output (bilinear with antialiasing), or None for the native size.

    Returns:
        (H, W, 3) uint8 array.

    Raises:
        ImageFileError: the file is missing, truncated or not an image.
    """
    path = Path(path)
    try:
        with Image.open(path) as img:
            img.load()  # decode now, so a truncated file fails here and not later
            rgb = img.convert("RGB")
    except FileNotFoundError:
        raise ImageFileError(path, "image not found", "restore the file or remove it from the dataset") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as err:
        raise ImageFileError(path, f"cannot be decoded ({_short(err)})",
                             "replace the file with a good copy or delete it") from None
    if size is not None and rgb.size != (size, size):
        rgb = rgb.resize((size, size), Image.BILINEAR)
    return np.array(rgb, dtype=np.uint8)  # a writable copy (torch.from_numpy needs one)


def _short(err: BaseException) -> str:
    return brief(err, limit=120, last_line=True)
