"""Augmentation of whole batches on the device (GPU in training, CPU in tests): the same code either way.

Images arrive as the cache's central regions, (B, 3, P, P) uint8 (P = 384 by default). One
``affine_grid``/``grid_sample`` call per batch cuts each sample's crop (C = 192 px) at a random centre,
rotated by a random angle and flipped: the per-sample affine matrix folds all three. The centre is drawn
inside the band that keeps the rotated crop inside the region (``(P - C(|cos a| + |sin a|)) / 2`` px from
the middle), so no crop ever shows padding. Colour jitter (brightness, contrast, saturation, hue) is one
elementwise pass plus one batched 3x3 colour matrix (saturation and hue act on the chroma plane of YIQ);
blur is a per-sample Gaussian as two grouped separable convolutions. Log-mels get optional time and
frequency masks and the per-clip standardisation.

Random draws come from a ``torch.Generator`` on the batch's device, so nothing waits for the host.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

# RGB -> YIQ (Y is the same luma torchvision's rgb_to_grayscale uses).
_RGB_TO_YIQ = ((0.299, 0.587, 0.114), (0.595716, -0.274453, -0.321263), (0.211456, -0.522591, 0.311135))


@dataclass(frozen=True)
class ImageAugmentConfig:
    """Batch image augmentation. Factors are ranges around 1 (e.g. brightness 0.2: x 0.8..1.2).

    Args:
        crop: output side in pixels of the stored region's resolution.
        rotate: rotate by a uniform random angle (any angle); False: no rotation.
        flip: random horizontal and vertical flips (p = 0.5 each).
        brightness, contrast, saturation: jitter strengths; hue: max shift as a fraction of a turn.
        blur_p: probability of a Gaussian blur; blur_sigma: its sigma range in pixels.
        work_dtype: dtype of the resampling pass (``float16`` halves its memory traffic on GPUs).
    """

    crop: int = 192
    rotate: bool = True
    flip: bool = True
    brightness: float = 0.2
    contrast: float = 0.2
    saturation: float = 0.2
    hue: float = 0.02
    blur_p: float = 0.2
    blur_sigma: tuple[float, float] = (0.1, 1.5)
    work_dtype: torch.dtype = torch.float32


@dataclass(frozen=True)
class MelAugmentConfig:
    """Batch log-mel augmentation (after the temporal crop, which the loader does).

    Args:
        time_masks, time_mask_max: number of time masks per clip and their max width in frames.
        freq_masks, freq_mask_max: the same for mel bands.
        standardise: standardise each clip by its own mean and std (std floored at ``std_floor``).
    """

    time_masks: int = 0
    time_mask_max: int = 20
    freq_masks: int = 0
    freq_mask_max: int = 12
    standardise: bool = True
    std_floor: float = 1.0


def _uniform(n: int, low: float, high: float, gen: torch.Generator | None, device: torch.device) -> torch.Tensor:
    return torch.rand(n, generator=gen, device=device) * (high - low) + low


def crop_rotate_flip_theta(batch: int, size: int, crop: int, angle: torch.Tensor, flip_x: torch.Tensor,
                           flip_y: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Affine matrices (B, 2, 3) for ``affine_grid`` (align_corners=False).

    Args:
        batch: B; size: input side P; crop: output side C.
        angle: (B,) radians; flip_x, flip_y: (B,) bools; shift: (B, 2) crop centre offsets in input pixels.
    """
    cos, sin = torch.cos(angle), torch.sin(angle)
    sx = 1.0 - 2.0 * flip_x.to(angle.dtype)
    sy = 1.0 - 2.0 * flip_y.to(angle.dtype)
    k = crop / size
    theta = torch.empty(batch, 2, 3, dtype=angle.dtype, device=angle.device)
    # [x_in, y_in] = k * R(angle) @ diag(sx, sy) @ [x_out, y_out] + 2 * shift / P  (normalised coordinates)
    theta[:, 0, 0] = k * cos * sx
    theta[:, 0, 1] = -k * sin * sy
    theta[:, 1, 0] = k * sin * sx
    theta[:, 1, 1] = k * cos * sy
    theta[:, :, 2] = 2.0 * shift / size
    return theta


def warp(regions: torch.Tensor, theta: torch.Tensor, crop: int, work_dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Resample (B, 3, P, P) regions through affine matrices into (B, 3, crop, crop) float32 (0..255 scale).

    Bilinear; a matrix from :func:`crop_rotate_flip_theta` with an offset within :func:`max_shift` only
    samples inside the region (``border`` padding is a guard, never used by honest crops).
    """
    b = regions.shape[0]
    grid = F.affine_grid(theta.to(work_dtype), [b, regions.shape[1], crop, crop], align_corners=False)
    out = F.grid_sample(regions.to(work_dtype), grid, mode="bilinear", padding_mode="border", align_corners=False)
    return out.float()


def max_shift(size: int, crop: int, angle: torch.Tensor) -> torch.Tensor:
    """How far (pixels, per axis) the centre of a crop rotated by ``angle`` may move and stay inside."""
    extent = crop * (angle.cos().abs() + angle.sin().abs())
    return ((size - extent) / 2.0).clamp_min(0.0)


def _yiq_parts() -> tuple[tuple[float, ...], tuple[float, ...], tuple[float, ...]]:
    """Constant 3x3 matrices (row-major) with M(s, h) = A + s cos(2 pi h) Bc + s sin(2 pi h) Bs, where M keeps
    luma Y and scales/rotates the chroma plane (I, Q) of YIQ. Plain floats: building M on a GPU then needs
    no host-to-device copy."""
    t = _RGB_TO_YIQ
    det = (t[0][0] * (t[1][1] * t[2][2] - t[1][2] * t[2][1]) - t[0][1] * (t[1][0] * t[2][2] - t[1][2] * t[2][0])
           + t[0][2] * (t[1][0] * t[2][1] - t[1][1] * t[2][0]))
    inv = [[(t[(j + 1) % 3][(i + 1) % 3] * t[(j + 2) % 3][(i + 2) % 3]
             - t[(j + 1) % 3][(i + 2) % 3] * t[(j + 2) % 3][(i + 1) % 3]) / det for j in range(3)] for i in range(3)]
    a = tuple(inv[i][0] * t[0][j] for i in range(3) for j in range(3))
    bc = tuple(inv[i][1] * t[1][j] + inv[i][2] * t[2][j] for i in range(3) for j in range(3))
    bs = tuple(inv[i][2] * t[1][j] - inv[i][1] * t[2][j] for i in range(3) for j in range(3))
    return a, bc, bs


def color_matrix(saturation: torch.Tensor, hue: torch.Tensor) -> torch.Tensor:
    """(B, 3, 3) RGB matrices scaling chroma by ``saturation`` and rotating it by ``hue`` turns."""
    a, bc, bs = _yiq_parts()
    angle = 2.0 * math.pi * hue
    c, s = saturation * angle.cos(), saturation * angle.sin()
    return torch.stack([c * bc[k] + s * bs[k] + a[k] for k in range(9)], dim=1).reshape(-1, 3, 3)


def gaussian_blur(x: torch.Tensor, sigma: torch.Tensor, radius: int) -> torch.Tensor:
    """Blur each sample of (B, C, H, W) with its own sigma (B,); sigma <= 0 leaves a sample unchanged."""
    b, c, h, w = x.shape
    offsets = torch.arange(-radius, radius + 1, device=x.device, dtype=torch.float32)
    s = sigma.float().clamp_min(1e-6)[:, None]
    kernel = torch.exp(-0.5 * (offsets[None, :] / s) ** 2)
    delta = (offsets == 0).float()[None, :].expand_as(kernel)
    kernel = torch.where((sigma > 0)[:, None], kernel, delta)
    kernel = (kernel / kernel.sum(1, keepdim=True)).to(x.dtype)
    k = kernel.repeat_interleave(c, 0)  # (B*C, K)
    y = F.pad(x.reshape(1, b * c, h, w), (radius, radius, radius, radius), mode="reflect")
    y = F.conv2d(y, k[:, None, None, :], groups=b * c)
    y = F.conv2d(y, k[:, None, :, None], groups=b * c)
    return y.reshape(b, c, h, w)


def augment_images(regions: torch.Tensor, cfg: ImageAugmentConfig, gen: torch.Generator | None = None,
                   channels_last: bool = False) -> torch.Tensor:
    """(B, 3, P, P) uint8 regions -> (B, 3, C, C) float32 RGB in [0, 1], augmented.

    Raises:
        ValueError: when the crop does not fit the region.
    """
    b, _, size, size_w = regions.shape
    if size != size_w or cfg.crop > size:
        raise ValueError(f"crop {cfg.crop} px does not fit regions of {size}x{size_w} px")
    device = regions.device
    angle = (_uniform(b, -math.pi, math.pi, gen, device) if cfg.rotate
             else torch.zeros(b, device=device))
    if cfg.flip:
        flips = torch.rand(b, 2, generator=gen, device=device) < 0.5
    else:
        flips = torch.zeros(b, 2, dtype=torch.bool, device=device)
    reach = max_shift(size, cfg.crop, angle)
    shift = (torch.rand(b, 2, generator=gen, device=device) * 2.0 - 1.0) * reach[:, None]
    theta = crop_rotate_flip_theta(b, size, cfg.crop, angle, flips[:, 0], flips[:, 1], shift)
    x = warp(regions, theta, cfg.crop, cfg.work_dtype).mul_(1.0 / 255.0)
    x = jitter_colours(x, cfg, gen)
    if cfg.blur_p > 0:
        on = torch.rand(b, generator=gen, device=device) < cfg.blur_p
        sigma = _uniform(b, *cfg.blur_sigma, gen, device) * on
        x = gaussian_blur(x, sigma, radius=max(1, math.ceil(3 * cfg.blur_sigma[1]))).clamp_(0.0, 1.0)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def jitter_colours(x: torch.Tensor, cfg: ImageAugmentConfig, gen: torch.Generator | None) -> torch.Tensor:
    """Brightness, contrast, saturation and hue jitter of (B, 3, H, W) floats in [0, 1], clamped."""
    b, device = x.shape[0], x.device
    if cfg.brightness > 0:
        x = x * _uniform(b, 1 - cfg.brightness, 1 + cfg.brightness, gen, device)[:, None, None, None]
    if cfg.contrast > 0:
        wr, wg, wb = _RGB_TO_YIQ[0]
        mean = (x[:, 0] * wr + x[:, 1] * wg + x[:, 2] * wb).mean(dim=(1, 2))
        c = _uniform(b, 1 - cfg.contrast, 1 + cfg.contrast, gen, device)[:, None, None, None]
        x = (x - mean[:, None, None, None]) * c + mean[:, None, None, None]
    if cfg.saturation > 0 or cfg.hue > 0:
        sat = _uniform(b, 1 - cfg.saturation, 1 + cfg.saturation, gen, device)
        hue = _uniform(b, -cfg.hue, cfg.hue, gen, device)
        x = torch.einsum("bij,bjhw->bihw", color_matrix(sat, hue), x)
    return x.clamp(0.0, 1.0)


def augment_mels(mels: torch.Tensor, cfg: MelAugmentConfig, gen: torch.Generator | None = None) -> torch.Tensor:
    """(B, n_mels, F) log-mels (any float dtype) -> (B, 1, n_mels, F) float32, masked and standardised."""
    x = mels.float()
    b, n_mels, frames = x.shape
    if cfg.standardise:
        mean = x.mean(dim=(1, 2), keepdim=True)
        std = x.std(dim=(1, 2), keepdim=True).clamp_min(cfg.std_floor)
        x = (x - mean) / std
    for axis, count, width, length in ((2, cfg.time_masks, cfg.time_mask_max, frames),
                                       (1, cfg.freq_masks, cfg.freq_mask_max, n_mels)):
        pos = torch.arange(length, device=x.device)
        for _ in range(count):
            w = (torch.rand(b, generator=gen, device=x.device) * (width + 1)).long().clamp_max(length)
            start = (torch.rand(b, generator=gen, device=x.device) * (length - w + 1)).long()
            hit = (pos[None, :] >= start[:, None]) & (pos[None, :] < (start + w)[:, None])  # (B, length)
            x = x.masked_fill(hit[:, None, :] if axis == 2 else hit[:, :, None], 0.0)
    return x[:, None]
