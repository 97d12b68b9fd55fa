"""The report's tables: the classifiers, Tables I, III and IV next to the paper's numbers, the
RA-CAM variants and the delta sweep (Figs. 8-9). Each function returns Markdown lines."""

from __future__ import annotations

from racam.cam.registry import CAM_OPTION_DEFAULTS, variant_key
from racam.paper import reference as paper
from racam.paper.format import ReportInput, ci, fmt, goal_text, label, names, score4, spread
from racam.paper.reference import REFERENCE
from racam.paper.results import MethodRow, NetworkRow
from racam.report.names import display_name
from racam.report.tables import NA, classifier_notes, interval_text, md_table, or_dash


def classifier_section(inp: ReportInput) -> list[str]:
    """Each seed's and fold's classifier: test AUROC and AP, best epoch, seconds, and notes."""
    rows, notes = [], []
    for s, folds in inp.res.classifiers(inp.seeds[0]).items():
        for k, v in (folds or {}).items():
            v = v or {}
            rows.append(([s] if inp.multi else []) + [
                k, score4(v, "test_auroc"), score4(v, "test_ap"),
                or_dash(v.get("best_epoch")), or_dash(v.get("seconds"))])
            notes += classifier_notes(f"Seed {s}, fold {k}" if inp.multi else f"Fold {k}", v)
    return (["## Classifier", "",
             md_table((["seed"] if inp.multi else []) + ["fold", "test AUROC", "test AP",
                                                        "best epoch", "seconds"], rows)]
            + [f"- {n}" for n in notes] + ([""] if notes else []))


def _first_seed(inp: ReportInput) -> str:
    return f" (seed {inp.seeds[0]})" if inp.multi else ""


def table_i_section(inp: ReportInput) -> list[str]:
    """Table I (paper's view, with RA-CAM minus each method) and its deployment view."""
    rows = []
    for r in inp.res.table_i:
        ref = paper.TABLE_I.get(r.method)
        rows.append([label(r.method, r.delta),
                     *(fmt(r.paper_view, r.paper_view_sd, k)
                       for k in ("iou", "precision", "recall", "f1")),
                     spread(r.fold_iou),
                     "-" if r.method == REFERENCE else ci(inp.res.comparisons.get(REFERENCE,
                                                                                  r.method)),
                     *([f"{x:.2f}" for x in ref] if ref else ["-"] * 4)])
    lines = [f"## Table I: heat-map methods (defective test images, paper's view){inp.sd_note}",
             "", md_table(["method", "IoU", "precision", "recall", "F1",
                           "IoU per-fold mean ± sd" + _first_seed(inp),
                           "RA-CAM minus this, IoU [95% CI]",
                           "paper IoU", "paper P", "paper R", "paper F1"], rows)]
    rows = [[label(r.method, r.delta), *(fmt(r.deployment_view, r.deployment_view_sd, k)
                                         for k in ("iou", "precision", "recall", "f1", "miou"))]
            for r in inp.res.table_i if r.deployment_view]
    if rows:
        lines += ["### Deployment view (all test images; images the classifier calls "
                  "defect-free get an empty mask)", "",
                  md_table(["method", "IoU", "precision", "recall", "F1", "mIoU"], rows)]
    return lines


def variants_section(inp: ReportInput) -> list[str]:
    """RA-CAM under each reading of Eq. 7 and each FGBP head scope, against the default."""
    base = variant_key(CAM_OPTION_DEFAULTS)
    rows = [[r.variant.replace(",", ", "), fmt(r.paper_view, r.paper_view_sd, "iou"),
             "-" if r.variant == base else ci(inp.res.comparisons.get(
                 f"{REFERENCE}[{r.variant}]", f"{REFERENCE}[{base}]"))]
            for r in inp.res.racam_variants]
    note = inp.res.notes.get("fgbp_head")
    if not rows and not note:
        return []
    return [f"## RA-CAM: the two readings of Eq. 7 and FGBP's scope in the head "
            f"(delta {inp.delta_text}){inp.sd_note}", "",
            "`weighting=element`: `ReLU(sum_k W_k * A_k)` with `W = 1[g >= t] g` element-wise; "
            "`weighting=channel`: one weight per channel, `R_k = mean_ij W_k,ij`, "
            "`ReLU(sum_k R_k A_k)`. `fgbp_head=sample`: one percentile map per sample over a "
            "fully connected layer's units; `unit`: one per unit (each unit's positive "
            "gradient passes, as in guided backpropagation)."
            + (" At delta 0 both head scopes pass every positive gradient (identical maps)."
               if inp.delta == 0 else ""), "",
            *([note, ""] if note else []),
            *([md_table(["RA-CAM options", "IoU", "minus the default, IoU [95% CI]"], rows)]
              if rows else [])]


def _table_iv_row(inp: ReportInput, r: MethodRow) -> list[str]:
    m = r.method
    diff = (ci(inp.res.comparisons.get(m, m.removesuffix("+fgbp"))) if m.endswith("+fgbp")
            else "-")
    return [label(m, r.delta), fmt(r.paper_view, r.paper_view_sd, "iou"), spread(r.fold_iou),
            diff, f"{paper.TABLE_IV[m]:.2f}" if m in paper.TABLE_IV else "-"]


def table_iv_section(inp: ReportInput) -> list[str]:
    """Table IV: each plug-in method with and without FGBP."""
    return [f"## Table IV: FGBP as a plug-in (delta {inp.delta_text}){inp.sd_note}", "",
            md_table(["method", "IoU", "IoU per-fold mean ± sd" + _first_seed(inp),
                      "with minus without FGBP, IoU [95% CI]", "paper IoU"],
                     [_table_iv_row(inp, r) for r in inp.res.table_iv])]


#: How ``cam.pseudo_threshold`` turns RA-CAM's maps into pseudo-labels, in Table III's words.
PSEUDO_RULES = {"otsu": "Otsu", "otsu2": "Otsu inside the Otsu foreground (otsu2)",
                "band": "otsu2 core, band between the two Otsu thresholds ignored"}


def _table_iii_row(inp: ReportInput, r: NetworkRow) -> list[str]:
    ref = paper.TABLE_III.get(r.name)
    goals = inp.cfg.reproduce.segmentation_goals
    kind = (f"WS (RA-CAM pseudo-labels: {PSEUDO_RULES.get(inp.cfg.cam.pseudo_threshold, '?')})"
            if r.source == "pseudo" else
            f"WS, self-training round {r.round} (the round before's masks)"
            if r.source.startswith("pseudo-st") else "FS (true masks)")
    return ([display_name(r.arch), kind, fmt(r.pooled, r.pooled_sd, "iou"),
             interval_text(r.interval, NA), fmt(r.pooled, r.pooled_sd, "miou"),
             spread(r.fold_iou), f"{ref[0]:.2f}" if ref else "-", f"{ref[1]:.2f}" if ref else "-"]
            + ([goal_text(goals.get(r.name), r.iou)] if goals else []))


def _table_iii_seeds(inp: ReportInput) -> tuple[str, list[int]]:
    """Table III's title suffix naming its classifier seeds, and the weakly supervised seeds."""
    t3 = inp.res.table_iii
    seg_seed = (t3[0].seed if t3[0].seed is not None else inp.seeds[0]) if t3 else inp.seeds[0]
    ws_seeds = next((r.seeds for r in t3 if r.source != "true"), None) or [seg_seed]
    fs_seed = next((r.seed for r in t3 if r.source == "true"), seg_seed)
    if len(ws_seeds) > 1:
        return (f", weakly supervised (WS) rows: mean ± sd over classifier seeds "
                f"{', '.join(map(str, ws_seeds))}; fully supervised: seed {fs_seed}", ws_seeds)
    return (f", classifier seed {seg_seed}" if inp.multi else "", ws_seeds)


def table_iii_section(inp: ReportInput) -> list[str]:
    """Table III: each segmentation network next to the paper's, its interval and goal, the
    differences between networks, and what this run did not train."""
    t3, goals = inp.res.table_iii, inp.cfg.reproduce.segmentation_goals
    title, ws_seeds = _table_iii_seeds(inp)
    lines = ["## Table III: segmentation (all test images)" + title, "",
             md_table(["network", "type", "defect IoU", "defect IoU 95% CI", "mIoU",
                       "defect IoU per-fold mean ± sd"
                       + (f" (seed {ws_seeds[0]})" if len(ws_seeds) > 1 else ""),
                       "paper defect IoU", "paper mIoU"] + (["goal"] if goals else []),
                      [_table_iii_row(inp, r) for r in t3]),
             *table_iii_differences(t3)]
    trained = {r.arch for r in t3 if r.source == "true"}
    left = [a for a in paper.SUPERVISED_ARCHS if a not in trained]
    if not inp.cfg.reproduce.segmentation:
        lines += ["Table III's networks were not trained by this reproduction "
                  "(`reproduce.segmentation: false`); see `docs/results.md` for the segmentation "
                  "runs of this configuration.", ""]
    if t3 and left:
        lines += [f"Fully supervised {names(left)} (the paper's other Table III rows) are not "
                  f"trained in this run (`reproduce.supervised_archs`); they are left to the "
                  f"paper-scale config.", ""]
    if any(goal_text(goals.get(r.name), r.iou).startswith("not met") for r in t3):
        lines += ["A goal not met: `docs/results.md` lists what was tried and the best figure "
                  "measured.", ""]
    return lines


def table_iii_differences(t3: list[NetworkRow]) -> list[str]:
    """Lines under Table III: each weakly supervised network minus its fully supervised
    reference, and each self-training round minus round 0, with paired intervals."""
    if not t3:
        return []
    lines = [f"- {r.name} minus {d.b}: "
             + (f"{ci(d.interval)} points of defect IoU" if d.interval else f"n/a ({d.reason})")
             for r in t3 for d in (r.minus_supervised, r.minus_round0) if d]
    n = next((r.interval["images"] for r in t3 if r.interval), None)
    many = max((len(r.seeds or [0]) for r in t3), default=1) > 1
    head = ("95% intervals: percentile bootstrap over the test images of all folds"
            + (f" ({n} images)" if n else "") + ", resampled with replacement (paired for a "
            "difference)"
            + ("; a row of several classifier seeds is their mean IoU, the seeds are not "
               "resampled, so the intervals cover the choice of test images" if many else
               "; one classifier seed, so they cover the choice of test images, not the "
               "training run")
            + ". n/a: per-image counts missing.")
    return [head, *([""] + lines if lines else []), ""]


def sweep_section(inp: ReportInput) -> list[str]:
    """Figs. 8-9 as a table: RA-CAM's IoU at each delta on training and test images."""
    def cell(view: dict | None) -> str:
        return fmt(view, {"iou": view.get("iou_sd")} if view else None, "iou")

    rows = [[f"{r.delta:g}" + (" (guided backpropagation)" if r.delta == 0 else ""),
             cell(r.train), cell(r.test)] for r in inp.res.delta_sweep]
    return ["## Figures 8-9: RA-CAM IoU against delta" + inp.sd_note, "",
            "The delta used everywhere above is the best on **training** images"
            + (" (mean over the seeds)" if inp.multi else "") + ".", "",
            md_table(["delta", "IoU train", "IoU test"], rows)]
