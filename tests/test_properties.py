"""Property tests (hypothesis): the metrics' zero-division rule, Otsu on degenerate maps and the
percentile filter on ties, checked against plain-Python oracles over many generated cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from racam.cam.percentile import percentile_filter, positive_percentile
from racam.evaluation.metrics import Counts, SegmentationMeter, undefined_reasons
from racam.pseudo.otsu import otsu_mask, otsu_threshold

FAST = settings(max_examples=150, deadline=None)
masks = st.integers(1, 6).flatmap(lambda n: st.tuples(
    arrays(np.bool_, (n, n)), arrays(np.bool_, (n, n))))
counts = st.builds(Counts, *(st.integers(0, 50) for _ in range(4)))


def _oracle(num: int, den: int) -> float | None:
    return None if den == 0 else num / den


@FAST
@given(counts)
def test_a_score_is_none_exactly_when_its_denominator_is_zero(c: Counts) -> None:
    expected = {"iou": _oracle(c.tp, c.tp + c.fp + c.fn),
                "iou_background": _oracle(c.tn, c.tn + c.fp + c.fn),
                "precision": _oracle(c.tp, c.tp + c.fp), "recall": _oracle(c.tp, c.tp + c.fn),
                "f1": _oracle(2 * c.tp, 2 * c.tp + c.fp + c.fn)}
    scores = c.scores()
    for k, v in expected.items():
        assert scores[k] == v, k
        assert v is None or 0.0 <= v <= 1.0
    fg, bg = expected["iou"], expected["iou_background"]
    assert scores["miou"] == (None if fg is None or bg is None else (fg + bg) / 2)
    # never 1 from nothing: no defect pixel anywhere (true or predicted) gives no defect score
    if c.tp + c.fp + c.fn == 0:
        assert scores["iou"] is None and scores["precision"] is None
    # every None score has a reason, and only those
    assert set(undefined_reasons(c)) == {k for k, v in scores.items() if v is None}


@FAST
@given(masks)
def test_meter_scores_pixels_like_the_oracle(pair) -> None:
    pred, true = pair
    meter = SegmentationMeter()
    meter.update(torch.from_numpy(pred)[None], torch.from_numpy(true)[None])
    tp = int((pred & true).sum())
    fp, fn = int((pred & ~true).sum()), int((~pred & true).sum())
    s = meter.summary()
    assert s["iou"] == _oracle(tp, tp + fp + fn)
    assert s["precision"] == _oracle(tp, tp + fp) and s["recall"] == _oracle(tp, tp + fn)
    assert all(v is None or not math.isnan(v) for v in s.values())


def test_empty_meter_scores_nothing() -> None:
    s = SegmentationMeter().summary()
    assert s["images"] == 0
    assert all(s[k] is None for k in ("iou", "iou_background", "miou", "precision", "recall",
                                      "f1"))


small_maps = st.integers(1, 5).flatmap(lambda h: st.integers(1, 5).flatmap(
    lambda w: arrays(np.float32, (h, w), elements=st.floats(0, 1, width=32))))


@FAST
@given(st.floats(-10, 10, width=32), st.integers(1, 6), st.integers(1, 6))
def test_otsu_of_a_constant_map_is_empty(value: float, h: int, w: int) -> None:
    m = torch.full((1, h, w), value)
    assert otsu_threshold(m).item() == np.float32(value)
    assert not otsu_mask(m).any()


@FAST
@given(st.floats(0, 1, width=32), st.floats(0, 1, width=32), arrays(np.bool_, (4, 5)))
def test_otsu_of_a_two_valued_map_separates_the_values(a: float, b: float, where) -> None:
    lo, hi = min(a, b), max(a, b)
    m = torch.from_numpy(np.where(where, hi, lo).astype(np.float32))[None]
    mask = otsu_mask(m)[0].numpy()
    if lo == hi or where.all() or not where.any():  # one value: nothing to separate
        assert not mask.any()
    else:
        assert np.array_equal(mask, where)


@FAST
@given(small_maps)
def test_otsu_mask_is_an_upper_set(m: np.ndarray) -> None:
    mask = otsu_mask(torch.from_numpy(m)[None])[0].numpy()
    assert mask.shape == m.shape and mask.dtype == np.bool_
    if mask.any() and (~mask).any():  # every masked value lies above every unmasked one
        assert m[mask].min() > m[~mask].max()
    assert not mask.all()  # the maximum defines the top bin; a threshold below all is never set


tie_values = st.lists(st.sampled_from([-1.0, 0.0, 0.25, 0.5, 1.0]), min_size=1, max_size=40)


@FAST
@given(tie_values, st.sampled_from([0, 10, 25, 50, 75, 90, 100]))
def test_percentile_on_ties_matches_numpy(values: list[float], q: float) -> None:
    x = torch.tensor(values, dtype=torch.float32)
    pos = np.array([v for v in values if v > 0], dtype=np.float64)
    t = positive_percentile(x[None], q, 1)[0].item()
    if pos.size == 0:
        assert t == math.inf
    else:
        ref = np.percentile(pos, q, method="linear")
        assert t == pytest.approx(ref, rel=1e-6, abs=1e-7)
        if ref in pos:  # on a tie (or an exact rank) the threshold is that very value
            assert t == np.float32(ref)
    kept = percentile_filter(x[None], q, "channel")[0]
    # ties are kept or dropped together: a value is kept iff it is positive and >= t
    expected = torch.tensor([v if v > 0 and v >= t else 0.0 for v in values])
    assert torch.equal(kept, expected)
