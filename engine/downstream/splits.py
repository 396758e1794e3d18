"""Train/test splits with a fixed seed. Torch-free.

- ``stratified``: each class shuffled with ``numpy.random.default_rng(seed)`` and cut at the train
  fraction (rounded; at least one image on each side when a class has two or more).
- ``alternate``: every other image in class-then-name order goes to training (even positions) and the
  rest to test, as the paper's authors' code does (a 50/50 split that needs no seed).
"""

from __future__ import annotations

import numpy as np

SPLITS = ("stratified", "alternate")


def stratified_split(labels: list[int] | np.ndarray, train_fraction: float,
                     seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split item indices class by class.

    Args:
        labels: class index of each item.
        train_fraction: share of each class that goes to training, in (0, 1).
        seed: seeds the shuffle; the same labels, fraction and seed give the same split.

    Returns:
        (train, test) sorted int64 index arrays.

    Raises:
        ValueError: ``train_fraction`` outside (0, 1).
    """
    if not 0.0 < train_fraction < 1.0:
        raise ValueError(f"train fraction must lie in (0, 1), got {train_fraction}")
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    train, test = [], []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        members = members[rng.permutation(members.size)]
        n_train = int(round(members.size * train_fraction))
        if members.size >= 2:
            n_train = min(max(n_train, 1), members.size - 1)
        train.append(members[:n_train])
        test.append(members[n_train:])
    return np.sort(np.concatenate(train)).astype(np.int64), np.sort(np.concatenate(test)).astype(np.int64)


def alternate_split(n_items: int) -> tuple[np.ndarray, np.ndarray]:
    """Even positions train, odd positions test (items must be in class-then-name order)."""
    index = np.arange(n_items, dtype=np.int64)
    return index[0::2], index[1::2]


def random_split(n_items: int, train_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Unstratified seeded split (for segmentation scenes), at least one item on each side."""
    if not 0.0 < train_fraction < 1.0:
        raise ValueError(f"train fraction must lie in (0, 1), got {train_fraction}")
    order = np.random.default_rng(seed).permutation(n_items)
    n_train = min(max(int(round(n_items * train_fraction)), 1), n_items - 1) if n_items >= 2 else n_items
    return np.sort(order[:n_train]).astype(np.int64), np.sort(order[n_train:]).astype(np.int64)
