"""Cross-modal losses on a batch of paired embeddings (row i of each tensor is a true pair).

- :func:`batch_all_triplet_loss` (the paper's best, the default): the triplet loss over every
  (anchor, positive, negative) combination of the batch, in both directions, on Euclidean distances.
- :func:`naive_triplet_loss`: one negative per pair, the sound of the neighbouring row.
- :func:`info_nce_loss`: symmetric InfoNCE on cosine similarities.

All three agree with the authors' reference implementation on
``../shared/reference/soundingearth_reference_cases.json`` (see the tests).

Distributed training: :class:`PairLoss` owns the gather. Given a ``gather`` callable (e.g.
:func:`all_gather_with_grad`), it gathers both embedding tensors across ranks, with gradient, before
computing the loss, so the loss sees the global batch (as open_clip does). Without one it is the local
loss. Tests fake the collective by passing any function that concatenates.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.nn import functional as F

from engine.config.loss import LossConfig

Gather = Callable[[torch.Tensor], torch.Tensor]


def pairwise_distances(image_emb: torch.Tensor, audio_emb: torch.Tensor) -> torch.Tensor:
    """(N, M) Euclidean distances, row i an image, column j a sound.

    Computed from the differences (not the ``|a|²+|b|²-2ab`` expansion) so that the distance of
    identical vectors is exactly 0 and the values match the reference to float precision;
    ``torch.cdist`` does so without materialising the (N, M, D) differences, so a global batch of
    thousands fits, and its gradient at a zero distance is 0, not NaN.
    """
    return torch.cdist(image_emb, audio_emb, compute_mode="donot_use_mm_for_euclid_dist")


def batch_all_triplet_loss(image_emb: torch.Tensor, audio_emb: torch.Tensor, margin: float = 1.0) -> torch.Tensor:
    """The batch-all triplet loss of the paper, both directions averaged.

    With d the (N, N) image-to-sound distance matrix and t its diagonal (the true pairs)::

        loss = ½ · ( mean_ij relu(t_j − d_ij + margin) + mean_ij relu(t_i − d_ij + margin) )

    The first term takes each sound j as anchor against every image i; the second each image i
    against every sound j. As in the reference, the means run over all N² cells, the diagonal
    included (each diagonal cell adds ``margin``), which scales the loss but not its minimisers.

    Args:
        image_emb: (N, D) image embeddings.
        audio_emb: (N, D) audio embeddings, row i paired with image row i.
        margin: the triplet margin (1 in the paper).
    Returns:
        A scalar tensor.
    """
    d = pairwise_distances(image_emb, audio_emb)
    t = d.diagonal()
    sound_anchored = F.relu(t[None, :] - d + margin).mean()
    image_anchored = F.relu(t[:, None] - d + margin).mean()
    return 0.5 * (sound_anchored + image_anchored)


def naive_triplet_loss(image_emb: torch.Tensor, audio_emb: torch.Tensor, margin: float = 1.0,
                       shift: int = 1) -> torch.Tensor:
    """One triplet per pair: image i, its sound i and the sound of row ``i - shift`` as negative.

    ``mean_i relu(|img_i − snd_i| − |img_i − snd_{i−shift}| + margin)``; ``shift=1`` is
    ``torch.roll(snd, 1)`` of the reference.
    """
    negative = torch.roll(audio_emb, shifts=shift, dims=0)
    positive_d = torch.linalg.vector_norm(image_emb - audio_emb, dim=-1)
    negative_d = torch.linalg.vector_norm(image_emb - negative, dim=-1)
    return F.relu(positive_d - negative_d + margin).mean()


def info_nce_loss(image_emb: torch.Tensor, audio_emb: torch.Tensor, tau: float = 0.2) -> torch.Tensor:
    """Symmetric InfoNCE (CLIP-style) on cosine similarities divided by ``tau``.

    The mean of the two cross-entropies (images classifying their sound among the batch's sounds,
    and sounds classifying their image), each averaged over the batch.
    """
    logits = F.normalize(image_emb, dim=-1) @ F.normalize(audio_emb, dim=-1).T / tau
    target = torch.arange(logits.shape[0], device=logits.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))


class PairLoss(torch.nn.Module):
    """The training loss as a module that owns the cross-rank gather.

    Args:
        cfg: which loss.
        gather: None (single process) or a function mapping a local (n, D) tensor to the global
            (world·n, D) tensor *with gradient*, in rank order (e.g. :func:`all_gather_with_grad`).
    """

    def __init__(self, cfg: LossConfig, gather: Gather | None = None) -> None:
        super().__init__()
        self.cfg = cfg
        self.gather = gather

    def forward(self, image_emb: torch.Tensor, audio_emb: torch.Tensor) -> torch.Tensor:
        if self.gather is not None:
            image_emb, audio_emb = self.gather(image_emb), self.gather(audio_emb)
        # Distances in float32 even under autocast: the hinge needs the precision.
        image_emb, audio_emb = image_emb.float(), audio_emb.float()
        if self.cfg.name == "batch_all_triplet":
            return batch_all_triplet_loss(image_emb, audio_emb, self.cfg.margin)
        if self.cfg.name == "naive_triplet":
            return naive_triplet_loss(image_emb, audio_emb, self.cfg.margin)
        return info_nce_loss(image_emb, audio_emb, self.cfg.tau)


def all_gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """Concatenate ``x`` from every rank of the default process group, keeping the gradient.

    Uses ``torch.distributed.nn.functional.all_gather``, whose backward sends each rank the gradient
    of its own slice. Outside a process group it returns ``x`` unchanged.
    """
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return x
    from torch.distributed.nn.functional import all_gather

    return torch.cat(all_gather(x), dim=0)


@torch.no_grad()
def in_batch_recall_at_1(image_emb: torch.Tensor, audio_emb: torch.Tensor) -> tuple[float, float]:
    """Fraction of the batch whose true partner is the nearest one: (image→audio, audio→image)."""
    d = pairwise_distances(image_emb.float(), audio_emb.float())
    target = torch.arange(d.shape[0], device=d.device)
    i2a = (d.argmin(dim=1) == target).float().mean().item()
    a2i = (d.argmin(dim=0) == target).float().mean().item()
    return i2a, a2i
