"""Choosing the input scale of the pseudo-labels' heat maps (``cam.scale_candidates``,
opt-in).

A heat map drawn from the input enlarged twice sits on a feature grid twice as fine relative to
the defect. On KolektorSDD's training images that tightened the maps and lifted the
pseudo-labels at most classifier epochs; on BSData's the enlarged input's maps were much worse
at every epoch scored. The option lets a run choose without masks, at the AUROC epoch of a
classifier attempt (its ``best.pt``), from image labels alone:

1. **The classifier must still see the defects.** A heat map explains the class "defect"; on an
   input where the classifier does not call the image defective it explains nothing. A scale is
   a candidate when the classifier calls at least ``MIN_CALLED`` of the defective training
   images defective (p(defect) at least its threshold) on the input resized by it
   (:func:`called_share`). When no scale passes, the one with the highest share is kept.
2. **Then, by ``cam.scale_rule``:**
   - ``area``: of two or more candidates, the one whose pseudo-labels mark the least of the
     defective training images (:func:`racam.pseudo.area.pseudo_label_area`) is kept (ties: the
     smaller scale, the cheaper map). A single candidate is kept unscored.
   - ``mean``: the maps of every candidate are averaged (what ``cam.scales`` computes), no area
     scored.

The classifier stage records the choice (``scale_choice`` in its ``result.json``); the epoch
choice by area (``classifier.keep_epoch``) then scores the epochs at those scales, and the
pseudo-labels are drawn at them. Other heat maps (Table I's scores, ``predict --source cam``)
stay at ``cam.scales``.

The area alone chose the better scale on KolektorSDD and the worse one on BSData. On the input
enlarged twice, BSData's classifier called 5 % (epoch 3) and 0 % (epoch 8) of its defective
training images defective, KolektorSDD's 71 % (epoch 11) (docs/results.md, twelfth and
thirteenth sessions). ``folder-example`` uses the ``mean`` rule over 1, 1.5 and 2, adopted by a
rule written down beforehand on KolektorSDD, BSData and DeepPCB (seventeenth session).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset

from racam.pseudo.tta import resized

__all__ = ["CALLED_AT", "MIN_CALLED", "RULES", "ScaleChoice", "Scales", "called_share",
           "choose_scale", "scales_text"]

#: Input scales whose heat maps are averaged (one: the map at that scale).
Scales = tuple[float, ...]

#: Share of the defective training images the classifier must call defective on the resized
#: input for a scale to be a candidate (a majority: its maps then explain a decision it makes).
MIN_CALLED = 0.5
#: p(defect) at which an image counts as called defective here: fixed; the run's decision
#: threshold (``classifier.threshold_rule``) is not read.
CALLED_AT = 0.5
#: ``cam.scale_rule``: keep the candidate whose labels mark least, or average every candidate.
RULES = ("area", "mean")


def scales_text(scales: Sequence[float]) -> str:
    """How logs and reports name the maps of ``scales``: ``input scale 2``, or ``the mean of
    the maps at input scales 1, 1.5``."""
    listed = ", ".join(f"{s:g}" for s in scales)
    return f"the mean of the maps at input scales {listed}" if len(scales) > 1 else (
        f"input scale {listed}")


@dataclasses.dataclass(frozen=True)
class ScaleChoice:
    """The kept scales (one with the ``area`` rule; the maps of several are averaged), the area
    (0-1) of each candidate scored by area (none with one candidate or the ``mean`` rule), and
    the share of the defective training images called defective at each scale (none with one
    scale given)."""

    scales: Scales
    areas: dict[float, float]
    called: dict[float, float] = dataclasses.field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        one = len(self.scales) == 1  # stored as one number, as before the mean rule
        return {"scale": self.scales[0] if one else list(self.scales),
                "areas": {f"{s:g}": a for s, a in self.areas.items()},
                "called": {f"{s:g}": c for s, c in self.called.items()}}

    @classmethod
    def from_json(cls, v: dict[str, Any]) -> ScaleChoice:
        scale = v["scale"]
        scales = tuple(float(s) for s in scale) if isinstance(scale, list) else (float(scale),)
        return cls(scales, {float(s): float(a) for s, a in v["areas"].items()},
                   {float(s): float(c) for s, c in (v.get("called") or {}).items()})


@torch.no_grad()
def called_share(model: nn.Module, dataset: Dataset, indices: Sequence[int], scale: float, *,
                 threshold: float = CALLED_AT, batch_size: int = 4,
                 device: torch.device | str = "cpu") -> float:
    """Share (0-1) of ``indices`` whose p(defect) on the input resized by ``scale``
    (:func:`racam.pseudo.tta.resized`, as the heat maps see it) is at least ``threshold``."""
    if not len(indices):
        raise ValueError("called_share: no images to score")
    called = 0
    for start in range(0, len(indices), batch_size):
        x = torch.stack([dataset[i].image for i in indices[start:start + batch_size]])
        p = model(resized(x, scale).to(device)).float().softmax(dim=1)[:, 1]
        called += int((p >= threshold).sum())
    return called / len(indices)


def choose_scale(candidates: Sequence[float], area: Callable[[float], float],
                 called: Callable[[float], float] | None = None,
                 min_called: float = MIN_CALLED, rule: str = "area") -> ScaleChoice:
    """The scales kept by the module's rule. Eligible: the scales whose ``called(scale)`` is at
    least ``min_called`` (all, when ``called`` is ``None``; the highest share alone when none
    is). ``rule="area"``: the eligible one whose ``area(scale)`` is smallest (ties: the smaller
    scale; a single one kept without scoring its area); ``"mean"``: every eligible one, in the
    order given. A single scale given is kept without either score."""
    if not candidates:
        raise ValueError("choose_scale: no candidate scale")
    if rule not in RULES:
        raise ValueError(f"choose_scale: rule {rule!r} is not one of {', '.join(RULES)}")
    scales = [float(s) for s in candidates]
    shares = {s: called(s) for s in scales} if called and len(scales) > 1 else {}
    eligible = [s for s in scales if s not in shares or shares[s] >= min_called]
    if not eligible:  # the classifier misses most defects at every scale
        eligible = [max(shares, key=lambda s: (shares[s], -s))]
    if len(eligible) == 1 or rule == "mean":
        return ScaleChoice(tuple(eligible), {}, shares)
    areas = {s: area(s) for s in eligible}
    return ScaleChoice((min(areas, key=lambda s: (areas[s], s)),), areas, shares)
