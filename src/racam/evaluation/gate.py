"""The classifier gate of segmentation masks (``segmentation.gate: classifier``).

An image whose defect probability is below the decision threshold (``classifier.threshold``)
gets an empty mask, as mixed-supervision defect networks decide "defect or not" per image with
a classification head (Božič et al.). The gate applies to a mask (:func:`gate_mask`: predict,
export bundles) and to the per-image counts of a scored network (:func:`gated_per_image`): an
emptied mask predicts no pixel, so an image's ``[tp, fp, fn, tn]`` become
``[0, 0, tp + fn, fp + tn]``. The gated scores of a run are so computed from the same network's
counts, without predicting again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import torch

__all__ = ["GatedCounts", "gate_mask", "gated_per_image", "is_gated", "passes"]

M = TypeVar("M", torch.Tensor, np.ndarray)


def is_gated(gate: str) -> bool:
    """Whether ``segmentation.gate`` empties masks by the classifier's decision."""
    return gate == "classifier"


def passes(prob: float, threshold: float) -> bool:
    """Whether an image of defect probability ``prob`` keeps its mask: the classifier calls it
    defective (``prob >= threshold``, the decision everywhere in racam)."""
    return float(prob) >= float(threshold)


def gate_mask(mask: M, prob: float, threshold: float) -> M:
    """``mask`` when the classifier calls the image defective, else an empty mask of its shape
    and type."""
    if passes(prob, threshold):
        return mask
    return torch.zeros_like(mask) if isinstance(mask, torch.Tensor) else np.zeros_like(mask)


def emptied(counts: Sequence[int]) -> list[int]:
    """``[tp, fp, fn, tn]`` of an image once its predicted mask is emptied."""
    tp, fp, fn, tn = (int(c) for c in counts)
    return [0, 0, tp + fn, fp + tn]


@dataclass(frozen=True)
class GatedCounts:
    """Per-image counts ``{image id: [tp, fp, fn, tn]}`` with the gate applied, and the images
    whose mask it emptied."""

    per_image: dict[str, list[int]]
    emptied_images: int

    def pooled(self) -> dict[str, int]:
        """The pooled counts (``tp``, ``fp``, ``fn``, ``tn``)."""
        total = [sum(c[i] for c in self.per_image.values()) for i in range(4)]
        return dict(zip(("tp", "fp", "fn", "tn"), total))


def unique_ids(ids: Sequence[str]) -> list[str]:
    """``ids`` with ``#n`` appended to a repeated one, as per-image counts are keyed
    (:func:`racam.stages.heatmaps.per_image_counts`)."""
    out: list[str] = []
    seen: set[str] = set()
    for i in ids:
        key, n = str(i), 1
        while key in seen:
            key, n = f"{i}#{n}", n + 1
        seen.add(key)
        out.append(key)
    return out


def gated_per_image(per_image: Mapping[str, Sequence[int]], ids: Sequence[str],
                    probs: Sequence[float], threshold: float) -> GatedCounts | None:
    """The gated counts of ``per_image`` (a scored network's, by image id), the classifier's
    defect probabilities ``probs`` of the images ``ids``; ``None`` when an image of
    ``per_image`` has no probability there (it cannot be gated)."""
    prob_of = dict(zip(unique_ids(ids), probs))
    if any(k not in prob_of for k in per_image):
        return None
    out, n = {}, 0
    for k, counts in per_image.items():
        keep = passes(prob_of[k], threshold)
        out[k] = [int(c) for c in counts] if keep else emptied(counts)
        n += not keep
    return GatedCounts(out, n)
