"""Lines that state a fingerprint and a plan: for ``racam data info`` and the run report."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from racam.plan.fingerprint import Fingerprint, from_folder
from racam.plan.record import read_plan
from racam.plan.rules import plan_for


def fingerprint_lines(fp: Fingerprint) -> list[str]:
    """The fingerprint in a few lines."""
    modes = ", ".join(f"{m} {n}" for m, n in fp.modes)
    bits = ", ".join(f"{b} ({n})" for b, n in fp.bit_depths)
    w, h = fp.median_size
    lines = [f"Fingerprint of {fp.root}:",
             f"  images: {fp.good} good, {fp.defect} defective (defective share "
             f"{100 * fp.defect_share:.1f} %, {fp.imbalance:.1f} of one class per image of "
             "the other)",
             f"  sizes (width x height): median {w:g}x{h:g}, from {fp.min_size[0]}x"
             f"{fp.min_size[1]} to {fp.max_size[0]}x{fp.max_size[1]}, {fp.distinct_sizes} "
             f"distinct; median long side {fp.median_long_side:g}",
             f"  aspect ratio (width / height): median {fp.median_aspect:.3g}, from "
             f"{fp.min_aspect:.3g} to {fp.max_aspect:.3g}",
             f"  modes: {modes}; bits per channel: {bits}",
             "  masks: " + (f"{fp.masks} in masks/ (never read by the plan)" if fp.has_masks
                            else "none")]
    if fp.unreadable:
        lines.append(f"  unreadable headers: {len(fp.unreadable)} (first: {fp.unreadable[0]})")
    return lines


def _value(value: Any) -> str:
    if isinstance(value, bool):  # as the config file spells it
        return "true" if value else "false"
    if isinstance(value, (list, tuple)) and len(value) == 2:
        return f"{value[0]}x{value[1]}"
    return str(value)


def plan_lines(record: Mapping[str, Any]) -> list[str]:
    """``Plan: KEY = VALUE because REASON`` per setting of a ``plan.json`` record
    (:func:`racam.plan.record.plan_record`), then its notes."""
    lines = []
    for s in record["settings"]:
        if s["taken"]:
            lines.append(f"Plan: {s['key']} = {_value(s['value'])} because {s['reason']}")
        elif s["used"] == s["value"]:
            lines.append(f"Plan: {s['key']} = {_value(s['value'])} because {s['reason']} "
                         "(your config sets the same)")
        else:
            lines.append(f"Plan: {s['key']} = {_value(s['used'])} as your config sets it "
                         f"(the plan's {_value(s['value'])} because {s['reason']})")
    return lines + [f"Note: {n}" for n in record.get("notes", [])]


def run_report_lines(out: str | Path) -> list[str]:
    """The run report's lines on the plan of the run folder ``out``: its fingerprint and
    ``Plan: ... because ...`` per setting; none when the run had no plan (no ``plan.json``)."""
    record = read_plan(out)
    if record is None:
        return []
    fp = Fingerprint(**{k: _tuples(v) for k, v in record["fingerprint"].items()
                        if k in Fingerprint.__dataclass_fields__})
    return fingerprint_lines(fp) + plan_lines(record)


def _tuples(value: Any) -> Any:
    """JSON's lists back to the fingerprint's tuples."""
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


def folder_info_lines(root: str | Path, test_fraction: float = 0.3,
                      val_fraction: float = 0.15) -> list[str]:
    """What ``racam data info`` prints for the folder dataset at ``root``: its fingerprint and
    the plan a run that sets none of the planned keys takes."""
    fp = from_folder(root)
    plan = plan_for(fp, test_fraction=test_fraction, val_fraction=val_fraction)
    record = {"settings": [{"key": s.key, "value": s.value, "reason": s.reason, "taken": True}
                           for s in plan.settings()], "notes": list(plan.notes)}
    return fingerprint_lines(fp) + plan_lines(record)
