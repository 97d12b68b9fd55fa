"""``plan.json``: a folder run's fingerprint and plan, written into its run folder.

Written atomically (:func:`racam.io.atomic_write_json`) before the run's first stage, so the
run report (:func:`racam.plan.report.run_report_lines`) can state each planned choice. Layout::

    {"fingerprint": {...Fingerprint fields..., "images", "defect_share", "gray"},
     "settings": [{"key", "value", "reason", "taken", "used"}, ...],
     "notes": [...]}

``taken`` is ``false`` where the user's config set the key; ``used`` is the value the run used.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from racam.io import atomic_write_json, read_json
from racam.plan.apply import PlannedRun
from racam.plan.fingerprint import Fingerprint

PLAN_FILE = "plan.json"


def fingerprint_record(fp: Fingerprint) -> dict[str, Any]:
    """The fields of ``fp`` and its derived values, as plain data."""
    return {**dataclasses.asdict(fp), "images": fp.images, "defect_share": fp.defect_share,
            "gray": fp.gray}


def _used(run: PlannedRun, key: str) -> Any:
    section, name = key.split(".")
    value = getattr(getattr(run.config, section), name)
    return list(value) if isinstance(value, tuple) else value


def plan_record(run: PlannedRun) -> dict[str, Any]:
    """The content of ``plan.json`` (module docstring)."""
    settings = [{"key": s.key, "value": s.value, "reason": s.reason, "taken": taken,
                 "used": _used(run, s.key)} for s, taken in run.choices()]
    return {"fingerprint": fingerprint_record(run.fingerprint), "settings": settings,
            "notes": list(run.plan.notes)}


def write_plan(out: str | Path, run: PlannedRun) -> Path:
    """Write ``out/plan.json`` atomically; returns its path."""
    return atomic_write_json(Path(out) / PLAN_FILE, plan_record(run))


def read_plan(out: str | Path) -> dict[str, Any] | None:
    """The ``plan.json`` of the run folder ``out``, ``None`` when it has none."""
    path = Path(out) / PLAN_FILE
    return read_json(path) if path.is_file() else None
