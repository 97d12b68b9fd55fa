"""Micro counts pooled over folds: their JSON form and the scores of their sum."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from racam.evaluation.metrics import Counts, undefined_reasons


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


def pooled(folds: Mapping[int, Any],
           pick: Callable[[Any], dict[str, int] | None]) -> dict[str, Any] | None:
    """Pool the micro counts ``pick`` takes from each fold's results and score the sum
    (``None`` when no fold has counts). A score over an empty set is ``None``, and
    ``"undefined"`` then maps it to the reason
    (:func:`~racam.evaluation.metrics.undefined_reasons`)."""
    counts = [counts_from(c) for c in (pick(f) for f in folds.values()) if c]
    if not counts:
        return None
    total = pool_counts(counts)
    out: dict[str, Any] = {**total.scores(), **counts_dict(total)}
    reasons = undefined_reasons(total)
    if reasons:
        out["undefined"] = reasons
    return out


def merged_per_image(folds: Mapping[int, Any],
                     pick: Callable[[Any], dict[str, Any] | None], *,
                     fold_prefix: bool = False) -> dict[str, Any] | None:
    """The per-image counts ``pick`` takes from each fold's results, in one mapping (keys
    ``fold<k>/<id>`` with ``fold_prefix``, else the image ids); ``None`` when a fold has none
    (a result stored before they were kept, or no masks). A fold without images adds none."""
    out: dict[str, Any] = {}
    for k, f in folds.items():
        per = pick(f)
        if per is None:
            return None
        out.update({f"fold{k}/{i}": c for i, c in per.items()} if fold_prefix else per)
    return out


def undefined_note(what: str, result: dict[str, Any] | None) -> str | None:
    """One line saying which scores of a pooled ``result`` are n/a and why (``None`` when every
    score is defined), e.g. ``"segmentation: IoU, F1 n/a (no defect pixel in the masks and none
    predicted)"``."""
    reasons = (result or {}).get("undefined")
    if not reasons:
        return None
    by_reason: dict[str, list[str]] = {}
    for score, why in reasons.items():
        by_reason.setdefault(why, []).append(SCORE_NAMES.get(score, score))
    return f"{what}: " + "; ".join(f"{', '.join(names)} n/a ({why})"
                                   for why, names in by_reason.items())


#: Display names of the scores.
SCORE_NAMES = {"iou": "IoU", "iou_background": "background IoU", "miou": "mIoU",
               "precision": "precision", "recall": "recall", "f1": "F1"}
