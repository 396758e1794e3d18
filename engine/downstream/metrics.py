"""The one metric module for every downstream protocol: confusion matrix, accuracy, per-class
accuracy, F1 (macro and support-weighted), overall accuracy and IoU/mIoU for segmentation.

Everything is computed from a confusion matrix ``cm`` with ``cm[true, predicted]`` counts, so
classification and segmentation share one definition. numpy only (torch-free), so ``report`` and
tests can use it without torch.
"""

from __future__ import annotations

import numpy as np

IGNORE = -1  # labels below zero (e.g. DeepGlobe's "unknown") never enter a confusion matrix


def confusion_matrix(true: np.ndarray, predicted: np.ndarray, n_classes: int) -> np.ndarray:
    """Count (true, predicted) pairs.

    Args:
        true: integer labels of any shape; entries < 0 are ignored (not counted).
        predicted: integer predictions, same shape as ``true``.
        n_classes: number of classes; labels must lie in ``[0, n_classes)``.

    Returns:
        (n_classes, n_classes) int64 matrix, rows = true class, columns = predicted class.

    Raises:
        ValueError: shapes differ or a label is out of range.
    """
    true = np.asarray(true).ravel()
    predicted = np.asarray(predicted).ravel()
    if true.shape != predicted.shape:
        raise ValueError(f"true and predicted differ in size ({true.size} vs {predicted.size})")
    keep = true >= 0
    true, predicted = true[keep].astype(np.int64), predicted[keep].astype(np.int64)
    if true.size and (true.max() >= n_classes or predicted.min() < 0 or predicted.max() >= n_classes):
        raise ValueError(f"labels must lie in [0, {n_classes})")
    return np.bincount(true * n_classes + predicted, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def accuracy(cm: np.ndarray) -> float:
    """Fraction of counted items (or pixels) predicted correctly; the OA of segmentation."""
    total = cm.sum()
    return float(np.trace(cm) / total) if total else float("nan")


def per_class_accuracy(cm: np.ndarray) -> np.ndarray:
    """Recall of each class (correct / items of that class); NaN for a class with no items."""
    support = cm.sum(axis=1).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(support > 0, np.diag(cm) / support, np.nan)


def f1_per_class(cm: np.ndarray) -> np.ndarray:
    """F1 of each class, 2·TP / (2·TP + FP + FN); 0 where a class is neither present nor predicted
    (the convention of scikit-learn's ``zero_division=0``)."""
    tp = np.diag(cm).astype(np.float64)
    denom = cm.sum(axis=0) + cm.sum(axis=1)  # = 2TP + FP + FN
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, 2 * tp / denom, 0.0)


def macro_f1(cm: np.ndarray) -> float:
    """Unweighted mean of the per-class F1 over classes present in the true labels."""
    present = cm.sum(axis=1) > 0
    return float(f1_per_class(cm)[present].mean()) if present.any() else float("nan")


def weighted_f1(cm: np.ndarray) -> float:
    """Mean of per-class F1 weighted by each class's support (what the paper's authors' code reports)."""
    support = cm.sum(axis=1).astype(np.float64)
    return float((f1_per_class(cm) * support).sum() / support.sum()) if support.sum() else float("nan")


def iou_per_class(cm: np.ndarray) -> np.ndarray:
    """Intersection over union of each class, TP / (TP + FP + FN); NaN where the class appears in
    neither the labels nor the predictions (it then does not enter the mean)."""
    tp = np.diag(cm).astype(np.float64)
    union = cm.sum(axis=0) + cm.sum(axis=1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, tp / union, np.nan)


def mean_iou(cm: np.ndarray) -> float:
    """Mean IoU over the classes that occur in labels or predictions."""
    iou = iou_per_class(cm)
    return float(np.nanmean(iou)) if np.isfinite(iou).any() else float("nan")


def classification_summary(cm: np.ndarray, classes: list[str]) -> dict:
    """The metrics block of a classification result: accuracy, per-class accuracy, F1s, the matrix."""
    per_class = per_class_accuracy(cm)
    return {
        "accuracy": accuracy(cm),
        "macro_f1": macro_f1(cm),
        "weighted_f1": weighted_f1(cm),
        "per_class_accuracy": {c: _finite(v) for c, v in zip(classes, per_class, strict=True)},
        "classes": list(classes),
        "confusion_matrix": cm.astype(int).tolist(),
    }


def segmentation_summary(cm: np.ndarray, classes: list[str]) -> dict:
    """The metrics block of a segmentation result: OA, mIoU, per-class IoU and accuracy, the matrix."""
    return {
        "overall_accuracy": accuracy(cm),
        "mean_iou": mean_iou(cm),
        "per_class_iou": {c: _finite(v) for c, v in zip(classes, iou_per_class(cm), strict=True)},
        "per_class_accuracy": {c: _finite(v) for c, v in zip(classes, per_class_accuracy(cm), strict=True)},
        "classes": list(classes),
        "confusion_matrix": cm.astype(int).tolist(),
    }


def _finite(value: float) -> float | None:
    # JSON has no NaN: an undefined per-class value is written as null.
    return float(value) if np.isfinite(value) else None
