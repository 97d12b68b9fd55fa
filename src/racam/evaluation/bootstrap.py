"""Paired bootstrap interval for the difference of two methods' pooled IoU over the same images.

The data are per-image pixel counts ``(tp, fp, fn)`` (a fourth column, ``tn``, is ignored) of
two methods on the same images, optionally for several classifier seeds: arrays of shape
``(N, 3+)`` or ``(S, N, 3+)``, image ``i`` of ``a`` paired with image ``i`` of ``b``, the same
images in the same order for every seed.

Statistic: the mean over seeds of ``IoU(a_s) - IoU(b_s)``, where ``IoU(c) = sum TP / (sum TP +
sum FP + sum FN)`` is the pooled (micro) IoU of the images (docs/protocol.md, "Metrics"; 1 when its
denominator is 0, which happens only when every count is 0). With one seed it is the plain
difference of the two pooled IoUs.

Resampling: ``rng = numpy.random.default_rng(seed)``, then ``idx = rng.integers(0, N, size=
(resamples, N), dtype=numpy.int32)`` in one call; row ``r`` of ``idx`` lists the images of
resample ``r`` (drawn with replacement), and the same rows are used for both methods and every
seed (paired over images; seeds are not resampled). Interval: the percentile interval, the
``(1 - confidence) / 2`` and ``(1 + confidence) / 2`` quantiles (numpy's linear interpolation)
of the ``resamples`` statistics. So a result is reproducible from ``seed`` alone.
:func:`bootstrap_iou` gives the same interval for one method's pooled IoU (Table III).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

#: Seed of the bootstrap's numpy generator in racam's reports (results are reproducible from it).
BOOTSTRAP_SEED = 0
#: Coverage of racam's reported intervals.
CONFIDENCE = 0.95
#: Most ``resamples x images`` cells handled at once (bounds memory; results do not depend on it).
CHUNK_CELLS = 1 << 22


@dataclass(frozen=True)
class Interval:
    """A bootstrap estimate with its percentile interval (fractions, e.g. 0.031 = 3.1 points)."""

    estimate: float
    low: float
    high: float
    confidence: float
    resamples: int
    images: int
    seeds: int

    @property
    def excludes_zero(self) -> bool:
        """The whole interval lies on one side of 0 (``low > 0`` or ``high < 0``)."""
        return self.low > 0 or self.high < 0

    def to_dict(self) -> dict[str, Any]:
        """JSON form (the fields plus ``excludes_zero``)."""
        return {**asdict(self), "excludes_zero": self.excludes_zero}


def pooled_iou(counts: np.ndarray) -> np.ndarray:
    """Pooled IoU over the second-to-last axis of ``(..., N, 3+)`` counts ``(tp, fp, fn[, tn])``:
    ``sum tp / (sum tp + sum fp + sum fn)``, 1 where that denominator is 0."""
    c = np.asarray(counts)
    s = c[..., :3].sum(axis=-2)
    return _iou(s[..., 0], s[..., 1], s[..., 2])


def _iou(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
    tp, den = np.asarray(tp, dtype=np.float64), np.asarray(tp + fp + fn, dtype=np.float64)
    out = np.ones(np.broadcast(tp, den).shape, dtype=np.float64)
    np.divide(tp, den, out=out, where=den > 0)
    return out


def _as_counts(x: Any, name: str) -> np.ndarray:
    c = np.asarray(x)
    if c.ndim == 2:
        c = c[None]
    if c.ndim != 3 or c.shape[-1] < 3:
        raise ValueError(f"{name}: expected per-image counts of shape (N, 3+) or (S, N, 3+), "
                         f"got {c.shape}")
    if not np.issubdtype(c.dtype, np.integer):
        if not np.all(np.isfinite(c)) or np.any(c != np.round(c)):
            raise ValueError(f"{name}: counts must be whole numbers")
        c = c.astype(np.int64)
    if np.any(c[..., :3] < 0):
        raise ValueError(f"{name}: counts must be >= 0")
    return c[..., :3].astype(np.int64)


def paired_bootstrap_iou_difference(a: Any, b: Any, *, resamples: int = 10000,
                                    confidence: float = 0.95, seed: int = 0) -> Interval:
    """Percentile bootstrap interval of ``mean_s [IoU(a_s) - IoU(b_s)]`` over resampled images.

    Args:
        a, b: per-image counts ``(N, 3+)`` or ``(S, N, 3+)`` of the two methods, paired by
            position (see the module docstring).
        resamples: number of bootstrap resamples (>= 1).
        confidence: interval coverage in (0, 1).
        seed: seed of the numpy generator that draws the resamples.

    Raises:
        ValueError: shapes differ, no image, or an argument out of range.
    """
    ca, cb = _as_counts(a, "a"), _as_counts(b, "b")
    if ca.shape != cb.shape:
        raise ValueError(f"a {ca.shape} and b {cb.shape} must hold the same seeds and images")
    return _percentile_interval(ca, cb, resamples, confidence, seed)


def bootstrap_iou(a: Any, *, resamples: int = 10000, confidence: float = 0.95,
                  seed: int = 0) -> Interval:
    """Percentile bootstrap interval of one method's ``mean_s IoU(a_s)`` over resampled images
    (the resamples drawn exactly as in :func:`paired_bootstrap_iou_difference`).

    Raises:
        ValueError: no image, or an argument out of range.
    """
    return _percentile_interval(_as_counts(a, "a"), None, resamples, confidence, seed)


def _percentile_interval(ca: np.ndarray, cb: np.ndarray | None, resamples: int,
                         confidence: float, seed: int) -> Interval:
    """The interval of ``mean_s [IoU(a_s) - IoU(b_s)]`` (of ``mean_s IoU(a_s)`` without ``b``)."""
    n_seeds, n = ca.shape[0], ca.shape[1]
    if n == 0:
        raise ValueError("no image to resample")
    if resamples < 1:
        raise ValueError(f"resamples must be >= 1, got {resamples}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    estimate = float(np.mean(pooled_iou(ca) - (0.0 if cb is None else pooled_iou(cb))))
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(resamples, n), dtype=np.int32)
    stats = np.empty(resamples, dtype=np.float64)
    step = max(1, CHUNK_CELLS // n)
    for lo in range(0, resamples, step):
        rows = idx[lo:lo + step]
        r = rows.shape[0]
        # multiplicity of every image in every resample, (r, N)
        flat = (np.arange(r, dtype=np.int64)[:, None] * n + rows).ravel()
        mult = np.bincount(flat, minlength=r * n).reshape(r, n)
        total = np.zeros(r, dtype=np.float64)
        for s in range(n_seeds):
            sa = mult @ ca[s]                                      # (r, 3) summed counts
            total += _iou(sa[:, 0], sa[:, 1], sa[:, 2])
            if cb is not None:
                sb = mult @ cb[s]
                total -= _iou(sb[:, 0], sb[:, 1], sb[:, 2])
        stats[lo:lo + r] = total / n_seeds
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(stats, [alpha, 1.0 - alpha])
    return Interval(estimate=estimate, low=float(low), high=float(high), confidence=confidence,
                    resamples=resamples, images=n, seeds=n_seeds)


def align_per_image(per_seed_a: Sequence[Mapping[str, Sequence[int]]],
                    per_seed_b: Sequence[Mapping[str, Sequence[int]]]
                    ) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Per-image counts keyed by image id (one mapping per seed, for each method) as paired
    ``(S, N, 4)`` arrays in one image order (sorted ids); raises ``ValueError`` unless every
    mapping holds the same image ids."""
    if len(per_seed_a) != len(per_seed_b) or not per_seed_a:
        raise ValueError(f"need the same, non-zero number of seeds for both methods, got "
                         f"{len(per_seed_a)} and {len(per_seed_b)}")
    ids = sorted(per_seed_a[0])
    for m in (*per_seed_a, *per_seed_b):
        if sorted(m) != ids:
            missing = sorted(set(ids) ^ set(m))[:5]
            raise ValueError(f"per-image counts cover different images (e.g. {missing})")

    def stack(per_seed: Sequence[Mapping[str, Sequence[int]]]) -> np.ndarray:
        return np.array([[list(m[i]) for i in ids] for m in per_seed], dtype=np.int64)

    return stack(per_seed_a), stack(per_seed_b), ids
