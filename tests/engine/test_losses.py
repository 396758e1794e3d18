"""Losses: the reference implementation's values, hand computations, and the distributed gather hook."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from engine.config.loss import LossConfig
from engine.errors import ConfigError
from engine.losses import (
    PairLoss,
    batch_all_triplet_loss,
    in_batch_recall_at_1,
    info_nce_loss,
    naive_triplet_loss,
)


def _cases(reference_dir: Path) -> list[dict]:
    return json.loads((reference_dir / "soundingearth_reference_cases.json").read_text())["triplet"]


def test_batch_all_triplet_matches_the_reference(reference_dir: Path) -> None:
    for case in _cases(reference_dir):
        img, snd = torch.tensor(case["image_embeddings"]), torch.tensor(case["audio_embeddings"])
        got = batch_all_triplet_loss(img, snd, margin=case["margin"]).item()
        assert got == pytest.approx(case["batch_all_triplet_loss"], rel=1e-5)


def test_naive_triplet_matches_the_reference(reference_dir: Path) -> None:
    for case in _cases(reference_dir):
        img, snd = torch.tensor(case["image_embeddings"]), torch.tensor(case["audio_embeddings"])
        got = naive_triplet_loss(img, snd, margin=case["margin"]).item()
        assert got == pytest.approx(case["naive_triplet_loss_roll1"], rel=1e-5)


def test_batch_all_triplet_by_hand() -> None:
    # 1-D embeddings: images 0 and 3, sounds 1 and 2. d = [[1, 2], [2, 1]], diagonal t = [1, 1].
    img, snd = torch.tensor([[0.0], [3.0]]), torch.tensor([[1.0], [2.0]])
    # Every cell: relu(1 - d + 1): diagonal 1, off-diagonal relu(1 - 2 + 1) = 0 -> each mean = 2/4.
    assert batch_all_triplet_loss(img, snd).item() == pytest.approx(0.5)
    # Margin 3: diagonal 3, off-diagonal 2 -> mean 10/4 in both directions.
    assert batch_all_triplet_loss(img, snd, margin=3.0).item() == pytest.approx(2.5)


def test_naive_triplet_by_hand() -> None:
    img, snd = torch.tensor([[0.0], [3.0], [10.0]]), torch.tensor([[1.0], [2.0], [10.0]])
    # Negative of row i is sound i-1 (roll by 1): rows: (|0-1| - |0-10| + 1), (|3-2| - |3-1| + 1), (0 - |10-2| + 1)
    expected = (max(0, 1 - 10 + 1) + max(0, 1 - 2 + 1) + max(0, 0 - 8 + 1)) / 3
    assert naive_triplet_loss(img, snd).item() == pytest.approx(expected)


def test_info_nce_by_hand() -> None:
    img = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    snd = torch.tensor([[2.0, 0.1], [0.3, 1.0], [1.0, 0.8]])
    tau = 0.5

    def cos(a: torch.Tensor, b: torch.Tensor) -> float:
        return float(a @ b / (a.norm() * b.norm()))

    n = 3
    s = [[cos(img[i], snd[j]) / tau for j in range(n)] for i in range(n)]
    rows = [-s[i][i] + math.log(sum(math.exp(s[i][j]) for j in range(n))) for i in range(n)]
    cols = [-s[j][j] + math.log(sum(math.exp(s[i][j]) for i in range(n))) for j in range(n)]
    expected = 0.5 * (sum(rows) / n + sum(cols) / n)
    assert info_nce_loss(img, snd, tau=tau).item() == pytest.approx(expected, rel=1e-6)


def test_gather_hook_sees_the_global_batch_and_passes_gradients() -> None:
    """A fake two-rank all-gather (open_clip style): the loss equals the loss of the concatenated batch."""
    torch.manual_seed(0)
    local_img = torch.randn(4, 8, requires_grad=True)
    local_snd = torch.randn(4, 8, requires_grad=True)
    other_img, other_snd = torch.randn(4, 8), torch.randn(4, 8)
    others = {id(local_img): other_img, id(local_snd): other_snd}

    def fake_gather(x: torch.Tensor) -> torch.Tensor:  # this rank is rank 0
        return torch.cat([x, others[id(x)]], dim=0)

    for name in ("batch_all_triplet", "naive_triplet", "info_nce"):
        cfg = LossConfig(name)
        gathered = PairLoss(cfg, gather=fake_gather)(local_img, local_snd)
        full = PairLoss(cfg)(torch.cat([local_img, other_img]), torch.cat([local_snd, other_snd]))
        assert gathered.item() == pytest.approx(full.item(), rel=1e-6)
    local_img.grad = None
    PairLoss(LossConfig(), gather=fake_gather)(local_img, local_snd).backward()
    assert local_img.grad is not None and local_img.grad.abs().sum() > 0


def test_perfect_pairs_and_recall_at_1() -> None:
    z = torch.eye(5) * 10
    # Far-apart true pairs: every hinge is off except the diagonal cells (margin each): loss = margin / N.
    assert batch_all_triplet_loss(z, z).item() == pytest.approx(1.0 / 5)
    assert in_batch_recall_at_1(z, z) == (1.0, 1.0)
    assert in_batch_recall_at_1(z, z.roll(1, 0)) == (0.0, 0.0)


def test_unknown_loss_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown loss 'hinge'"):
        LossConfig("hinge")
