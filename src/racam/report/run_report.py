"""The short report of ``racam run``: numbers pooled over folds, overlays on test images and,
for a planned folder run, its fingerprint and plan."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from racam.config import RunConfig
from racam.data.io import RecordDataset
from racam.evaluation.pooling import undefined_note
from racam.io import atomic_write_text
from racam.plan.report import run_report_lines
from racam.pseudo.heatmaps import CamFn, iter_heatmaps, to_original_size
from racam.report.data_problems import data_problems_section
from racam.report.figures import image_grid
from racam.report.heatmap_methods import MethodComparison, comparison_section
from racam.report.html import write_html
from racam.report.supervision import (
    deletion_section,
    label_next_section,
    segmentation_label,
    train_masks_section,
)
from racam.report.tables import classifier_notes, interval_text, md_table, pct
from racam.segmentation.mask_cut import cut_mask
from racam.stages.evaluate import RunResults


def overlay_rows(test: RecordDataset, cam: CamFn, seg: nn.Module, device: torch.device | str,
                 method: str, n: int, cut: str = "half") -> list[list[tuple]]:
    """Image, heat map, Otsu mask and segmentation of the first ``n`` defective images of
    ``test``: ``cam`` is the heat-map callable, ``seg`` the trained segmentation network, its
    mask cut by ``cut`` (``segmentation.mask_cut``)."""
    idx = [i for i, y in enumerate(test.labels) if y == 1][:n]  # the user's defect images
    rows = []
    for i, s, heat, mask in iter_heatmaps(cam, test, idx, batch_size=1, device=device):
        true = test.true_mask(i)  # None when the dataset has no masks
        with torch.no_grad():
            prob = seg(s.image[None].to(device)).float().softmax(1)[:, 1].cpu()
        pred = cut_mask(to_original_size(prob, s.original_size)[0], cut)
        img = to_original_size(s.image[:1], s.original_size)[0]
        rows.append([(s.id, "image", img, true), (method, "heat", heat, true),
                     ("Otsu mask", "mask", mask, true), ("segmentation", "mask", pred, true)])
    return rows


def heatmap_options(cfg: RunConfig) -> str:
    """``", weighting channel"`` etc.: the method's ``cam`` options that differ from default,
    and the input scales and flips its maps are averaged over (``cam.scales``, ``cam.flips``)
    where they are not the plain input."""
    from racam.cam.registry import method_options

    opts = method_options(cfg.cam.method, cfg.cam.weighting, cfg.cam.fgbp_head)
    c = cfg.cam
    tta = ([f"mean of the maps at input scales {', '.join(f'{s:g}' for s in c.scales)}"]
           if list(c.scales) != [1.0] else []) + ([f"flips {'+'.join(c.flips)}"] if c.flips else [])
    return "".join(f", {k} {v}" for k, v in opts.items()) + "".join(f", {t}" for t in tta)


def pseudo_label_options(cfg: RunConfig) -> str:
    """What ``cam.good_prior`` adds to the pseudo-labels' name in the masks table."""
    return (" (heat map times the distance to the good images' patches, `cam.good_prior`)"
            if cfg.cam.good_prior else "")


def _num(v: float | None) -> str:
    """``v`` to four decimals, ``-`` when missing."""
    return f"{v:.4f}" if v is not None else "-"


def _data_root(cfg: RunConfig) -> str | None:
    """The dataset folder as its problems name it (``None``: not resolvable)."""
    from racam.errors import ConfigError
    from racam.stages.folds import resolve_root

    try:
        return str(resolve_root(cfg.data))
    except ConfigError:  # no root and no $RACAM_DATA: the table shows whole paths
        return None


def plan_section(cfg: RunConfig, out: Path) -> list[str]:
    """The run folder's fingerprint and plan (:func:`racam.plan.report.run_report_lines`) as a
    "Plan" section; none when this run has no plan (``data.plan: off``: a ``plan.json`` left
    by an earlier run in the folder is not this run's)."""
    lines = run_report_lines(out) if cfg.data.plan == "auto" else []
    if not lines:
        return []
    return ["## Plan", "", "Settings planned from a fingerprint of the images (`data.plan: auto`, "
            "`plan.json`); the config and `--set` override them:", "", "```text", *lines, "```",
            ""]


def _transpose(rows: list[list[tuple]]) -> list[list[tuple]]:
    return [list(col) for col in zip(*rows)] if rows else rows


def write_run_report(cfg: RunConfig, results: RunResults, out: Path, *,
                     device: torch.device | str, overlays: list[list[tuple]],
                     overlay_fold: int, methods: MethodComparison | None = None) -> Path:
    """Write ``run-report.md``, ``run-report.html`` and ``overlays.png`` into ``out``.

    ``results`` are the pooled numbers of the run, ``overlays`` the rows of
    :func:`overlay_rows` for test images of fold ``overlay_fold``, ``methods`` the heat-map
    methods scored on the run's classifiers (:mod:`racam.report.heatmap_methods`).
    """
    fig = None
    if overlays:
        # one column per image: image, heat map, Otsu mask, segmentation from top to bottom
        fig = image_grid(_transpose(overlays), out / "overlays.png", col_width=1.4, row_height=3.6,
                         suptitle="green: true defect outline")
    c = results.classifier
    clf_notes = [n for k, v in c.per_fold.items() for n in classifier_notes(f"Fold {k}", v)]
    lines = [f"# racam run: {cfg.name}", "",
             f"Dataset `{cfg.data.dataset}`, folds {results.folds} (test folds pooled), input "
             f"{cfg.data.size[0]}x{cfg.data.size[1]} (width x height), classifier "
             f"`{cfg.classifier.backbone}`, heat map `{cfg.cam.method}` (delta {cfg.cam.delta:g}, "
             f"fusion {cfg.cam.fusion}{heatmap_options(cfg)}), segmentation "
             f"`{cfg.segmentation.arch}` ({cfg.segmentation.encoder}). Seed {cfg.seed}. "
             f"Device `{device}`.", "",
             "## Classifier (test images)", "",
             md_table(["pooled AUROC", "pooled AP"] + [f"fold {k} AUROC" for k in results.folds],
                      [[_num(c.test_auroc_pooled), _num(c.test_ap_pooled)]
                       + [_num(v) for v in c.per_fold_auroc.values()]]),
             *[f"- {n}" for n in clf_notes], *([""] if clf_notes else []),
             "## Masks (%, micro over pooled test folds)", ""]
    table, notes = [], []
    seg_label = segmentation_label(cfg.segmentation.arch, results, cfg.segmentation.mask_cut,
                                   cfg.segmentation.self_training)
    for label, key in [
            (f"{cfg.cam.method} heat map, defective test images (paper view)", "cam_paper"),
            (f"{cfg.cam.method} heat map, all test images (deployment view)", "cam_deployment"),
            (f"pseudo-labels{pseudo_label_options(cfg)} vs true masks, defective training images",
             "pseudo_labels"),
            (seg_label, "segmentation"),
            (seg_label.replace(
                ", all test images", ", gated by the classifier (empty mask where p(defect) < "
                f"{_gate_threshold_text(results)}), all test images"), "segmentation_gated")]:
        r = results.view(key)
        if r:
            table.append([label, pct(r["iou"]), interval_text(results.intervals.get(key)),
                          pct(r["miou"]), pct(r["precision"]), pct(r["recall"]), pct(r["f1"])])
            note = undefined_note(label, r)
            if note:
                notes.append(f"- {note}")
    lines += [md_table(["what", "defect IoU", "defect IoU 95% CI", "mIoU", "precision",
                        "recall", "F1"], table),
              *_gate_line(results),
              "95% CI: percentile bootstrap of the pooled IoU over the test images of all folds "
              "(`racam.evaluation.bootstrap`); it covers the choice of test images for this "
              "trained run, not the training. `-`: not computed.", ""] if table else [
        "None: the dataset has no true masks (`masks/`), so no mask is scored. The pseudo-labels "
        "are checked without masks below.", ""]
    if notes:
        lines += ["n/a: a score over an empty set of pixels is not a number:", "", *notes, ""]
    lines += comparison_section(methods) + deletion_section(results) + train_masks_section(results)
    lines += label_next_section(results)
    lines += data_problems_section(results.data, _data_root(cfg)) + plan_section(cfg, out)
    if fig:
        lines += [f"## Overlays (fold {overlay_fold} test images)", "",
                  f"![overlays]({fig.name})", ""]
    lines += ["## Stage times (s)", "",
              md_table(["fold"] + list(next(iter(results.stage_seconds.values())).keys()),
                       [[k] + [v if v is not None else "-" for v in st.values()]
                        for k, st in results.stage_seconds.items()]),
              "A stage's time includes the calls that started it and were interrupted (Ctrl-C); "
              "finished stages are reused, not timed again.", "", *_wall_line(results),
              "## Machine", "", "```", json.dumps(results.machine, indent=2), "```", "",
              "## Config", "", "```json", json.dumps(cfg.to_dict(), indent=2), "```", ""]
    text = "\n".join(lines)
    atomic_write_text(out / "run-report.md", text)
    write_html(text, out / "run-report.html", title=f"racam run: {cfg.name}")
    return out / "run-report.md"


def _gate_threshold_text(results: RunResults) -> str:
    """The gate's decision threshold: one number, or each fold's."""
    t = (results.segmentation_gated or {}).get("gate_threshold")
    if isinstance(t, dict):
        return ", ".join(f"fold {k}: {v:.3g}" for k, v in t.items())
    return "n/a" if t is None else f"{t:.3g}"


def _gate_line(results: RunResults) -> list[str]:
    """What the gated row means (``segmentation.gate: classifier``), when it is there."""
    g = results.segmentation_gated
    if not g:
        return []
    chosen = [c.threshold_choice for c in results.classifier.per_fold.values()
              if c.threshold_choice]
    how = (" The decision threshold is the one of the best F1 on each fold's validation images "
           "(image labels only; `classifier.threshold_rule: val_f1`)." if chosen else "")
    return [f"Gated: the same network, its mask emptied on the {g['emptied_images']} test "
            "image(s) the classifier calls good (`segmentation.gate: classifier`; predict and "
            f"export bundles apply the same rule).{how}", ""]


def _wall_line(results: RunResults) -> list[str]:
    """Wall time of this call and of every call that computed stages (``n/a`` when absent)."""
    this, every = results.wall_seconds_this_call, results.wall_seconds_all_calls
    if this is None:
        return ["Wall time: n/a (not recorded in `results.json`).", ""]
    text = f"Wall time of this call: {this} s"
    if every is not None:
        text += (f"; of the {results.calls} call(s) that computed stages or were "
                 f"interrupted: {every} s")
    return [text + ".", ""]

