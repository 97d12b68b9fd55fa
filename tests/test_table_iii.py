"""Table III intervals (racam.paper.intervals) on hand-made per-image counts."""

from __future__ import annotations

import numpy as np

from racam.evaluation.bootstrap import bootstrap_iou, paired_bootstrap_iou_difference
from racam.evaluation.pooling import merged_per_image
from racam.paper.intervals import add_table_iii_intervals

A = {"a": [5, 1, 2, 90], "b": [0, 3, 1, 80], "c": [9, 0, 4, 70]}
B = {"a": [6, 0, 1, 90], "b": [1, 1, 0, 80], "c": [7, 2, 6, 70]}


def _rows() -> list[dict]:
    return [{"arch": "unet", "source": "pseudo", "round": 0, "seeds": [0, 1]},
            {"arch": "unet", "source": "pseudo-st1", "round": 1, "seeds": [0]},
            {"arch": "unet", "source": "true", "round": 0, "seeds": [0]}]


def test_intervals_pair_rows_by_image_and_repeat_a_single_seed() -> None:
    rows = add_table_iii_intervals(_rows(), [[A, B], [B], [A]], 300, confidence=0.9, seed=3)
    ws, st, fs = rows
    arr = lambda m: np.array([m[k] for k in sorted(m)])  # noqa: E731
    assert ws["interval"] == bootstrap_iou(np.stack([arr(A), arr(B)]), resamples=300,
                                           confidence=0.9, seed=3).to_dict()
    assert ws["minus_supervised"]["b"] == "unet-true"
    assert ws["minus_supervised"]["interval"] == paired_bootstrap_iou_difference(
        np.stack([arr(A), arr(B)]), np.stack([arr(A), arr(A)]), resamples=300,
        confidence=0.9, seed=3).to_dict()
    # the self-training round (one seed) against round 0 (two seeds): round 0's seeds averaged
    assert st["minus_round0"]["b"] == "unet-pseudo"
    assert st["minus_round0"]["interval"] == paired_bootstrap_iou_difference(
        np.stack([arr(B), arr(B)]), np.stack([arr(A), arr(B)]), resamples=300,
        confidence=0.9, seed=3).to_dict()
    assert "minus_supervised" not in fs and fs["interval"]["seeds"] == 1


def test_missing_or_mismatched_counts_give_reasons_not_errors() -> None:
    other = {"x": [1, 1, 1, 1], "y": [2, 0, 0, 5]}
    rows = add_table_iii_intervals(_rows(), [[A, other], None, [A]], 200, confidence=0.95,
                                   seed=0)
    ws, st, fs = rows
    assert ws["interval_seeds_used"] == [0] and ws["interval"]["seeds"] == 1  # first seed only
    assert ws["minus_supervised"]["interval"] is None
    assert "different images" in ws["minus_supervised"]["reason"]
    assert st["interval"] is None
    assert st["minus_round0"] == {"b": "unet-pseudo", "interval": None,
                                  "reason": "per-image counts missing"}
    assert fs["interval"] is not None


def test_merged_per_image_needs_every_fold() -> None:
    folds = {0: {"per_image": {"a": [1, 0, 0, 0]}}, 1: {"per_image": {"b": [0, 1, 0, 0]}}}
    pick = lambda f: f.get("per_image")  # noqa: E731
    assert merged_per_image(folds, pick) == {"a": [1, 0, 0, 0], "b": [0, 1, 0, 0]}
    assert merged_per_image(folds, pick, fold_prefix=True) == {
        "fold0/a": [1, 0, 0, 0], "fold1/b": [0, 1, 0, 0]}
    assert merged_per_image({0: folds[0], 1: {"counts": {}}}, pick) is None
    assert merged_per_image({0: folds[0], 1: {"per_image": {}}}, pick) == {"a": [1, 0, 0, 0]}
