"""Metrics against hand-computed values and segmentation_models_pytorch.metrics."""

from __future__ import annotations

import math

import pytest
import segmentation_models_pytorch as smp
import torch

from racam.evaluation import (
    Counts,
    SegmentationMeter,
    confusion_counts,
    scores_from_counts,
)

KEYS = ("iou", "iou_background", "miou", "precision", "recall", "f1")


def _m(rows: list[str]) -> torch.Tensor:
    return torch.tensor([[c == "1" for c in r] for r in rows])


def test_hand_computed_tiny_example() -> None:
    pred = _m(["110", "010", "000"])
    true = _m(["100", "011", "001"])
    # tp: (0,0),(1,1) = 2; fp: (0,1) = 1; fn: (1,2),(2,2) = 2; tn: 9 - 5 = 4
    counts = confusion_counts(pred[None], true[None])
    assert counts.dtype == torch.int64 and counts.tolist() == [[2, 1, 2, 4]]
    s = scores_from_counts(counts[0])
    assert s["iou"] == pytest.approx(2 / 5)
    assert s["iou_background"] == pytest.approx(4 / 7)
    assert s["miou"] == pytest.approx((2 / 5 + 4 / 7) / 2)
    assert s["precision"] == pytest.approx(2 / 3)
    assert s["recall"] == pytest.approx(2 / 4)
    assert s["f1"] == pytest.approx(2 * (2 / 3) * (1 / 2) / (2 / 3 + 1 / 2))


def test_micro_and_per_image_accumulation_by_hand() -> None:
    meter = SegmentationMeter()
    meter.update(_m(["10", "00"])[None], _m(["11", "00"])[None], ids=["a"])  # tp1 fn1 tn2
    meter.update(_m(["11", "11"])[None], _m(["10", "00"])[None], ids=["b"])  # tp1 fp3
    assert meter.per_image == [("a", Counts(1, 0, 1, 2)), ("b", Counts(1, 3, 0, 0))]
    assert meter.total == Counts(2, 3, 1, 2)
    s = meter.summary()
    assert s["iou"] == pytest.approx(2 / 6) and s["precision"] == pytest.approx(2 / 5)
    assert s["recall"] == pytest.approx(2 / 3) and s["iou_background"] == pytest.approx(2 / 6)
    assert (s["tp"], s["fp"], s["fn"], s["tn"], s["images"]) == (2, 3, 1, 2, 2)
    assert Counts(1, 0, 1, 2) + Counts(1, 3, 0, 0) == meter.total


def test_equals_segmentation_models_pytorch_on_random_masks() -> None:
    g = torch.Generator().manual_seed(0)
    pred = torch.rand(6, 40, 30, generator=g) > 0.6
    true = torch.rand(6, 40, 30, generator=g) > 0.8
    meter = SegmentationMeter()
    meter.update(pred[:4], true[:4])
    meter.update(pred[4:], true[4:])
    tp, fp, fn, tn = smp.metrics.get_stats(pred[:, None].long(), true[:, None].long(),
                                           mode="binary")
    ours = confusion_counts(pred, true)
    assert torch.equal(ours, torch.cat([tp, fp, fn, tn], dim=1))
    ref = {
        "iou": smp.metrics.iou_score(tp, fp, fn, tn, reduction="micro"),
        "precision": smp.metrics.precision(tp, fp, fn, tn, reduction="micro"),
        "recall": smp.metrics.recall(tp, fp, fn, tn, reduction="micro"),
        "f1": smp.metrics.f1_score(tp, fp, fn, tn, reduction="micro"),
        # background IoU: swap the roles of the two classes
        "iou_background": smp.metrics.iou_score(tn, fn, fp, tp, reduction="micro"),
    }
    s = meter.summary()
    for k, v in ref.items():
        assert s[k] == pytest.approx(v.item(), rel=1e-6), k
    assert s["miou"] == pytest.approx((ref["iou"] + ref["iou_background"]).item() / 2, rel=1e-6)
    for (_, c), row in zip(meter.per_image, ours.tolist()):
        assert c == Counts(*row)


N = None  # a score over an empty set of pixels: undefined


@pytest.mark.parametrize(
    ("pred", "true", "expected"),
    [
        # empty prediction, empty mask: no defect score (nothing to find, nothing found)
        (["00", "00"], ["00", "00"],
         dict(iou=N, iou_background=1, miou=N, precision=N, recall=N, f1=N)),
        # empty prediction, non-empty mask: nothing predicted, so no precision
        (["00", "00"], ["10", "00"],
         dict(iou=0, iou_background=3 / 4, miou=3 / 8, precision=N, recall=0, f1=0)),
        # non-empty prediction, empty mask: nothing to find, so no recall
        (["01", "00"], ["00", "00"],
         dict(iou=0, iou_background=3 / 4, miou=3 / 8, precision=0, recall=N, f1=0)),
        # both full: no background at all
        (["11", "11"], ["11", "11"],
         dict(iou=1, iou_background=N, miou=N, precision=1, recall=1, f1=1)),
        # complementary
        (["11", "00"], ["00", "11"],
         dict(iou=0, iou_background=0, miou=0, precision=0, recall=0, f1=0)),
    ],
)
def test_zero_division_rules(pred, true, expected) -> None:
    meter = SegmentationMeter()
    meter.update(_m(pred)[None], _m(true)[None])
    s = meter.summary()
    for k in KEYS:
        if expected[k] is None:
            assert s[k] is None, k
        else:
            assert not math.isnan(s[k])
            assert s[k] == pytest.approx(expected[k]), k


def test_empty_meter_and_bad_inputs() -> None:
    s = SegmentationMeter().summary()
    assert all(s[k] is None for k in KEYS) and s["images"] == 0
    with pytest.raises(TypeError, match="bool"):
        confusion_counts(torch.rand(1, 2, 2), torch.zeros(1, 2, 2, dtype=torch.bool))
    with pytest.raises(ValueError, match="shape"):
        confusion_counts(torch.zeros(1, 2, 2, dtype=torch.bool), torch.zeros(1, 2, 3).bool())
    with pytest.raises(ValueError, match="ids"):
        SegmentationMeter().update(torch.zeros(2, 2, 2).bool(), torch.zeros(2, 2, 2).bool(),
                                   ids=["x"])
    # 0/1 integer masks are accepted and (H, W) is a batch of one
    assert confusion_counts(torch.tensor([[1, 0]]), torch.tensor([[1, 1]])).tolist() == \
        [[1, 0, 1, 0]]
