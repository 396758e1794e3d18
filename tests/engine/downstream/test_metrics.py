"""The one metric module against hand computations and scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import confusion_matrix as sk_confusion
from sklearn.metrics import f1_score, jaccard_score

from engine.downstream.metrics import (
    accuracy,
    classification_summary,
    confusion_matrix,
    f1_per_class,
    iou_per_class,
    macro_f1,
    mean_iou,
    per_class_accuracy,
    segmentation_summary,
    weighted_f1,
)

TRUE = np.array([0, 0, 1, 1, 2, 2])
PRED = np.array([0, 1, 1, 1, 2, 0])


def test_hand_computed_case() -> None:
    cm = confusion_matrix(TRUE, PRED, 3)
    assert cm.tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    assert accuracy(cm) == pytest.approx(4 / 6)
    np.testing.assert_allclose(per_class_accuracy(cm), [0.5, 1.0, 0.5])
    # class 0: TP 1, FP 1, FN 1 -> 2/4; class 1: TP 2, FP 1, FN 0 -> 4/5; class 2: TP 1, FP 0, FN 1 -> 2/3
    np.testing.assert_allclose(f1_per_class(cm), [0.5, 0.8, 2 / 3])
    assert macro_f1(cm) == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)
    # IoU: class 0: 1/(1+1+1); class 1: 2/(2+1); class 2: 1/(1+0+1)
    np.testing.assert_allclose(iou_per_class(cm), [1 / 3, 2 / 3, 1 / 2])
    assert mean_iou(cm) == pytest.approx(0.5)


def test_agrees_with_scikit_learn_on_random_labels() -> None:
    rng = np.random.default_rng(5)
    true, pred = rng.integers(0, 7, 500), rng.integers(0, 7, 500)
    pred[:200] = true[:200]
    cm = confusion_matrix(true, pred, 7)
    np.testing.assert_array_equal(cm, sk_confusion(true, pred, labels=range(7)))
    assert macro_f1(cm) == pytest.approx(f1_score(true, pred, average="macro"))
    assert weighted_f1(cm) == pytest.approx(f1_score(true, pred, average="weighted"))
    assert mean_iou(cm) == pytest.approx(jaccard_score(true, pred, average="macro"))


def test_perfect_predictions_score_one() -> None:
    labels = np.random.default_rng(0).integers(0, 6, (32, 32))
    cm = confusion_matrix(labels, labels, 6)
    assert accuracy(cm) == 1.0 and macro_f1(cm) == 1.0 and weighted_f1(cm) == 1.0 and mean_iou(cm) == 1.0


def test_ignored_pixels_and_absent_classes() -> None:
    true = np.array([[0, 0, -1], [1, 1, -1]])
    pred = np.array([[0, 0, 3], [1, 0, 2]])  # predictions on ignored pixels do not count
    cm = confusion_matrix(true, pred, 4)
    assert cm.sum() == 4 and accuracy(cm) == pytest.approx(0.75)
    iou = iou_per_class(cm)
    assert np.isnan(iou[2]) and np.isnan(iou[3])  # neither labelled nor predicted: not in the mean
    assert mean_iou(cm) == pytest.approx((2 / 3 + 1 / 2) / 2)
    seg = segmentation_summary(cm, ["a", "b", "c", "d"])
    assert seg["per_class_iou"]["c"] is None and seg["overall_accuracy"] == pytest.approx(0.75)


def test_out_of_range_labels_are_refused() -> None:
    with pytest.raises(ValueError, match="labels must lie"):
        confusion_matrix(np.array([0, 3]), np.array([0, 1]), 3)


def test_summary_holds_the_matrix_and_per_class_values() -> None:
    summary = classification_summary(confusion_matrix(TRUE, PRED, 3), ["x", "y", "z"])
    assert summary["confusion_matrix"] == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    assert summary["per_class_accuracy"] == {"x": 0.5, "y": 1.0, "z": 0.5}
