"""CPU image and spectrogram coding for ``prepare`` (torch-free: Pillow with libjpeg-turbo).

The central region is decoded with DCT scaling (Pillow's ``draft``): libjpeg-turbo reconstructs the image
at 1/2, 1/4 or 1/8 scale straight from the DCT coefficients, skipping most of the inverse transform and
the colour conversion of the full image. For the default geometry (the central 768 of 1024 px stored at
384 px) the 1/2-scale decode *is* the stored resolution, so no resampling pass follows.
"""

from __future__ import annotations

import io
import math

import numpy as np
from PIL import Image

from engine.shards.format import CacheGeometry
from engine.shards.source import spectrogram_to_log_mel

_REDUCTIONS = (8, 4, 2, 1)


def region_box(width: int, height: int, geometry: CacheGeometry) -> tuple[float, float, float, float]:
    """The central region (left, top, right, bottom) in the pixels of a ``width`` x ``height`` image."""
    side = min(width, height) * geometry.region / geometry.source_size
    cx, cy = width / 2.0, height / 2.0
    return (cx - side / 2.0, cy - side / 2.0, cx + side / 2.0, cy + side / 2.0)


def dct_reduction(width: int, height: int, geometry: CacheGeometry) -> int:
    """The largest JPEG DCT reduction (8, 4, 2 or 1) that still leaves the region >= its stored size."""
    side = min(width, height) * geometry.region / geometry.source_size
    for r in _REDUCTIONS:
        if side / r >= geometry.stored - 1e-6:
            return r
    return 1


def decode_region(data: bytes, geometry: CacheGeometry, dct_scaling: bool = True) -> np.ndarray:
    """Decode the central region of a JPEG at the stored size.

    Args:
        data: the JPEG file's bytes.
        geometry: which region and at what size.
        dct_scaling: decode at a reduced DCT scale (fast); False decodes the full image (the baseline).

    Returns:
        uint8 array (stored, stored, 3), RGB.

    Raises:
        OSError or ValueError (from Pillow) when the bytes are not a decodable image.
    """
    im = Image.open(io.BytesIO(data))
    width, height = im.size
    if dct_scaling and im.format == "JPEG":
        r = dct_reduction(width, height, geometry)
        if r > 1:
            im.draft("RGB", (math.ceil(width / r), math.ceil(height / r)))
    im = im.convert("RGB")  # forces the (possibly reduced) decode; raises on corrupt data
    s = im.size[0] / width
    left, top, right, bottom = (v * s for v in region_box(width, height, geometry))
    side = right - left
    out = geometry.stored
    if abs(side - out) < 1e-6 and float(left).is_integer() and float(top).is_integer():
        im = im.crop((int(left), int(top), int(right), int(bottom)))
    else:
        factor = side / out
        ileft, itop = round(left), round(top)
        if float(factor).is_integer() and abs(ileft - left) < 1e-6 and abs(itop - top) < 1e-6:
            # An integer factor: the box filter (Image.reduce) is exact area averaging and fast.
            im = im.crop((ileft, itop, ileft + round(side), itop + round(side))).reduce(int(factor))
        else:
            im = im.resize((out, out), Image.Resampling.LANCZOS, box=(left, top, right, bottom))
    return np.asarray(im, dtype=np.uint8)


def encode_jpeg(pixels: np.ndarray, quality: int) -> bytes:
    """uint8 (H, W, 3) RGB -> JPEG bytes (4:2:0 chroma, optimised Huffman tables off for speed)."""
    buf = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def decode_spectrogram(data: bytes) -> np.ndarray:
    """An 8-bit SoundingEarth spectrogram JPEG -> float16 log-mel (n_mels, T), x = 10 ln v.

    Raises:
        OSError or ValueError (from Pillow) when the bytes are not a decodable image.
    """
    im = Image.open(io.BytesIO(data)).convert("L")
    return spectrogram_to_log_mel(np.asarray(im)).astype(np.float16)
