"""Turning an image of any size into the encoder's square uint8 RGB input (torch-free).

The rule (the same in ``embed``, the app and the torch parity path): take the largest centred square,
then resize it to S x S with Pillow's bilinear filter, which widens its support when shrinking (an
area-aware, antialiased reduction). Grey images are repeated to three channels; an alpha channel is
dropped.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from engine.errors import ImageFileError


def to_rgb_uint8(image: np.ndarray, source: str | Path = "image") -> np.ndarray:
    """Return an (H, W, 3) uint8 view or copy of a grey, RGB or RGBA uint8 array."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ImageFileError(source, f"pixels are {image.dtype}, not 8-bit", "convert the image to 8-bit RGB")
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] not in (1, 3, 4):
        raise ImageFileError(source, f"unexpected image shape {image.shape}", "use an RGB image")
    if image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    return image[:, :, :3]


def prepare_image(image: np.ndarray, size: int, source: str | Path = "image") -> np.ndarray:
    """Centre-crop to a square and resize to ``size`` (see the module docstring).

    Args:
        image: (H, W), (H, W, 3) or (H, W, 4) uint8.
        size: S, the bundle's ``image.size``.
        source: named in errors.

    Returns:
        (S, S, 3) uint8, C-contiguous.
    """
    rgb = to_rgb_uint8(image, source)
    h, w = rgb.shape[:2]
    if h < 1 or w < 1:
        raise ImageFileError(source, "image is empty", "use a non-empty image")
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    square = rgb[top:top + side, left:left + side]
    if side == size:
        return np.ascontiguousarray(square)
    resized = Image.fromarray(np.ascontiguousarray(square)).resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(resized, dtype=np.uint8)


def read_image_file(path: str | Path) -> np.ndarray:
    """Decode an image file (JPEG, PNG, TIFF, ... anything Pillow reads) to (H, W, 3) uint8 RGB.

    Raises:
        ImageFileError: missing, empty, not an image, truncated or corrupt.
    """
    path = Path(path)
    if not path.is_file():
        raise ImageFileError(path, "image file not found", "check the path")
    if path.stat().st_size == 0:
        raise ImageFileError(path, "file is empty (0 bytes)", "re-copy the image")
    try:
        with Image.open(path) as img:
            img.load()
            rgb = img.convert("RGB")
    except Image.DecompressionBombError as err:
        raise ImageFileError(path, f"{_megapixels(err)} is more than the {2 * Image.MAX_IMAGE_PIXELS / 1e6:.0f} "
                             "megapixels an image may have here (a guard against decompression bombs)",
                             "shrink or crop it first: the encoder sees only a small square of it; aerial "
                             "imagery goes to 'atlas build --imagery' as a GeoTIFF") from None
    except UnidentifiedImageError:
        raise ImageFileError(path, "not an image Pillow can read",
                             "convert it to PNG or JPEG (GeoTIFF imagery goes to 'atlas build --imagery')") from None
    except (OSError, ValueError, SyntaxError) as err:
        raise ImageFileError(path, f"truncated or corrupt image ({err})", "re-copy or re-export the image") from None
    return np.asarray(rgb, dtype=np.uint8)


def _megapixels(err: Exception) -> str:
    """'400 megapixels' from Pillow's message ("Image size (400000000 pixels) exceeds limit ..."): its guard
    stops at the header, and reading the size again would mean lifting the limit."""
    found = re.search(r"\((\d+) pixels\)", str(err))
    return f"{int(found.group(1)) / 1e6:.0f} megapixels" if found else "the image"
