"""Micro counts pooled over folds: their JSON form and the scores of their sum."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from racam.evaluation.metrics import Counts


def counts_dict(c: Counts) -> dict[str, int]:
    """JSON form of :class:`Counts`."""
    return {"tp": int(c.tp), "fp": int(c.fp), "fn": int(c.fn), "tn": int(c.tn)}


def counts_from(d: dict[str, int]) -> Counts:
    """Inverse of :func:`counts_dict`."""
    return Counts(tp=d["tp"], fp=d["fp"], fn=d["fn"], tn=d["tn"])


def pool_counts(counts: Sequence[Counts]) -> Counts:
    """Sum micro counts over folds (results are pooled over the test folds)."""
    total = counts[0]
    for c in counts[1:]:
        total = total + c
    return total


def pooled(folds: dict[int, dict[str, Any]],
           pick: Callable[[dict[str, Any]], dict[str, int] | None]) -> dict[str, Any] | None:
    """Pool the micro counts ``pick`` takes from each fold's results and score the sum
    (``None`` when no fold has counts)."""
    counts = [counts_from(c) for c in (pick(f) for f in folds.values()) if c]
    if not counts:
        return None
    total = pool_counts(counts)
    return {"iou": total.iou, "iou_background": total.iou_background, "miou": total.miou,
            "precision": total.precision, "recall": total.recall, "f1": total.f1,
            **counts_dict(total)}
