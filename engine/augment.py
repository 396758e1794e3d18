"""Augmentation of whole batches of tensors, on whatever device the batch is on.

Images arrive as the uint8 central regions the datasets yield, (N, 3, S, S). One affine resampling
(``affine_grid`` + ``grid_sample``) per batch does, per sample, a random crop of the region (a random
scale and position that keep the crop inside the region), a random rotation and random flips, and
resizes to the encoder's input size; then colour jitter (brightness, contrast, saturation) and a
Gaussian blur with a random sigma, each per sample. Log-mels get optional time and frequency masks
per sample (SpecAugment-style). The random temporal crop of a log-mel happens per sample in the
dataset (clips differ in length), with :func:`random_time_crop`.

Every random draw comes from an explicit ``torch.Generator`` (or numpy Generator), so a run seeded
per step is reproducible and resumes exactly.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch.nn import functional as F

from engine.config.augment import AugmentConfig


def _affine_views(images: torch.Tensor, theta: torch.Tensor, size: int) -> torch.Tensor:
    """Resample uint8/float (N, 3, H, W) images through per-sample 2x3 affine maps to float [0, 1]."""
    x = images.float() / 255.0 if images.dtype == torch.uint8 else images.float()
    grid = F.affine_grid(theta.to(x.dtype), [x.shape[0], x.shape[1], size, size], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False).clamp_(0.0, 1.0)


def center_views(images: torch.Tensor, size: int, scale: float) -> torch.Tensor:
    """The evaluation view: the central ``scale`` of each region, resized to ``size``; float [0, 1].

    Small downscales (up to 2x) are plain bilinear like training; larger ones are antialiased.
    """
    n = images.shape[0]
    side = images.shape[-1] * scale
    if side > 2 * size:
        x = images.float() / 255.0 if images.dtype == torch.uint8 else images.float()
        lo = int(round((images.shape[-1] - side) / 2))
        x = x[..., lo:lo + int(round(side)), lo:lo + int(round(side))]
        return F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False).clamp_(0, 1)
    theta = torch.zeros(n, 2, 3, device=images.device)
    theta[:, 0, 0] = theta[:, 1, 1] = scale
    return _affine_views(images, theta, size)


def random_affine(n: int, cfg: AugmentConfig, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """(N, 2, 3) affine maps from output to input coordinates (affine_grid's convention, in [-1, 1]).

    Each map scales by s (the crop side), rotates by a random angle, flips at random, and translates
    so that the rotated crop stays inside the region: its half-extent s·(|cos|+|sin|) must be <= 1,
    so s shrinks when a rotation would otherwise reach past the region's edge.
    """
    def uniform(lo: float, hi: float) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(n, generator=generator, device=device)

    scale = uniform(*cfg.crop_scale)
    angle = uniform(-math.pi, math.pi) if cfg.rotate else torch.zeros(n, device=device)
    cos, sin = torch.cos(angle), torch.sin(angle)
    extent = cos.abs() + sin.abs()
    scale = torch.minimum(scale, 1.0 / extent)
    room = (1.0 - scale * extent).clamp_min(0.0)
    tx, ty = uniform(-1, 1) * room, uniform(-1, 1) * room
    fx = torch.where(torch.rand(n, generator=generator, device=device) < 0.5, -1.0, 1.0) if cfg.flip else 1.0
    theta = torch.zeros(n, 2, 3, device=device)
    theta[:, 0, 0] = scale * cos * fx
    theta[:, 0, 1] = -scale * sin
    theta[:, 1, 0] = scale * sin * fx
    theta[:, 1, 1] = scale * cos
    theta[:, 0, 2], theta[:, 1, 2] = tx, ty
    return theta


def colour_jitter(x: torch.Tensor, cfg: AugmentConfig, generator: torch.Generator) -> torch.Tensor:
    """Per-sample brightness, contrast and saturation factors in [1 - s, 1 + s] on float [0, 1] images."""
    n, dev = x.shape[0], x.device

    def factor(strength: float) -> torch.Tensor:
        return (1.0 + strength * (2 * torch.rand(n, 1, 1, 1, generator=generator, device=dev) - 1)).to(x.dtype)

    if cfg.brightness:
        x = x * factor(cfg.brightness)
    grey_weights = torch.tensor([0.299, 0.587, 0.114], device=dev, dtype=x.dtype).view(1, 3, 1, 1)
    if cfg.contrast:
        mean = (x * grey_weights).sum(1, keepdim=True).mean((2, 3), keepdim=True)
        x = mean + (x - mean) * factor(cfg.contrast)
    if cfg.saturation:
        grey = (x * grey_weights).sum(1, keepdim=True)
        x = grey + (x - grey) * factor(cfg.saturation)
    return x.clamp(0.0, 1.0)


def gaussian_blur(x: torch.Tensor, sigma: torch.Tensor, max_sigma: float | None = None) -> torch.Tensor:
    """Blur each image of (N, C, H, W) with its own sigma (N,) (separable, reflect padding).

    Samples with sigma <= 0 are returned unchanged. The kernel reaches 3 sigma of ``max_sigma`` (an upper
    bound of ``sigma`` known beforehand, e.g. the config's: no host read of device values) or, if None,
    of the largest sigma in the batch (one host read).
    """
    n, c, h, w = x.shape
    top = float(sigma.max()) if max_sigma is None else max_sigma
    radius = int(math.ceil(3 * max(top, 1e-3)))
    offsets = torch.arange(-radius, radius + 1, device=x.device, dtype=x.dtype)
    s = sigma.clamp_min(1e-3).to(x.dtype)[:, None]
    kernel = torch.exp(-0.5 * (offsets[None, :] / s) ** 2)
    kernel = kernel / kernel.sum(1, keepdim=True)
    kernel = torch.where((sigma > 0)[:, None], kernel, (offsets == 0).to(x.dtype)[None, :].expand(n, -1))
    k = kernel.repeat_interleave(c, dim=0)  # one kernel per (sample, channel) group
    y = x.reshape(1, n * c, h, w)
    pad = min(radius, h - 1, w - 1)
    if pad < radius:  # images smaller than the kernel: fall back to zero padding beyond the reflection
        y = F.pad(y, (pad, pad, pad, pad), mode="reflect")
        y = F.pad(y, (radius - pad,) * 4)
    else:
        y = F.pad(y, (radius, radius, radius, radius), mode="reflect")
    y = F.conv2d(y, k.view(n * c, 1, 1, -1), groups=n * c)
    y = F.conv2d(y, k.view(n * c, 1, -1, 1), groups=n * c)
    return y.view(n, c, h, w)


def augment_images(images: torch.Tensor, size: int, cfg: AugmentConfig, generator: torch.Generator) -> torch.Tensor:
    """Training views of a batch of uint8 regions (N, 3, S, S): float (N, 3, size, size) in [0, 1].

    Only kernel launches: nothing reads a device value back to the host."""
    theta = random_affine(images.shape[0], cfg, generator, images.device)
    x = _affine_views(images, theta, size)
    x = colour_jitter(x, cfg, generator)
    if cfg.blur_prob > 0:
        n = x.shape[0]
        lo, hi = cfg.blur_sigma
        sigma = lo + (hi - lo) * torch.rand(n, generator=generator, device=x.device)
        apply = torch.rand(n, generator=generator, device=x.device) < cfg.blur_prob
        # Every batch goes through the blur (unblurred samples with an identity kernel) and its kernel size
        # comes from the config: no host read, so the device queue never drains while a batch is prepared.
        x = gaussian_blur(x, torch.where(apply, sigma, torch.zeros_like(sigma)), max_sigma=hi)
    return x


def mask_log_mels(mels: torch.Tensor, cfg: AugmentConfig, generator: torch.Generator) -> torch.Tensor:
    """Zero (the normalised mean) random time and frequency bands of (N, 1, n_mels, T), per sample."""
    if not cfg.time_masks and not cfg.freq_masks:
        return mels
    n, _, bins, frames = mels.shape
    dev = mels.device
    keep = torch.ones(n, 1, bins, frames, dtype=torch.bool, device=dev)

    def bands(count: int, width: int, length: int) -> torch.Tensor:
        """(N, length) True where any of ``count`` random bands of up to ``width`` covers."""
        hit = torch.zeros(n, length, dtype=torch.bool, device=dev)
        pos = torch.arange(length, device=dev)[None, :]
        for _ in range(count):
            w = (torch.rand(n, 1, generator=generator, device=dev) * (min(width, length) + 1)).long()
            start = (torch.rand(n, 1, generator=generator, device=dev) * (length - w + 1)).long()
            hit |= (pos >= start) & (pos < start + w)
        return hit

    if cfg.time_masks:
        keep &= ~bands(cfg.time_masks, cfg.time_mask_frames, frames)[:, None, None, :]
    if cfg.freq_masks:
        keep &= ~bands(cfg.freq_masks, cfg.freq_mask_bins, bins)[:, None, :, None]
    return mels * keep


def random_time_crop(mel: np.ndarray, frames: int, rng: np.random.Generator) -> np.ndarray:
    """A random window of ``frames`` columns of a (n_mels, T) log-mel; a shorter clip is repeated."""
    t = mel.shape[1]
    if t >= frames:
        start = int(rng.integers(0, t - frames + 1))
        return mel[:, start:start + frames]
    return np.tile(mel, (1, math.ceil(frames / t)))[:, :frames]


def step_generator(seed: int, step: int, device: torch.device | str = "cpu") -> torch.Generator:
    """The batch-augmentation generator of one optimiser step (a pure function of seed and step)."""
    g = torch.Generator(device=device)
    g.manual_seed((seed * 1_000_003 + step * 7_919 + 12_345) % (2 ** 63 - 1))
    return g
