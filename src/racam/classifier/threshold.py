"""The classifier's decision threshold chosen on the validation images' image labels
(``classifier.threshold_rule: val_f1``; no mask).

A classifier trained on a few hundred images is rarely calibrated: on KolektorSDD's sample it
called every test image good at p 0.5 (max p 0.21) while ranking them perfectly (AUROC 1.0), so
a gate at 0.5 emptied every mask. The rule here takes the threshold that maximises the F1 score
of the defective class on the validation images, as anomalib's ``F1AdaptiveThreshold`` does on
its validation set: the midpoint between two neighbouring validation probabilities, the lower
one on a tie (a missed defect costs an inspector more than a false alarm). The decision is
``p >= threshold`` everywhere in racam.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

__all__ = ["ThresholdChoice", "choose_threshold", "f1_at"]


@dataclasses.dataclass(frozen=True)
class ThresholdChoice:
    """The chosen ``threshold``, its validation F1, the F1 of the fixed threshold on the same
    images (``f1_fixed``), and the validation images it saw. ``fallback``: the fixed threshold
    was kept (the validation images hold one class)."""

    threshold: float
    f1: float | None
    images: int
    defective: int
    fallback: bool = False
    f1_fixed: float | None = None

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ThresholdChoice:
        return cls(**d)


def f1_at(labels: Sequence[int], probs: Sequence[float], threshold: float) -> float:
    """F1 of the defective class (label 1) when ``p >= threshold`` decides defective."""
    tp = sum(1 for y, p in zip(labels, probs) if y == 1 and p >= threshold)
    fp = sum(1 for y, p in zip(labels, probs) if y == 0 and p >= threshold)
    fn = sum(1 for y, p in zip(labels, probs) if y == 1 and p < threshold)
    return 2 * tp / max(2 * tp + fp + fn, 1)


def choose_threshold(labels: Sequence[int], probs: Sequence[float],
                     fallback: float) -> ThresholdChoice:
    """The threshold of the highest validation F1 among the midpoints of neighbouring distinct
    probabilities (and just below the lowest one: every image defective); ``fallback`` when the
    validation images do not hold both classes."""
    if len(labels) != len(probs):
        raise ValueError(f"{len(labels)} labels for {len(probs)} probabilities")
    n_def = sum(1 for y in labels if y == 1)
    if n_def in (0, len(labels)):
        return ThresholdChoice(fallback, None, len(labels), n_def, fallback=True)
    values = sorted(set(float(p) for p in probs))
    candidates = [values[0] / 2] + [(a + b) / 2 for a, b in zip(values, values[1:])]
    best = max(candidates, key=lambda t: (f1_at(labels, probs, t), -t))
    return ThresholdChoice(best, f1_at(labels, probs, best), len(labels), n_def,
                           f1_fixed=f1_at(labels, probs, fallback))
