"""Pixel confusion counts and the scores built from them (docs/protocol.md, "Metrics").

With TP, FP, FN, TN counted over pixels (defect = positive):

- ``iou = TP / (TP + FP + FN)`` (defect IoU), ``iou_background = TN / (TN + FN + FP)``,
  ``miou = (iou + iou_background) / 2``;
- ``precision = TP / (TP + FP)``, ``recall = TP / (TP + FN)``,
  ``f1 = 2 TP / (2 TP + FP + FN)`` (the harmonic mean of precision and recall).

Micro averaging: counts are summed over every pixel of every image first, then scored
(:attr:`SegmentationMeter.total`); per-image counts are kept too.

Zero-division rule (never NaN, never a made-up 0 or 1): a ratio whose denominator is 0 is
computed over an empty set of pixels and is **undefined, ``None``** ("n/a" in reports; the
reason is given by :func:`undefined_reasons`). Hence:

- empty prediction on an empty mask: IoU, precision, recall and F1 are ``None`` (nothing to
  find, nothing found); background IoU is defined (1 when every pixel is background);
- empty prediction on a non-empty mask: IoU = recall = F1 = 0, precision ``None``;
- non-empty prediction on an empty mask: IoU = precision = F1 = 0, recall ``None``;
- prediction and mask both covering the whole image: ``iou_background`` is ``None``;
- no pixel at all (no image): every score is ``None``;
- ``miou`` is ``None`` when either class IoU is.

(``segmentation_models_pytorch.metrics`` returns 1 for every 0/0 instead, scikit-learn 0; the
three agree whenever no denominator is 0.)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor


def _ratio(num: int, den: int) -> float | None:
    """``num / den``, ``None`` when ``den`` is 0 (a score over an empty set)."""
    return None if den == 0 else num / den


@dataclass(frozen=True)
class Counts:
    """Pixel confusion counts (defect = positive) with the scores derived from them."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0

    def __add__(self, other: Counts) -> Counts:
        return Counts(self.tp + other.tp, self.fp + other.fp, self.fn + other.fn,
                      self.tn + other.tn)

    @property
    def iou(self) -> float | None:
        """Defect IoU ``TP / (TP + FP + FN)``."""
        return _ratio(self.tp, self.tp + self.fp + self.fn)

    @property
    def iou_background(self) -> float | None:
        """Background IoU ``TN / (TN + FN + FP)``."""
        return _ratio(self.tn, self.tn + self.fp + self.fn)

    @property
    def miou(self) -> float | None:
        """Mean of defect and background IoU (``None`` when either is)."""
        fg, bg = self.iou, self.iou_background
        return None if fg is None or bg is None else (fg + bg) / 2.0

    @property
    def precision(self) -> float | None:
        """``TP / (TP + FP)``."""
        return _ratio(self.tp, self.tp + self.fp)

    @property
    def recall(self) -> float | None:
        """``TP / (TP + FN)``."""
        return _ratio(self.tp, self.tp + self.fn)

    @property
    def f1(self) -> float | None:
        """``2 TP / (2 TP + FP + FN)``."""
        return _ratio(2 * self.tp, 2 * self.tp + self.fp + self.fn)

    def scores(self) -> dict[str, float | None]:
        """The six scores as a dict (``None``: undefined, see the module docstring)."""
        return {"iou": self.iou, "iou_background": self.iou_background, "miou": self.miou,
                "precision": self.precision, "recall": self.recall, "f1": self.f1}


def scores_from_counts(counts: Counts | Tensor | Sequence[int]) -> dict[str, float | None]:
    """Scores of one set of counts (a :class:`Counts` or ``(tp, fp, fn, tn)``)."""
    if not isinstance(counts, Counts):
        counts = Counts(*(int(v) for v in counts))
    return counts.scores()


#: Why each score is undefined (its denominator's pixels, all absent).
_EMPTY = {"iou": "no defect pixel in the masks and none predicted",
          "f1": "no defect pixel in the masks and none predicted",
          "precision": "no pixel predicted as defect",
          "recall": "no defect pixel in the masks",
          "iou_background": "no background pixel in the masks and none predicted"}


def undefined_reasons(counts: Counts) -> dict[str, str]:
    """``{score: why it is None}`` for the undefined scores of ``counts`` (empty when all are
    defined), e.g. ``{"precision": "no pixel predicted as defect"}``."""
    if counts.tp + counts.fp + counts.fn + counts.tn == 0:
        return {k: "the set is empty: no image was scored" for k in (*_EMPTY, "miou")}
    scores = counts.scores()
    out = {k: why for k, why in _EMPTY.items() if scores[k] is None}
    if scores["miou"] is None:
        out["miou"] = "defect or background IoU is n/a"
    return out


def _as_bool(x: Tensor, name: str) -> Tensor:
    if x.dtype == torch.bool:
        return x
    if x.dtype.is_floating_point or x.dtype.is_complex:
        raise TypeError(f"{name} must be a bool (or 0/1 integer) mask tensor, got {x.dtype}; "
                        "threshold probabilities first")
    return x != 0


def confusion_counts(pred: Tensor, target: Tensor) -> Tensor:
    """Per-image ``(tp, fp, fn, tn)`` of bool masks ``(B, H, W)`` -> int64 tensor ``(B, 4)``.

    A single ``(H, W)`` mask pair is treated as a batch of one.
    """
    pred, target = _as_bool(pred, "pred"), _as_bool(target, "target")
    if pred.shape != target.shape:
        raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} "
                         "differ in shape")
    if pred.ndim == 2:
        pred, target = pred[None], target[None]
    p, t = pred.flatten(1), target.flatten(1)
    tp = (p & t).sum(1)
    fp = (p & ~t).sum(1)
    fn = (~p & t).sum(1)
    tn = p.shape[1] - tp - fp - fn
    return torch.stack([tp, fp, fn, tn], dim=1).to(torch.int64)


class SegmentationMeter:
    """Accumulates confusion counts over images: micro total and per-image counts."""

    def __init__(self) -> None:
        self.total = Counts()
        self.per_image: list[tuple[str, Counts]] = []

    def update(self, pred: Tensor, target: Tensor, ids: Sequence[str] | None = None) -> Tensor:
        """Add a batch of bool masks ``(B, H, W)``; returns its ``(B, 4)`` counts."""
        counts = confusion_counts(pred, target)
        if ids is not None and len(ids) != counts.shape[0]:
            raise ValueError(f"{len(ids)} ids for a batch of {counts.shape[0]} masks")
        start = len(self.per_image)
        for k, row in enumerate(counts.tolist()):
            self.add(Counts(*row), str(ids[k]) if ids is not None else str(start + k))
        return counts

    def add(self, counts: Counts, image_id: str) -> None:
        """Add one image's counts (computed elsewhere, e.g. on another rank)."""
        self.per_image.append((str(image_id), counts))
        self.total = self.total + counts

    def summary(self) -> dict[str, float | None]:
        """Micro scores (``iou``, ``iou_background``, ``miou``, ``precision``, ``recall``,
        ``f1``, each in [0, 1] or ``None`` when undefined) plus the counts ``tp``, ``fp``,
        ``fn``, ``tn`` and ``images``."""
        t = self.total
        return {**t.scores(), "tp": t.tp, "fp": t.fp, "fn": t.fn, "tn": t.tn,
                "images": len(self.per_image)}
