"""The report's "What this run shows next to the paper": plain statements, each backed by an
interval. An order between two methods is stated only where the paired bootstrap interval of
their difference excludes 0; "FGBP helps" only at delta > 0; no ratio with a zero or missing
denominator."""

from __future__ import annotations

from racam.cam.registry import CAM_OPTION_DEFAULTS, variant_key
from racam.paper.format import ci, effect, names
from racam.paper.reference import REFERENCE, weak_share_text
from racam.paper.results import Comparisons, NetworkRow, ReproductionResults
from racam.report.names import display_name
from racam.report.tables import pct


def observations(res: ReproductionResults) -> list[str]:
    """What this run shows next to the paper's claims, one statement a line."""
    level = f"{100 * res.comparisons.confidence:g}%"
    return [*ranking_notes(res, level), *fgbp_notes(res, level), *filter_notes(res, level),
            *variant_notes(res, level), *self_training_notes(res.table_iii),
            *supervised_share_notes(res.table_iii)]


def _sides(boot: Comparisons, methods: list[str]) -> dict[str, list[str]]:
    """``methods`` by where RA-CAM stands against each: ``above``, ``level`` (interval
    contains 0), ``below``, ``unknown`` (no interval)."""
    sides: dict[str, list[str]] = {"above": [], "level": [], "below": [], "unknown": []}
    for m in methods:
        iv = boot.get(REFERENCE, m)
        side = ("unknown" if iv is None else "above" if iv["low"] > 0
                else "below" if iv["high"] < 0 else "level")
        sides[side].append(m)
    return sides


def ranking_notes(res: ReproductionResults, level: str) -> list[str]:
    """RA-CAM against every other method of Table I."""
    ious = {r.method: r.iou for r in res.table_i if r.iou is not None}
    if REFERENCE not in ious or len(ious) <= 1:
        return []
    sides = _sides(res.comparisons, [m for m in ious if m != REFERENCE])
    delta = res.chosen_delta
    at = "" if delta is None else f" at delta {delta:g}"
    if delta == 0:
        at += " (guided backpropagation: FGBP's percentile filter is off, RA-CAM = LayerCAM+GBP)"
    if not sides["unknown"] and not sides["level"] and not sides["below"]:
        return [f"RA-CAM{at} has a higher IoU than each of the other {len(sides['above'])} "
                f"methods, every {level} paired bootstrap interval excluding 0; the paper also "
                "ranks it first."]
    parts = []
    if sides["above"]:
        parts.append(f"above {names(sides['above'])} ({level} interval excludes 0)")
    if sides["level"]:
        parts.append(f"not distinguishable from {names(sides['level'])} (interval contains 0)")
    if sides["below"]:
        parts.append(f"below {names(sides['below'])} (interval excludes 0)")
    if sides["unknown"]:
        parts.append(f"not compared with {names(sides['unknown'])} (no per-image counts, so no "
                     "interval)")
    return [f"RA-CAM{at} is {'; '.join(parts)}; the paper ranks it first. No other ordering is "
            "claimed here."]


def fgbp_notes(res: ReproductionResults, level: str) -> list[str]:
    """Each plug-in method of Table IV with FGBP against without."""
    ious = {r.method: r.iou for r in res.table_iv if r.iou is not None}
    delta = res.chosen_delta
    notes = []
    for m in (m for m in ious if not m.endswith("+fgbp") and f"{m}+fgbp" in ious):
        iv = res.comparisons.get(f"{m}+fgbp", m)
        change = f"{pct(ious[m])} -> {pct(ious[m + '+fgbp'])} IoU"
        cited = f", {level} interval of the difference {ci(iv)}" if iv else ""
        name = display_name(m)
        if delta == 0:
            notes.append(f"At delta 0 FGBP is guided backpropagation (no percentile filter), so "
                         f"{name} + guided backpropagation ({change}{cited}) says nothing about "
                         "FGBP's filter; the paper reports an improvement with FGBP.")
            continue
        at = "-" if delta is None else f"{delta:g}"
        if iv is None:
            notes.append(f"{name} {change} with FGBP (delta {at}); no interval, so no claim "
                         "either way; the paper reports an improvement.")
        elif iv["low"] > 0:
            notes.append(f"FGBP (delta {at}) improves {name} ({change}{cited}), as in the paper.")
        elif iv["high"] < 0:
            notes.append(f"FGBP (delta {at}) lowers {name}'s IoU ({change}{cited}); the paper "
                         "reports an improvement.")
        else:
            notes.append(f"FGBP (delta {at}) changes {name} by an amount not distinguishable "
                         f"from 0 ({change}{cited}); the paper reports an improvement.")
    return notes


def filter_notes(res: ReproductionResults, level: str) -> list[str]:
    """RA-CAM at the chosen delta against delta 0 (FGBP's percentile filter's own effect)."""
    delta = res.chosen_delta
    if delta is None or delta <= 0:
        return []
    iv = res.comparisons.get(f"{REFERENCE}@{delta:g}", f"{REFERENCE}@0")
    if iv is None:
        return []
    return [f"FGBP's percentile filter (delta {delta:g} against 0) {effect(iv)} RA-CAM's IoU "
            f"({level} interval {ci(iv)})."]


def variant_notes(res: ReproductionResults, level: str) -> list[str]:
    """Each RA-CAM variant (another reading of Eq. 7, another FGBP head scope) against the
    default options."""
    base = variant_key(CAM_OPTION_DEFAULTS)
    notes = []
    for r in res.racam_variants:
        key = r.variant
        iv = res.comparisons.get(f"{REFERENCE}[{key}]", f"{REFERENCE}[{base}]")
        if not key or key == base or iv is None:
            continue
        changed = ", ".join(f"{k} {v}" for k, v in (p.split("=") for p in key.split(","))
                            if CAM_OPTION_DEFAULTS.get(k) != v)
        notes.append(f"RA-CAM with {changed} instead of the default {effect(iv)} its IoU "
                     f"({level} interval {ci(iv)}).")
    return notes


def _scored(t3: list[NetworkRow]) -> tuple[dict[str, NetworkRow], list[str], list[str]]:
    """Table III's rows with pooled scores by name, and the weakly and fully supervised names."""
    rows = {r.name: r for r in t3 if r.pooled}
    return (rows, [k for k in rows if k.endswith("pseudo")],
            [k for k in rows if k.endswith("true")])


def self_training_notes(t3: list[NetworkRow]) -> list[str]:
    """Each self-training round against the first weakly supervised network."""
    rows, ws, _ = _scored(t3)
    notes = []
    for k in (k for k in rows if "-pseudo-st" in k and ws):
        a, b = rows[ws[0]].iou, rows[k].iou
        diff = rows[k].minus_round0
        iv = diff.interval if diff else None
        if a is not None and b is not None:
            notes.append(f"Self-training: {k} (trained on the masks of the round before it) has "
                         f"a defect IoU of {100 * b:.2f} against {100 * a:.2f} for {ws[0]} "
                         + (f"(difference {ci(iv)}, 95% bootstrap interval over test images; "
                            "one classifier seed)." if iv else
                            "(pooled, one classifier seed; no interval)."))
    return notes


def supervised_share_notes(t3: list[NetworkRow]) -> list[str]:
    """The weakly supervised network's defect IoU as a share of the best fully supervised one's,
    next to the paper's share."""
    rows, ws, fs = _scored(t3)
    if not ws or not fs:
        return []
    w = rows[ws[0]].iou
    best_fs = max((rows[k].iou or 0.0) for k in fs)
    if w is None or best_fs <= 0:
        return ["No fully supervised network found a single true defect pixel (best defect IoU "
                "0), so the weakly supervised network is not expressed as a share of it."]
    diff = rows[ws[0]].minus_supervised
    iv = diff.interval if diff else None
    return [f"Weakly supervised {ws[0]} reaches {100 * w / best_fs:.1f}% of the best fully "
            f"supervised defect IoU (paper: {weak_share_text()})"
            + (f"; minus {diff.b}: {ci(iv)} points (95% bootstrap interval over test images)."
               if diff and iv else ".")]
