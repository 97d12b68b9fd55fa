"""The Markdown report of ``racam reproduce`` (``report.md``; ``report.html`` is rendered from
it): the paper's Tables I, III, IV and Figures 1, 4-5, 8-9 next to the paper's numbers, each
claim backed by a bootstrap interval (:func:`render_report`). It reads ``reproduce.json``'s
dictionary only, so a stored reproduction can be rendered again
(``scripts/render_reproduction.py``).
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

from racam.cam.registry import CAM_OPTION_DEFAULTS, get_method, variant_key
from racam.config import RunConfig
from racam.data import registry as datasets
from racam.errors import ConfigError
from racam.evaluation.bootstrap import CONFIDENCE
from racam.report import paper_numbers as paper
from racam.report.paper_numbers import REFERENCE
from racam.report.tables import NA, classifier_notes, interval_text, md_table, or_dash, pct


def _name(method: str) -> str:
    return paper.DISPLAY.get(method, method)

def _fmt(view: dict[str, Any] | None, sd: dict[str, float | None] | None, key: str) -> str:
    """``12.34`` or ``12.34 ± 0.56`` (percent), ``-`` when missing, ``n/a`` when undefined."""
    if not view or key not in view:
        return "-"
    if view[key] is None:
        return pct(None)
    spread = sd.get(key) if sd else None
    if spread is not None:
        return f"{100 * view[key]:.2f} ± {100 * spread:.2f}"
    return pct(view[key])


def _score4(record: dict[str, Any], key: str) -> str:
    """``0.9876``; ``-`` when ``key`` is missing, ``n/a`` when it is recorded as undefined."""
    if key not in record:
        return "-"
    value = record[key]
    return NA if value is None else f"{value:.4f}"


def _spread(values: list[float] | None) -> str:
    values = [v for v in (values or []) if v is not None]
    if len(values) < 2:
        return "-"
    return f"{100 * statistics.mean(values):.2f} ± {100 * statistics.stdev(values):.2f}"


def _iou(row: dict[str, Any] | None, view: str = "paper_view") -> float | None:
    v = (row or {}).get(view)
    return None if not v else v.get("iou")


def _boot_index(results: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """``(a, b) -> interval dict`` of the bootstrap rows that have one."""
    out = {}
    for r in (results.get("bootstrap") or {}).get("rows", []):
        if r.get("interval"):
            out[(r["a"], r["b"])] = r["interval"]
    return out


def _ci(iv: dict[str, Any] | None) -> str:
    """``+1.23 [-0.40, +2.90]`` (points of IoU), ``-`` when there is no interval."""
    if not iv:
        return "-"
    return (f"{100 * iv['estimate']:+.2f} [{100 * iv['low']:+.2f}, {100 * iv['high']:+.2f}]")


def _label(method: str, delta: float | None) -> str:
    """Display name; FGBP methods at delta 0 are guided backpropagation, and say so."""
    name = _name(method)
    try:
        fgbp = get_method(method).uses_fgbp
    except ConfigError:
        return name
    if delta is not None and delta == 0 and fgbp:
        if method.endswith("+fgbp"):
            return f"{name} (delta 0: guided backpropagation)"
        return f"{name} (delta 0: guided backpropagation, = LayerCAM+GBP)"
    return name


#: The fully supervised networks of the paper's Table III.
PAPER_SUPERVISED_ARCHS = ("unet", "deeplabv3", "deeplabv3plus")


def _goal_text(goal: float | None, iou: float | None) -> str:
    """``">= 55: met"`` / ``"not met (...)"`` for a defect-IoU ``goal`` in % (``-``: none)."""
    if goal is None:
        return "-"
    if iou is None:
        return f"not met: >= {goal:g}, no figure"
    return f"met: >= {goal:g}" if 100 * iou >= goal else f"not met: >= {goal:g}"


def _observations(results: dict[str, Any]) -> list[str]:
    """Plain statements of what this run shows next to the paper's claims. An order between
    two methods is stated only where the paired bootstrap interval of their difference excludes
    0; "FGBP helps" only at delta > 0; no ratio with a zero or missing denominator."""
    notes: list[str] = []
    boot = _boot_index(results)
    level = f"{100 * (results.get('bootstrap') or {}).get('confidence', CONFIDENCE):g}%"
    delta = results.get("chosen_delta")
    t1 = {r["method"]: _iou(r) for r in results.get("table_i") or [] if _iou(r) is not None}
    if REFERENCE in t1 and len(t1) > 1:
        above, level_with, below, unknown = [], [], [], []
        for m in t1:
            if m == REFERENCE:
                continue
            iv = boot.get((REFERENCE, m))
            if iv is None:
                unknown.append(m)
            elif iv["low"] > 0:
                above.append(m)
            elif iv["high"] < 0:
                below.append(m)
            else:
                level_with.append(m)
        at = "" if delta is None else f" at delta {delta:g}"
        if delta == 0:
            at += (" (guided backpropagation: FGBP's percentile filter is off, "
                   "RA-CAM = LayerCAM+GBP)")
        if not unknown and not level_with and not below:
            notes.append(f"RA-CAM{at} has a higher IoU than each of the other {len(above)} "
                         f"methods, every {level} paired bootstrap interval excluding 0; the "
                         "paper also ranks it first.")
        else:
            parts = []
            if above:
                parts.append(f"above {', '.join(map(_name, above))} ({level} interval excludes 0)")
            if level_with:
                parts.append(f"not distinguishable from {', '.join(map(_name, level_with))} "
                             f"(interval contains 0)")
            if below:
                parts.append(f"below {', '.join(map(_name, below))} (interval excludes 0)")
            if unknown:
                parts.append(f"not compared with {', '.join(map(_name, unknown))} (no per-image "
                             "counts, so no interval)")
            notes.append(f"RA-CAM{at} is {'; '.join(parts)}; the paper ranks it first. No other "
                         "ordering is claimed here.")
    t4 = {r["method"]: _iou(r) for r in results.get("table_iv") or [] if _iou(r) is not None}
    plain = [m for m in t4 if not m.endswith("+fgbp") and f"{m}+fgbp" in t4]
    for m in plain:
        iv = boot.get((f"{m}+fgbp", m))
        change = f"{pct(t4[m])} -> {pct(t4[m + '+fgbp'])} IoU"
        ci = f", {level} interval of the difference {_ci(iv)}" if iv else ""
        if delta == 0:
            notes.append(f"At delta 0 FGBP is guided backpropagation (no percentile filter), so "
                         f"{_name(m)} + guided backpropagation ({change}{ci}) says nothing about "
                         "FGBP's filter; the paper reports an improvement with FGBP.")
        elif iv is None:
            notes.append(f"{_name(m)} {change} with FGBP (delta {delta:g}); no interval, so no "
                         "claim either way; the paper reports an improvement.")
        elif iv["low"] > 0:
            notes.append(f"FGBP (delta {delta:g}) improves {_name(m)} ({change}{ci}), as in the "
                         "paper.")
        elif iv["high"] < 0:
            notes.append(f"FGBP (delta {delta:g}) lowers {_name(m)}'s IoU ({change}{ci}); the "
                         "paper reports an improvement.")
        else:
            notes.append(f"FGBP (delta {delta:g}) changes {_name(m)} by an amount not "
                         f"distinguishable from 0 ({change}{ci}); the paper reports an "
                         "improvement.")
    if delta is not None and delta > 0:
        iv = boot.get((f"{REFERENCE}@{delta:g}", f"{REFERENCE}@0"))
        if iv is not None:
            what = ("raises" if iv["low"] > 0 else "lowers" if iv["high"] < 0
                    else "does not distinguishably change")
            notes.append(f"FGBP's percentile filter (delta {delta:g} against 0) {what} RA-CAM's "
                         f"IoU ({level} interval {_ci(iv)}).")
    base = variant_key(CAM_OPTION_DEFAULTS)
    for r in results.get("racam_variants") or []:
        key = r.get("variant")
        iv = boot.get((f"{REFERENCE}[{key}]", f"{REFERENCE}[{base}]"))
        if not key or key == base or iv is None:
            continue
        changed = ", ".join(f"{k} {v}" for k, v in (p.split("=") for p in key.split(","))
                            if CAM_OPTION_DEFAULTS.get(k) != v)
        what = ("raises" if iv["low"] > 0 else "lowers" if iv["high"] < 0
                else "does not distinguishably change")
        notes.append(f"RA-CAM with {changed} instead of the default {what} its IoU ({level} "
                     f"interval {_ci(iv)}).")
    rows3 = {f"{r['arch']}-{r['source']}": r for r in results.get("table_iii") or []
             if r.get("pooled")}
    t3 = {k: r["pooled"] for k, r in rows3.items()}
    ws = [k for k in t3 if k.endswith("pseudo")]
    fs = [k for k in t3 if k.endswith("true")]
    for k in (k for k in t3 if "-pseudo-st" in k and ws):
        a, b = t3[ws[0]].get("iou"), t3[k].get("iou")
        iv = (rows3[k].get("minus_round0") or {}).get("interval")
        if a is not None and b is not None:
            notes.append(f"Self-training: {k} (trained on the masks of the round before it) has "
                         f"a defect IoU of {100 * b:.2f} against {100 * a:.2f} for {ws[0]} "
                         + (f"(difference {_ci(iv)}, 95% bootstrap interval over test images; "
                            "one classifier seed)." if iv else
                            "(pooled, one classifier seed; no interval)."))
    if ws and fs:
        w = t3[ws[0]].get("iou")
        best_fs = max((t3[k].get("iou") or 0.0) for k in fs)
        if w is not None and best_fs > 0:
            iv = (rows3[ws[0]].get("minus_supervised") or {}).get("interval")
            notes.append(f"Weakly supervised {ws[0]} reaches {100 * w / best_fs:.1f}% of the best "
                         "fully supervised defect IoU (paper: 37.86 / 55.59 = 68.1%)"
                         + (f"; minus {rows3[ws[0]]['minus_supervised']['b']}: {_ci(iv)} points "
                            "(95% bootstrap interval over test images)." if iv else "."))
        else:
            notes.append("No fully supervised network found a single true defect pixel (best "
                         "defect IoU 0), so the weakly supervised network is not expressed as a "
                         "share of it.")
    return notes


def figure_markdown(path: str | None, title: str, out: Path) -> str:
    """Markdown image of a figure file for a report written to ``out``, linked relative to it;
    ``n/a`` and why when there is no such file. A path outside ``out`` (a run folder copied to
    ``results/``) is replaced by ``out/figures/<name>`` when that file exists."""
    if not path:
        return "(figure n/a: this run produced none; `reproduce.json` records no file for it)"
    p = Path(path)
    for cand in (p if p.is_absolute() else out / p, out / "figures" / p.name):
        try:
            inside = cand.resolve().relative_to(out.resolve()).as_posix()
        except ValueError:
            continue
        if cand.is_file():
            return f"![{title}]({inside})"
    if p.is_absolute() and p.is_file():  # outside the report's folder, but there
        return f"![{title}]({p.as_posix()})"
    return (f"(figure n/a: `{p.name}` was not found next to this report nor at {path} when "
            "the report was rendered)")


def render_report(cfg: RunConfig, results: dict[str, Any], out: Path) -> str:
    """The Markdown report of a reproduction. Every figure may be missing or 0: a missing row
    or number prints as ``-``, an undefined one as ``n/a``, a missing figure file as ``n/a``
    and why; nothing is divided by a zero or missing figure."""

    seeds = results.get("seeds") or [cfg.seed]
    multi = len(seeds) > 1
    delta = results.get("chosen_delta")
    dtext = "-" if delta is None else f"{delta:g}"
    folds = datasets.get(cfg.data.dataset).folds(cfg.data)
    L: list[str] = [f"# racam reproduction: {cfg.name}", ""]
    L += [f"Dataset `{cfg.data.dataset}`, folds {folds} "
          f"(every number below is pooled over the test folds: micro TP/FP/FN over all pixels of "
          f"all test images of all folds). Input {cfg.data.size[0]}x{cfg.data.size[1]} "
          f"(width x height), {cfg.data.channels} channel(s). Classifier "
          f"`{cfg.classifier.backbone}` (width divisor {cfg.classifier.width}), "
          f"{cfg.classifier.epochs} epochs. Fusion of "
          f"layers: **{cfg.cam.fusion}**"
          + ("" if cfg.cam.fusion == "max" else
             " (the protocol's default is max; this config's choice, made on training images, "
             "is explained in docs/protocol.md)")
          + f". RA-CAM: Eq. 7 read **{cfg.cam.weighting}**-wise, FGBP "
          f"head scope **{cfg.cam.fgbp_head}**, delta chosen on training images: **{dtext}**"
          + (" (delta 0 is guided backpropagation: FGBP's percentile filter is off)"
             if delta == 0 else "")
          + f". Classifier seeds: {', '.join(map(str, seeds))}"
          + (" (heat-map tables: mean ± sd over the seeds)." if multi else "."), ""]
    L += ["Paper numbers are the paper's KSDD results at paper scale (full VGG16, 512x1408, "
          "ImageNet-initialised); ours are from the run described here. Where the scale differs "
          "(CPU scale), the comparison is of orderings, not of absolute values. Intervals are "
          f"paired bootstrap {100 * CONFIDENCE:g}% intervals over the defective test images "
          "(`racam.evaluation.bootstrap`), in IoU points. In the tables `-` marks a figure "
          "this run did not compute (a stage not run, a result not recorded) and `n/a` one that "
          "is undefined (a score over an empty set, e.g. precision when no pixel is predicted "
          "defective, or AUROC over test images of a single class).", ""]
    notes = _observations(results)
    if notes:
        L += ["## What this run shows next to the paper", ""] + [f"- {n}" for n in notes] + [""]

    per_seed = results.get("classifier_per_seed") or {str(seeds[0]): results.get("classifier")
                                                      or {}}
    crow, clf_notes = [], []
    for s, folds_ in per_seed.items():
        for k, v in (folds_ or {}).items():
            v = v or {}
            crow.append(([s] if multi else []) + [
                k, _score4(v, "test_auroc"), _score4(v, "test_ap"),
                or_dash(v.get("best_epoch")), or_dash(v.get("seconds"))])
            where = f"Seed {s}, fold {k}" if multi else f"Fold {k}"
            clf_notes += classifier_notes(where, v)
    L += ["## Classifier", "",
          md_table((["seed"] if multi else []) + ["fold", "test AUROC", "test AP", "best epoch",
                                                  "seconds"], crow)]
    L += [f"- {n}" for n in clf_notes] + ([""] if clf_notes else [])

    boot = _boot_index(results)
    sd_note = f" (mean ± sd over {len(seeds)} seeds)" if multi else ""
    rows = []
    for r in results.get("table_i") or []:
        m, p, sd = r["method"], r.get("paper_view"), r.get("paper_view_sd")
        pp = paper.TABLE_I.get(m)
        rows.append([_label(m, r.get("delta")), *(_fmt(p, sd, k) for k in
                                                   ("iou", "precision", "recall", "f1")),
                     _spread(r.get("fold_iou")),
                     "-" if m == REFERENCE else _ci(boot.get((REFERENCE, m))),
                     *([f"{x:.2f}" for x in pp] if pp else ["-"] * 4)])
    L += [f"## Table I: heat-map methods (defective test images, paper's view){sd_note}", "",
          md_table(["method", "IoU", "precision", "recall", "F1",
                    "IoU per-fold mean ± sd" + (f" (seed {seeds[0]})" if multi else ""),
                    "RA-CAM minus this, IoU [95% CI]",
                    "paper IoU", "paper P", "paper R", "paper F1"], rows)]
    rows = []
    for r in results.get("table_i") or []:
        d, sd = r.get("deployment_view"), r.get("deployment_view_sd")
        if d:
            rows.append([_label(r["method"], r.get("delta")),
                         *(_fmt(d, sd, k) for k in ("iou", "precision", "recall", "f1", "miou"))])
    if rows:
        L += ["### Deployment view (all test images; images the classifier calls defect-free "
              "get an empty mask)", "",
              md_table(["method", "IoU", "precision", "recall", "F1", "mIoU"], rows)]

    rows = []
    for r in results.get("racam_variants") or []:
        opts = r.get("variant", "")
        base = variant_key(CAM_OPTION_DEFAULTS)
        rows.append([opts.replace(",", ", "), _fmt(r.get("paper_view"), r.get("paper_view_sd"),
                                                   "iou"),
                     "-" if opts == base else _ci(boot.get((f"{REFERENCE}[{opts}]",
                                                            f"{REFERENCE}[{base}]")))])
    if rows:
        L += [f"## RA-CAM: the two readings of Eq. 7 and FGBP's scope in the head "
              f"(delta {dtext}){sd_note}", "",
              "`weighting=element`: `ReLU(sum_k W_k * A_k)` with `W = 1[g >= t] g` element-wise; "
              "`weighting=channel`: one weight per channel, `R_k = mean_ij W_k,ij`, "
              "`ReLU(sum_k R_k A_k)`. `fgbp_head=sample`: one percentile map per sample over a "
              "fully connected layer's units; `unit`: one per unit (each unit's positive "
              "gradient passes, as in guided backpropagation)."
              + (" At delta 0 both head scopes pass every positive gradient (identical maps)."
                 if delta == 0 else ""), "",
              md_table(["RA-CAM options", "IoU", "minus the default, IoU [95% CI]"], rows)]

    rows = []
    for r in results.get("table_iv") or []:
        m = r["method"]
        ci = _ci(boot.get((m, m.removesuffix("+fgbp")))) if m.endswith("+fgbp") else "-"
        rows.append([_label(m, r.get("delta")), _fmt(r.get("paper_view"),
                                                     r.get("paper_view_sd"), "iou"),
                     _spread(r.get("fold_iou")), ci,
                     f"{paper.TABLE_IV[m]:.2f}" if m in paper.TABLE_IV else "-"])
    L += [f"## Table IV: FGBP as a plug-in (delta {dtext}){sd_note}", "",
          md_table(["method", "IoU", "IoU per-fold mean ± sd"
                    + (f" (seed {seeds[0]})" if multi else ""),
                    "with minus without FGBP, IoU [95% CI]", "paper IoU"], rows)]

    rows = []
    t3 = results.get("table_iii") or []
    goals = cfg.reproduce.segmentation_goals
    rule = {"otsu": "Otsu", "otsu2": "Otsu inside the Otsu foreground (otsu2)",
            "band": "otsu2 core, band between the two Otsu thresholds ignored"}
    for r in t3:
        key = f"{r['arch']}-{r['source']}"
        ref = paper.TABLE_III.get(key)
        kind = (f"WS (RA-CAM pseudo-labels: {rule.get(cfg.cam.pseudo_threshold, '?')})"
                if r["source"] == "pseudo" else
                f"WS, self-training round {r.get('round')} (the round before's masks)"
                if r["source"].startswith("pseudo-st") else "FS (true masks)")
        p, sd = r.get("pooled"), r.get("pooled_sd")
        rows.append([_name(r["arch"]), kind, _fmt(p, sd, "iou"),
                     interval_text(r.get("interval"), NA),
                     _fmt(p, sd, "miou"), _spread(r.get("fold_iou")),
                     f"{ref[0]:.2f}" if ref else "-", f"{ref[1]:.2f}" if ref else "-"]
                    + ([_goal_text(goals.get(key), p.get("iou") if p else None)]
                       if goals else []))
    seg_seed = t3[0].get("seed", seeds[0]) if t3 else seeds[0]
    ws_seeds = next((r.get("seeds") for r in t3 if r["source"] != "true"), None) or [seg_seed]
    fs_seed = next((r.get("seed") for r in t3 if r["source"] == "true"), seg_seed)
    title = ""
    if len(ws_seeds) > 1:
        title = (f", weakly supervised (WS) rows: mean ± sd over classifier seeds "
                 f"{', '.join(map(str, ws_seeds))}; fully supervised: seed {fs_seed}")
    elif multi:
        title = f", classifier seed {seg_seed}"
    L += ["## Table III: segmentation (all test images)" + title, "",
          md_table(["network", "type", "defect IoU", "defect IoU 95% CI", "mIoU",
                    "defect IoU per-fold mean ± sd"
                    + (f" (seed {ws_seeds[0]})" if len(ws_seeds) > 1 else ""),
                    "paper defect IoU", "paper mIoU"]
                   + (["goal"] if goals else []), rows), *_table_iii_differences(t3)]
    trained = {r["arch"] for r in t3 if r["source"] == "true"}
    left = [a for a in PAPER_SUPERVISED_ARCHS if a not in trained]
    if not cfg.reproduce.segmentation:
        L += ["Table III's networks were not trained by this reproduction "
              "(`reproduce.segmentation: false`); see `docs/results.md` for the segmentation "
              "runs of this configuration.", ""]
    if t3 and left:
        L += [f"Fully supervised {', '.join(map(_name, left))} (the paper's other Table III "
              f"rows) are not trained in this run (`reproduce.supervised_archs`); they are left "
              f"to the paper-scale config.", ""]
    if any(_goal_text(goals.get(f"{r['arch']}-{r['source']}"),
                      (r.get("pooled") or {}).get("iou")).startswith("not met") for r in t3):
        L += ["A goal not met: `docs/results.md` lists what was tried and the best figure "
              "measured.", ""]

    sweep = results.get("delta_sweep") or {}
    rows = [[f"{r['delta']:g}" + (" (guided backpropagation)" if r["delta"] == 0 else ""),
             _fmt(r.get("train"), {"iou": r["train"].get("iou_sd")} if r.get("train") else None,
                  "iou"),
             _fmt(r.get("test"), {"iou": r["test"].get("iou_sd")} if r.get("test") else None,
                  "iou")]
            for r in sweep.get("rows", [])]
    figs = results.get("figures") or {}
    L += ["## Figures 8-9: RA-CAM IoU against delta" + sd_note, "",
          "The delta used everywhere above is the best on **training** images"
          + (" (mean over the seeds)" if multi else "") + ".", "",
          md_table(["delta", "IoU train", "IoU test"], rows)]
    for key, title, heading in [
            ("fig8_9", "delta sweep", None),
            ("fig1", "Grad-CAM per stage", "## Figure 1: Grad-CAM at the five VGG16 stages"),
            ("fig4_5", "methods", "## Figures 4-5: heat maps and Otsu masks of every method")]:
        if heading:
            L += [heading, ""]
            if key == "fig4_5":
                L += ["Green outline: the true defect.", ""]
        L += [figure_markdown(figs.get(key), title, out), ""]
    L += ["## Timings", "", *_timing_lines(results, cfg.reproduce.wall_goal_minutes, multi),
          "", "## Machine", "",
          *(["```json", json.dumps(results["machine"], indent=2), "```"]
            if results.get("machine") else ["n/a (not recorded in `reproduce.json`)."]),
          "", "## Config", "", "```json", json.dumps(cfg.to_dict(), indent=2), "```", ""]
    return "\n".join(L)


def _timing_lines(results: dict[str, Any], goal_min: float | None, multi: bool) -> list[str]:
    """The report's timings: seconds per stage (earlier interrupted calls of a stage included),
    the wall time of this call and of all the calls that computed stages, and the wall goal,
    checked on all the calls' wall time, or on the stages' sum where that is larger (stages
    computed by calls that were not recorded)."""
    wall = results.get("wall_seconds_this_call")
    wall_all = results.get("wall_seconds_all_calls")
    calls = results.get("calls")
    stage_s = results.get("stage_seconds") or {}
    total = sum(stage_s.values())
    lines = [md_table(["stage", "seconds (sum over folds" + (" and seeds)" if multi else ")")],
                      [[k, v] for k, v in sorted(stage_s.items())]
                      + [["all stages", round(total, 1)]]),
             "Wall time of the `racam reproduce` call that wrote this report: "
             + (f"{wall} s." if wall is not None else "n/a (not recorded in `reproduce.json`).")]
    if wall_all is not None:
        lines[-1] += (f" All {calls} call(s) that computed stages or were interrupted: "
                      f"{wall_all} s ({wall_all / 60:.1f} minutes; a call killed outright, "
                      "without Ctrl-C or SIGINT, is not counted).")
    # the stages ran one after the other inside the calls, so the calls took at least their
    # sum; recorded calls summing to less missed some (stages computed before calls were
    # recorded, or a call killed outright), and the stages' sum is checked instead
    measure, what = ((wall_all, "the calls took") if wall_all is not None and wall_all >= total
                     else (total, "the stages sum to"))
    if wall_all is not None and wall_all < total:
        what = (f"the recorded calls ({wall_all / 60:.1f} minutes) missed some, "
                "and the stages sum to")
    if goal_min and measure:
        lines[-1] += (f" Goal for a whole reproduction: <= {goal_min:g} minutes; {what} "
                      f"{measure / 60:.1f} minutes: "
                      f"**{'met' if measure <= 60 * goal_min else 'not met'}**.")
    return lines


def _table_iii_differences(t3: list[dict[str, Any]]) -> list[str]:
    """Lines under Table III: each weakly supervised network minus its fully supervised
    reference, and each self-training round minus round 0, with paired intervals."""
    lines = []
    for r in t3:
        name = f"{r['arch']}-{r['source']}"
        for field in ("minus_supervised", "minus_round0"):
            d = r.get(field)
            if d:
                lines.append(f"- {name} minus {d['b']}: "
                             + (f"{_ci(d['interval'])} points of defect IoU"
                                if d.get("interval") else f"n/a ({d.get('reason')})"))
    if not t3:
        return []
    n = next((r["interval"]["images"] for r in t3 if r.get("interval")), None)
    many = max((len(r.get("seeds") or [0]) for r in t3), default=1) > 1
    head = ("95% intervals: percentile bootstrap over the test images of all folds"
            + (f" ({n} images)" if n else "") + ", resampled with replacement (paired for a "
            "difference)"
            + ("; a row of several classifier seeds is their mean IoU, the seeds are not "
               "resampled, so the intervals cover the choice of test images" if many else
               "; one classifier seed, so they cover the choice of test images, not the "
               "training run")
            + ". n/a: per-image counts missing.")
    return [head, *([""] + lines if lines else []), ""]
