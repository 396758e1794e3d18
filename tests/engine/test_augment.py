"""Batch augmentation: geometry, colour, blur and masks checked against independent computations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import ndimage

from engine.augment import (
    augment_images,
    center_views,
    colour_jitter,
    gaussian_blur,
    mask_log_mels,
    random_affine,
    random_time_crop,
    step_generator,
)
from engine.config.augment import AugmentConfig

OFF = dict(brightness=0.0, contrast=0.0, saturation=0.0, blur_prob=0.0)


def _images(n: int = 4, size: int = 32, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 256, (n, 3, size, size), generator=torch.Generator().manual_seed(seed), dtype=torch.uint8)


def test_identity_view_returns_the_pixels() -> None:
    x = _images()
    torch.testing.assert_close(center_views(x, 32, 1.0), x.float() / 255, atol=1e-6, rtol=0)
    plain = AugmentConfig(crop_scale=(1.0, 1.0), rotate=False, flip=False, **OFF)
    torch.testing.assert_close(augment_images(x, 32, plain, step_generator(0, 0)), x.float() / 255, atol=1e-6, rtol=0)


def test_centre_view_is_the_central_crop() -> None:
    x = _images(size=40)
    # Half the side, no resize: the central 20 x 20 pixels exactly (pixel centres line up).
    torch.testing.assert_close(center_views(x, 20, 0.5), x[:, :, 10:30, 10:30].float() / 255, atol=1e-6, rtol=0)


def test_flip_and_quarter_turn_permute_pixels() -> None:
    x = _images(n=1)
    theta = torch.tensor([[[-1.0, 0, 0], [0, 1, 0]]])  # x -> -x: a horizontal flip
    from engine.augment import _affine_views
    torch.testing.assert_close(_affine_views(x, theta, 32), x.flip(-1).float() / 255, atol=1e-6, rtol=0)
    quarter = torch.tensor([[[0.0, -1, 0], [1, 0, 0]]])
    out = _affine_views(x, quarter, 32)
    matches = [torch.allclose(out, torch.rot90(x, k, dims=(-2, -1)).float() / 255, atol=1e-6) for k in (1, 3)]
    assert any(matches)


def test_random_crops_stay_inside_the_region() -> None:
    cfg = AugmentConfig(crop_scale=(0.6, 1.0))
    theta = random_affine(2000, cfg, step_generator(3, 1), torch.device("cpu"))
    corners = torch.tensor([[-1.0, -1, 1], [1, -1, 1], [-1, 1, 1], [1, 1, 1]]).T  # output corners, homogeneous
    mapped = theta @ corners  # (N, 2, 4) input coordinates of the corners
    assert mapped.abs().max() <= 1.0 + 1e-5
    scale = torch.linalg.det(theta[:, :, :2]).abs().sqrt()
    assert scale.max() <= 1.0 + 1e-6 and scale.min() >= 0.6 / math.sqrt(2) - 1e-6
    flips = torch.linalg.det(theta[:, :, :2]) < 0
    assert 0.4 < flips.float().mean() < 0.6


def test_colour_jitter_factors_stay_in_range() -> None:
    x = torch.rand(64, 3, 8, 8) * 0.5 + 0.25
    cfg = AugmentConfig(brightness=0.2, contrast=0.0, saturation=0.0)
    y = colour_jitter(x, cfg, step_generator(0, 5))
    ratio = (y / x).flatten(1)
    assert torch.allclose(ratio.min(1).values, ratio.max(1).values, atol=1e-5)  # one factor per image
    assert ratio.min() >= 0.8 - 1e-6 and ratio.max() <= 1.2 + 1e-6
    grey = colour_jitter(x, AugmentConfig(brightness=0, contrast=0, saturation=1.0), step_generator(0, 1))
    assert grey.shape == x.shape and grey.min() >= 0 and grey.max() <= 1


@pytest.mark.parametrize("max_sigma", [None, 2.0])
def test_gaussian_blur_matches_scipy(max_sigma: float | None) -> None:
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.random((3, 3, 24, 24))).float()
    sigma = torch.tensor([0.8, 1.5, 0.0])
    y = gaussian_blur(x, sigma, max_sigma).numpy()
    for i, s in enumerate(sigma.tolist()):
        if s == 0:
            np.testing.assert_allclose(y[i], x[i].numpy(), atol=1e-6)
            continue
        # one kernel width for the batch: from the largest sigma, or from the bound given beforehand
        radius = math.ceil(3 * (1.5 if max_sigma is None else max_sigma))
        expected = np.stack([ndimage.gaussian_filter(x[i, c].numpy().astype(np.float64), s, mode="mirror",
                                                     truncate=radius / s) for c in range(3)])
        np.testing.assert_allclose(y[i], expected, atol=1e-5)


def test_masks_zero_whole_bands_only() -> None:
    mels = torch.randn(16, 1, 128, 100) + 5.0  # no zeros before masking
    cfg = AugmentConfig(time_masks=2, time_mask_frames=10, freq_masks=1, freq_mask_bins=8)
    out = mask_log_mels(mels, cfg, step_generator(1, 2))
    zero = out == 0
    untouched = ~zero
    torch.testing.assert_close(out[untouched], mels[untouched])
    for i in range(16):
        z = zero[i, 0]
        cols = z.all(dim=0).sum().item()
        rows = z.all(dim=1).sum().item()
        assert cols <= 20 and rows <= 8
        # Every zero lies in a fully masked column or a fully masked row.
        assert torch.equal(z, z.all(dim=0, keepdim=True) | z.all(dim=1, keepdim=True))
    assert mask_log_mels(mels, AugmentConfig(), step_generator(1, 2)) is mels


def test_same_step_same_augmentation() -> None:
    x, cfg = _images(8), AugmentConfig()
    a = augment_images(x, 24, cfg, step_generator(4, 10))
    b = augment_images(x, 24, cfg, step_generator(4, 10))
    c = augment_images(x, 24, cfg, step_generator(4, 11))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.shape == (8, 3, 24, 24) and a.dtype == torch.float32 and 0 <= a.min() and a.max() <= 1


def test_random_time_crop() -> None:
    mel = np.arange(20, dtype=np.float32)[None].repeat(3, 0)
    crop = random_time_crop(mel, 5, np.random.default_rng(0))
    assert crop.shape == (3, 5) and np.all(np.diff(crop[0]) == 1)
    assert random_time_crop(mel[:, :3], 7, np.random.default_rng(0))[0].tolist() == [0, 1, 2, 0, 1, 2, 0]


def test_bad_scales_are_config_errors() -> None:
    from engine.errors import ConfigError

    with pytest.raises(ConfigError, match="crop_scale"):
        AugmentConfig(crop_scale=(0.9, 0.5))
