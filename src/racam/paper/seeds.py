"""Classifier seeds of a reproduction: each seed's output folder and log lines, and scores as
mean ± sd over the seeds."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

#: Scores averaged over seeds (fractions in [0, 1]).
SCORES = ("iou", "precision", "recall", "f1", "miou", "iou_background")


def seed_dir(out: Path, cfg_seed: int, seed: int) -> Path:
    """Output folder of classifier seed ``seed``: ``out`` for the config's own seed, else
    ``out/seed<seed>``."""
    return out if seed == cfg_seed else out / f"seed{seed}"


def seed_log(log: Callable[[str], None], seed: int) -> Callable[[str], None]:
    """``log`` with ``[racam] seed S:`` in place of ``[racam]`` (one pipeline per classifier
    seed: its lines say which)."""
    def out(line: str) -> None:
        tag = "[racam] "
        log(f"{tag}seed {seed}: {line[len(tag):]}" if line.startswith(tag) else line)
    return out


def mean_sd(views: list[dict[str, Any] | None]) -> tuple[dict[str, Any] | None,
                                                         dict[str, float | None] | None]:
    """Mean and sample sd over seeds of the :data:`SCORES` of pooled views (``None`` views, a
    seed without that result, are left out). One view: itself (counts included) and no sd."""
    vs = [v for v in views if v]
    if not vs:
        return None, None
    if len(vs) == 1:
        return {**vs[0], "seeds": 1}, None
    mean = {k: _mean_or_none([v[k] for v in vs]) for k in SCORES if all(k in v for v in vs)}
    sd = {k: None if mean[k] is None else statistics.stdev(v[k] for v in vs) for k in mean}
    return {**mean, "seeds": len(vs)}, sd


def _mean_or_none(values: list[float | None]) -> float | None:
    """Mean of ``values``; ``None`` when any is ``None`` (a score over an empty set)."""
    if any(v is None for v in values):
        return None
    return statistics.mean(v for v in values if v is not None)
