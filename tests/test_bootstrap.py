"""Paired bootstrap of a pooled-IoU difference, against independent oracles: a plain Python loop
over the same resamples, scipy.stats.bootstrap, the exact bootstrap distribution enumerated on a
tiny sample, and cases whose interval is known in closed form."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import stats

from racam.evaluation.bootstrap import (
    align_per_image,
    bootstrap_iou,
    paired_bootstrap_iou_difference,
    pooled_iou,
)
from racam.evaluation.metrics import Counts


def _counts(rng: np.random.Generator, n: int, seeds: int | None = None) -> np.ndarray:
    shape = (n, 3) if seeds is None else (seeds, n, 3)
    c = rng.integers(0, 200, size=shape)
    c[..., 0] = rng.integers(0, 60, size=shape[:-1])   # tp smaller than fp / fn, as in CAMs
    return c


def _loop_iou(rows: list[list[int]]) -> float:
    tp = sum(r[0] for r in rows)
    den = tp + sum(r[1] for r in rows) + sum(r[2] for r in rows)
    return 1.0 if den == 0 else tp / den


def test_pooled_iou_matches_counts_class() -> None:
    rng = np.random.default_rng(0)
    c = _counts(rng, 7)
    total = Counts(*(int(v) for v in c.sum(0)), 0)
    assert pooled_iou(c) == pytest.approx(total.iou)
    # pooled_iou's rule for an all-zero sum (racam.evaluation.bootstrap): all zero -> 1
    assert pooled_iou(np.zeros((3, 4), dtype=int)) == 1.0
    assert pooled_iou(np.array([[0, 0, 5]])) == 0.0


@pytest.mark.parametrize("seeds", [None, 2])
def test_equals_a_plain_loop_over_the_same_resamples(seeds: int | None) -> None:
    """Same documented draw (one rng.integers call), statistic recomputed image by image."""
    rng = np.random.default_rng(1)
    n, resamples = 11, 500
    a, b = _counts(rng, n, seeds), _counts(rng, n, seeds)
    iv = paired_bootstrap_iou_difference(a, b, resamples=resamples, seed=123)
    A = a if seeds else a[None]
    B = b if seeds else b[None]
    idx = np.random.default_rng(123).integers(0, n, size=(resamples, n), dtype=np.int32)
    loop = []
    for row in idx:
        diffs = [_loop_iou([A[s, i].tolist() for i in row]) - _loop_iou([B[s, i].tolist()
                                                                         for i in row])
                 for s in range(A.shape[0])]
        loop.append(sum(diffs) / len(diffs))
    lo, hi = np.quantile(loop, [0.025, 0.975])
    assert iv.low == pytest.approx(lo, abs=1e-12) and iv.high == pytest.approx(hi, abs=1e-12)
    est = np.mean([_loop_iou(A[s].tolist()) - _loop_iou(B[s].tolist())
                   for s in range(A.shape[0])])
    assert iv.estimate == pytest.approx(est, abs=1e-12)
    assert (iv.images, iv.seeds, iv.resamples, iv.confidence) == (n, A.shape[0], resamples, 0.95)


@pytest.mark.parametrize("seeds", [None, 3])
def test_one_method_interval_equals_a_plain_loop_and_scipy(seeds: int | None) -> None:
    """:func:`bootstrap_iou` (Table III): the same draw, the pooled IoU of each resample
    recomputed image by image; with one seed also against scipy.stats.bootstrap."""
    rng = np.random.default_rng(4)
    n, resamples = 13, 400
    a = _counts(rng, n, seeds)
    iv = bootstrap_iou(a, resamples=resamples, seed=9)
    A = a if seeds else a[None]
    idx = np.random.default_rng(9).integers(0, n, size=(resamples, n), dtype=np.int32)
    loop = [np.mean([_loop_iou([A[s, i].tolist() for i in row]) for s in range(A.shape[0])])
            for row in idx]
    lo, hi = np.quantile(loop, [0.025, 0.975])
    assert iv.low == pytest.approx(lo, abs=1e-12) and iv.high == pytest.approx(hi, abs=1e-12)
    assert iv.estimate == pytest.approx(np.mean([_loop_iou(A[s].tolist())
                                                 for s in range(A.shape[0])]), abs=1e-12)
    assert iv.low < iv.estimate < iv.high
    if seeds is None:
        ref = stats.bootstrap((np.arange(n),), lambda i: float(pooled_iou(a[i.astype(int)])),
                              vectorized=False, n_resamples=20000, method="percentile",
                              random_state=np.random.default_rng(7))
        big = bootstrap_iou(a, resamples=20000, seed=1)
        spread = ref.standard_error
        assert spread > 0.01
        assert big.low == pytest.approx(ref.confidence_interval.low, abs=0.15 * spread)
        assert big.high == pytest.approx(ref.confidence_interval.high, abs=0.15 * spread)


def test_agrees_with_scipy_bootstrap() -> None:
    rng = np.random.default_rng(2)
    n = 25
    a, b = _counts(rng, n), _counts(rng, n)

    def diff(i: np.ndarray) -> float:
        i = i.astype(int)
        return float(pooled_iou(a[i]) - pooled_iou(b[i]))

    ref = stats.bootstrap((np.arange(n),), diff, vectorized=False, paired=True,
                          n_resamples=20000, method="percentile", confidence_level=0.95,
                          random_state=np.random.default_rng(7))
    iv = paired_bootstrap_iou_difference(a, b, resamples=20000, seed=3)
    spread = ref.standard_error
    assert spread > 0.01  # a real spread, so the tolerance below is meaningful
    assert iv.low == pytest.approx(ref.confidence_interval.low, abs=0.15 * spread)
    assert iv.high == pytest.approx(ref.confidence_interval.high, abs=0.15 * spread)


def test_matches_the_exact_bootstrap_distribution_on_four_images() -> None:
    """With 4 images all 4^4 index tuples are equally likely: the exact distribution of the
    statistic. The generator's resamples must reproduce its probabilities."""
    a = np.array([[5, 1, 2], [0, 3, 1], [9, 0, 4], [2, 2, 2]])
    b = np.array([[3, 2, 2], [1, 1, 1], [4, 5, 4], [2, 0, 6]])
    exact: dict[float, float] = {}
    for t in itertools.product(range(4), repeat=4):
        v = round(float(pooled_iou(a[list(t)]) - pooled_iou(b[list(t)])), 12)
        exact[v] = exact.get(v, 0.0) + 1 / 256
    # re-derive the statistics the function resampled (same draw) and compare frequencies
    resamples = 100000
    idx = np.random.default_rng(5).integers(0, 4, size=(resamples, 4), dtype=np.int32)
    tp_a, tp_b = a[idx].sum(1), b[idx].sum(1)
    got = np.round(tp_a[:, 0] / tp_a.sum(1) - tp_b[:, 0] / tp_b.sum(1), 12)
    values, freq = np.unique(got, return_counts=True)
    assert set(values.tolist()) <= set(exact)
    for v, f in zip(values, freq):
        assert f / resamples == pytest.approx(exact[float(v)], abs=0.006)
    # and the interval is the percentile interval of exactly those statistics
    iv = paired_bootstrap_iou_difference(a, b, resamples=resamples, seed=5)
    lo, hi = np.quantile(got, [0.025, 0.975])
    assert (iv.low, iv.high) == pytest.approx((lo, hi), abs=1e-12)
    # the exact 2.5 % / 97.5 % quantiles lie inside the Monte Carlo interval's neighbourhood
    xs = np.array(sorted(exact))
    cdf = np.cumsum([exact[x] for x in xs])
    q_lo, q_hi = xs[np.searchsorted(cdf, 0.025)], xs[np.searchsorted(cdf, 0.975)]
    step = np.diff(xs).max()
    assert abs(iv.low - q_lo) <= step and abs(iv.high - q_hi) <= step


def test_known_cases() -> None:
    rng = np.random.default_rng(4)
    c = _counts(rng, 9)
    same = paired_bootstrap_iou_difference(c, c, resamples=300)
    assert same.estimate == same.low == same.high == 0.0 and not same.excludes_zero
    # every image: a perfect (IoU 1), b half right (tp 1, fp 1): every resample gives 1 - 0.5
    perfect = np.array([[4, 0, 0]] * 6)
    half = np.array([[1, 1, 0]] * 6)
    iv = paired_bootstrap_iou_difference(perfect, half, resamples=300)
    assert (iv.estimate, iv.low, iv.high) == (0.5, 0.5, 0.5) and iv.excludes_zero
    neg = paired_bootstrap_iou_difference(half, perfect, resamples=300)
    assert (neg.low, neg.high) == (-0.5, -0.5) and neg.excludes_zero
    # one image: every resample is that image
    one = paired_bootstrap_iou_difference([[3, 1, 0]], [[1, 1, 1]], resamples=50)
    assert one.low == one.high == one.estimate == pytest.approx(0.75 - 1 / 3)
    # a tn column is ignored; (N, k) and (1, N, k) agree; seeded and reproducible
    with_tn = np.concatenate([c, rng.integers(0, 9, (9, 1))], axis=1)
    d = _counts(rng, 9)
    r1 = paired_bootstrap_iou_difference(c, d, resamples=400, seed=9)
    assert paired_bootstrap_iou_difference(with_tn, d[None], resamples=400, seed=9) == \
        paired_bootstrap_iou_difference(c, d, resamples=400, seed=9)
    assert r1 != paired_bootstrap_iou_difference(c, d, resamples=400, seed=10)
    assert r1.low < r1.high


def test_chunking_does_not_change_the_result(monkeypatch: pytest.MonkeyPatch) -> None:
    import racam.evaluation.bootstrap as bs

    rng = np.random.default_rng(6)
    a, b = _counts(rng, 13, 3), _counts(rng, 13, 3)
    whole = paired_bootstrap_iou_difference(a, b, resamples=257, seed=1)
    monkeypatch.setattr(bs, "CHUNK_CELLS", 13 * 5)  # 5 resamples per chunk
    assert paired_bootstrap_iou_difference(a, b, resamples=257, seed=1) == whole


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="same seeds and images"):
        paired_bootstrap_iou_difference(np.ones((3, 3)), np.ones((4, 3)))
    with pytest.raises(ValueError, match="no image"):
        paired_bootstrap_iou_difference(np.ones((0, 3)), np.ones((0, 3)))
    with pytest.raises(ValueError, match="confidence"):
        paired_bootstrap_iou_difference(np.ones((2, 3)), np.ones((2, 3)), confidence=1.0)
    with pytest.raises(ValueError, match=">= 0"):
        paired_bootstrap_iou_difference(-np.ones((2, 3)), np.ones((2, 3)))
    with pytest.raises(ValueError, match="shape"):
        paired_bootstrap_iou_difference(np.ones((2, 2)), np.ones((2, 2)))


def test_align_per_image_pairs_by_id() -> None:
    a = [{"x": [1, 0, 0, 5], "y": [0, 2, 0, 5]}, {"y": [1, 1, 1, 0], "x": [2, 2, 2, 0]}]
    b = [{"y": [9, 9, 9, 9], "x": [8, 8, 8, 8]}, {"x": [7, 7, 7, 7], "y": [6, 6, 6, 6]}]
    ca, cb, ids = align_per_image(a, b)
    assert ids == ["x", "y"]
    assert ca.tolist() == [[[1, 0, 0, 5], [0, 2, 0, 5]], [[2, 2, 2, 0], [1, 1, 1, 0]]]
    assert cb[:, :, 0].tolist() == [[8, 9], [7, 6]]
    with pytest.raises(ValueError, match="different images"):
        align_per_image(a, [{"x": [1, 1, 1, 1]}, {"x": [1, 1, 1, 1]}])
