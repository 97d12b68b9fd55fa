"""How the reproduction's report writes its figures: scores in percent (``-`` missing, ``n/a``
undefined), bootstrap intervals in IoU points, method labels, goals; and :class:`ReportInput`,
what every section of the report reads."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from racam.cam.registry import get_method
from racam.config import RunConfig
from racam.errors import ConfigError
from racam.paper.results import IntervalRecord, ReproductionResults, Scores, Spread
from racam.report.names import display_name
from racam.report.tables import NA, pct


@dataclass(frozen=True)
class ReportInput:
    """A reproduction's results, the config it ran with and the report's folder."""

    cfg: RunConfig
    res: ReproductionResults
    out: Path

    @property
    def seeds(self) -> list[int]:
        """Classifier seeds (the config's seed when none is recorded)."""
        return self.res.seeds or [self.cfg.seed]

    @property
    def multi(self) -> bool:
        return len(self.seeds) > 1

    @property
    def delta(self) -> float | None:
        """RA-CAM's delta, chosen on training images."""
        return self.res.chosen_delta

    @property
    def delta_text(self) -> str:
        return "-" if self.delta is None else f"{self.delta:g}"

    @property
    def sd_note(self) -> str:
        """`` (mean ± sd over N seeds)`` after a heat-map table's title, or nothing."""
        return f" (mean ± sd over {len(self.seeds)} seeds)" if self.multi else ""


def fmt(view: Scores | None, sd: Spread | None, key: str) -> str:
    """``12.34`` or ``12.34 ± 0.56`` (percent), ``-`` when missing, ``n/a`` when undefined."""
    if not view or key not in view:
        return "-"
    if view[key] is None:
        return pct(None)
    spread = sd.get(key) if sd else None
    if spread is not None:
        return f"{100 * view[key]:.2f} ± {100 * spread:.2f}"
    return pct(view[key])


def score4(record: dict[str, Any], key: str) -> str:
    """``0.9876``; ``-`` when ``key`` is missing, ``n/a`` when it is recorded as undefined."""
    if key not in record:
        return "-"
    value = record[key]
    return NA if value is None else f"{value:.4f}"


def spread(values: list[float | None] | None) -> str:
    """``12.34 ± 0.56``: mean ± sd of per-fold IoUs (percent), ``-`` under two values."""
    known = [v for v in (values or []) if v is not None]
    if len(known) < 2:
        return "-"
    return f"{100 * statistics.mean(known):.2f} ± {100 * statistics.stdev(known):.2f}"


def ci(iv: IntervalRecord | None) -> str:
    """``+1.23 [-0.40, +2.90]`` (points of IoU), ``-`` when there is no interval."""
    if not iv:
        return "-"
    return (f"{100 * iv['estimate']:+.2f} [{100 * iv['low']:+.2f}, {100 * iv['high']:+.2f}]")


def effect(iv: IntervalRecord) -> str:
    """``raises`` / ``lowers`` where the interval excludes 0, else ``does not distinguishably
    change``."""
    return ("raises" if iv["low"] > 0 else "lowers" if iv["high"] < 0
            else "does not distinguishably change")


def label(method: str, delta: float | None) -> str:
    """Display name; FGBP methods at delta 0 are guided backpropagation, and say so."""
    name = display_name(method)
    try:
        fgbp = get_method(method).uses_fgbp
    except ConfigError:
        return name
    if delta is not None and delta == 0 and fgbp:
        if method.endswith("+fgbp"):
            return f"{name} (delta 0: guided backpropagation)"
        return f"{name} (delta 0: guided backpropagation, = LayerCAM+GBP)"
    return name


def names(keys: list[str]) -> str:
    """Display names, comma-separated."""
    return ", ".join(map(display_name, keys))


def goal_text(goal: float | None, iou: float | None) -> str:
    """``">= 55: met"`` / ``"not met (...)"`` for a defect-IoU ``goal`` in % (``-``: none)."""
    if goal is None:
        return "-"
    if iou is None:
        return f"not met: >= {goal:g}, no figure"
    return f"met: >= {goal:g}" if 100 * iou >= goal else f"not met: >= {goal:g}"
