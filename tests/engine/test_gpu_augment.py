"""The device augmentation, run on CPU tensors: exact geometry, honest crops, ranges, determinism."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torchvision.transforms.functional import gaussian_blur as tv_gaussian_blur

from engine.gpu.augment import (
    ImageAugmentConfig,
    MelAugmentConfig,
    augment_images,
    augment_mels,
    color_matrix,
    crop_rotate_flip_theta,
    gaussian_blur,
    max_shift,
    warp,
)


def _regions(b: int = 4, size: int = 64, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 256, (b, 3, size, size), generator=torch.Generator().manual_seed(seed), dtype=torch.uint8)


def _theta(b: int, size: int, crop: int, angle: float, fx: bool = False, fy: bool = False,
           shift: tuple[float, float] = (0.0, 0.0)) -> torch.Tensor:
    return crop_rotate_flip_theta(b, size, crop, torch.full((b,), angle), torch.full((b,), fx),
                                  torch.full((b,), fy), torch.tensor([shift] * b))


@pytest.mark.parametrize("k", [1, 2, 3])
def test_quarter_turns_equal_rot90(k: int) -> None:
    x = _regions()
    out = warp(x, _theta(4, 64, 64, k * math.pi / 2), 64).round().to(torch.uint8)
    assert torch.equal(out, torch.rot90(x, k, dims=(2, 3)))


def test_flips_equal_torch_flip() -> None:
    x = _regions()
    assert torch.equal(warp(x, _theta(4, 64, 64, 0.0, fx=True), 64).round().to(torch.uint8), x.flip(3))
    assert torch.equal(warp(x, _theta(4, 64, 64, 0.0, fy=True), 64).round().to(torch.uint8), x.flip(2))


def test_unrotated_shifted_crop_is_a_slice() -> None:
    x = _regions(size=64)
    out = warp(x, _theta(4, 64, 32, 0.0, shift=(5.0, -3.0)), 32).round().to(torch.uint8)
    # Centre (32, 32) moved by (+5, -3): columns 21..52, rows 13..44.
    assert torch.equal(out, x[:, :, 13:45, 21:53])


def test_rotated_crops_never_leave_the_region() -> None:
    size, crop, b = 384, 192, 512
    angle = torch.linspace(-math.pi, math.pi, b)
    reach = max_shift(size, crop, angle)
    assert float(reach.min()) == pytest.approx((384 - 192 * math.sqrt(2)) / 2, abs=0.05)
    assert float(reach.max()) == pytest.approx(96.0, abs=1e-3)
    for sx, sy in ((1, 1), (1, -1), (-1, 1), (-1, -1)):  # the worst corners: full shifts
        shift = torch.stack([sx * reach, sy * reach], 1)
        theta = crop_rotate_flip_theta(b, size, crop, angle, torch.zeros(b, dtype=torch.bool),
                                       torch.zeros(b, dtype=torch.bool), shift)
        grid = F.affine_grid(theta, [b, 3, crop, crop], align_corners=False)
        # Output pixel centres map at most half a pixel inside the border: bilinear taps are real pixels.
        assert float(grid.abs().max()) <= 1.0 - 1.0 / size + 1e-5


def test_augment_images_shapes_dtypes_ranges_and_determinism() -> None:
    cfg = ImageAugmentConfig(crop=32, blur_p=0.5)
    x = _regions(8, 64)
    a = augment_images(x, cfg, torch.Generator().manual_seed(1))
    b = augment_images(x, cfg, torch.Generator().manual_seed(1))
    c = augment_images(x, cfg, torch.Generator().manual_seed(2), channels_last=True)
    assert a.shape == (8, 3, 32, 32) and a.dtype == torch.float32
    assert float(a.min()) >= 0.0 and float(a.max()) <= 1.0 and torch.isfinite(a).all()
    assert torch.equal(a, b) and not torch.allclose(a, c)
    assert c.is_contiguous(memory_format=torch.channels_last)
    # float16 resampling (an option) moves sampling points by a fraction of a pixel at most: on pure
    # noise (the worst case) that changes values a little, on average far below one grey level.
    h = augment_images(x, ImageAugmentConfig(crop=32, blur_p=0.5, work_dtype=torch.float16),
                       torch.Generator().manual_seed(1))
    assert float((h - a).abs().mean()) < 1.5 / 255 and float((h - a).abs().max()) < 0.06


def test_augment_without_jitter_keeps_pixel_values() -> None:
    cfg = ImageAugmentConfig(crop=64, rotate=False, flip=False, brightness=0, contrast=0, saturation=0, hue=0,
                             blur_p=0)
    x = _regions(2, 64)
    out = augment_images(x, cfg, torch.Generator().manual_seed(0))
    assert torch.equal((out * 255).round().to(torch.uint8), x)


def test_colour_matrix_grey_identity_and_hue_turn() -> None:
    rgb = torch.tensor([0.9, 0.3, 0.1])
    grey = color_matrix(torch.tensor([0.0]), torch.tensor([0.0]))[0] @ rgb
    luma = 0.299 * 0.9 + 0.587 * 0.3 + 0.114 * 0.1
    torch.testing.assert_close(grey, torch.full((3,), luma), atol=1e-5, rtol=0)
    torch.testing.assert_close(color_matrix(torch.ones(1), torch.zeros(1))[0], torch.eye(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(color_matrix(torch.ones(1), torch.ones(1))[0], torch.eye(3), atol=1e-5, rtol=0)
    half = color_matrix(torch.ones(1), torch.tensor([0.5]))[0] @ rgb  # half a turn: chroma negated
    torch.testing.assert_close(half.mean() * 0 + (0.299 * half[0] + 0.587 * half[1] + 0.114 * half[2]),
                               torch.tensor(luma), atol=1e-5, rtol=0)


def test_per_sample_blur_matches_torchvision() -> None:
    x = torch.rand(3, 3, 20, 20, generator=torch.Generator().manual_seed(0))
    sigma = torch.tensor([0.0, 0.8, 1.5])
    out = gaussian_blur(x, sigma, radius=3)
    assert torch.equal(out[0], x[0])
    for i in (1, 2):
        ref = tv_gaussian_blur(x[i:i + 1], kernel_size=[7, 7], sigma=[float(sigma[i])] * 2)
        torch.testing.assert_close(out[i:i + 1], ref, atol=1e-5, rtol=0)


def test_augment_mels_standardises_and_masks() -> None:
    mels = (torch.randn(5, 16, 40, generator=torch.Generator().manual_seed(0)) * 4 - 7).half()
    out = augment_mels(mels, MelAugmentConfig(), torch.Generator().manual_seed(0))
    assert out.shape == (5, 1, 16, 40) and out.dtype == torch.float32
    torch.testing.assert_close(out.mean(dim=(1, 2, 3)), torch.zeros(5), atol=1e-4, rtol=0)
    torch.testing.assert_close(out.std(dim=(1, 2, 3)), torch.ones(5), atol=1e-3, rtol=0)
    masked = augment_mels(mels, MelAugmentConfig(time_masks=1, time_mask_max=10, freq_masks=1, freq_mask_max=4),
                          torch.Generator().manual_seed(3))
    zero_cols = (masked[:, 0] == 0).all(dim=1).sum(dim=1)  # whole columns zeroed by the time mask
    assert int(zero_cols.max()) <= 10 and int(zero_cols.sum()) > 0
    assert bool(((masked == 0) | (masked == out)).all())  # everything else untouched
