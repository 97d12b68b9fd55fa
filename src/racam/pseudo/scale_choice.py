"""Choosing the input scale of the pseudo-labels' heat maps by their area
(``cam.scale_candidates``, opt-in).

A heat map drawn from the input enlarged twice sits on a feature grid twice as fine relative to
the defect. On KolektorSDD's training images that tightened the maps and lifted the
pseudo-labels at most classifier epochs; on BSData's the enlarged input's maps were much worse
at every epoch scored. The option lets a run choose without masks: each candidate scale (alone,
with ``cam.flips``) is scored at the AUROC epoch of a classifier attempt (its ``best.pt``) by the
share of the defective training images its pseudo-labels mark
(:func:`racam.pseudo.area.pseudo_label_area`), and the smallest is kept (ties: the smaller
scale, the cheaper map). The classifier stage records the choice (``scale_choice`` in its
``result.json``); the epoch choice by area (``classifier.keep_epoch``) then scores the epochs at
that scale, and the pseudo-labels are drawn at it. Other heat maps (Table I's scores,
``predict --source cam``) stay at ``cam.scales``.

The area chose the better scale on KolektorSDD and the worse one on BSData (all its defective
training images; docs/results.md, twelfth session), so no bundled config sets the option.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["ScaleChoice", "choose_scale"]


@dataclasses.dataclass(frozen=True)
class ScaleChoice:
    """The kept scale and the area (0-1) of each candidate scored (none with one candidate)."""

    scale: float
    areas: dict[float, float]

    def to_json(self) -> dict[str, Any]:
        return {"scale": self.scale, "areas": {f"{s:g}": a for s, a in self.areas.items()}}

    @classmethod
    def from_json(cls, v: dict[str, Any]) -> ScaleChoice:
        return cls(float(v["scale"]), {float(s): float(a) for s, a in v["areas"].items()})


def choose_scale(candidates: Sequence[float], area: Callable[[float], float]) -> ScaleChoice:
    """The candidate whose ``area(scale)`` is smallest (ties: the smaller scale); a single
    candidate is kept without scoring."""
    if not candidates:
        raise ValueError("choose_scale: no candidate scale")
    if len(candidates) == 1:
        return ScaleChoice(float(candidates[0]), {})
    areas = {float(s): area(float(s)) for s in candidates}
    return ScaleChoice(min(areas, key=lambda s: (areas[s], s)), areas)
