"""Every heat-map method scored on a run's classifiers, side by side in the run report.

``racam run`` scores the config's method on the test images (``fold<k>/cam/test/<key>.json``);
``racam evaluate --method M`` adds other methods' files beside it. :func:`compare_methods` reads
those whose key names the same classifier, images and input scales as the run's own file on
every fold, pools their per-image counts over the folds, and scores each against the run's
method with the paired bootstrap (:mod:`racam.evaluation.bootstrap`): on a user's own masks, the
paper's Table I for their data."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from racam.evaluation.bootstrap import Interval, bootstrap_iou, paired_bootstrap_iou_difference
from racam.io import read_json
from racam.report.names import display_name
from racam.report.tables import md_table

#: Key entries two result files must share to have scored the same maps' inputs.
SAME_RUN = ("seed", "data", "classifier", "inputs", "scales", "flips")


@dataclasses.dataclass(frozen=True)
class MethodScore:
    """One method's defect IoU over the pooled defective test images (paper view)."""

    label: str  #: display name, with delta and the file's key
    iou: Interval
    minus_run: Interval | None  #: paired difference against the run's method (None: itself)


@dataclasses.dataclass(frozen=True)
class MethodComparison:
    """The run's method first, then every other method scored on all folds, highest IoU first."""

    scores: list[MethodScore]
    images: int
    left_out: list[str]  #: files scored on some folds only, or on another classifier


def _label(d: dict[str, Any], stem: str) -> str:
    delta = "" if d.get("delta") is None else f", delta {d['delta']:g}"
    return f"{display_name(d['method'])} (`{stem}`{delta})"


def _same_run(d: dict[str, Any], ref: dict[str, Any]) -> bool:
    return (d.get("paper_per_image") is not None
            and all(d["key"].get(k) == ref["key"].get(k) for k in SAME_RUN))


def _pooled(files: list[dict[str, Any]], ids: list[list[str]]) -> np.ndarray:
    """Per-image ``[tp, fp, fn]`` of every fold's images, in ``ids`` order."""
    return np.array([f["paper_per_image"][i][:3] for f, fold_ids in zip(files, ids)
                     for i in fold_ids])


def compare_methods(run_files: list[Path]) -> MethodComparison | None:
    """The comparison of the methods stored beside ``run_files`` (the run's own result file of
    each fold); ``None`` when no other method was scored."""
    refs = [read_json(p) for p in run_files]
    if not refs or any(r.get("paper_per_image") is None for r in refs):
        return None
    ids = [sorted(r["paper_per_image"]) for r in refs]
    stems = {p.stem for f in run_files for p in f.parent.glob("*.json")} - {run_files[0].stem}
    found, left_out = {}, []
    for stem in sorted(stems):
        paths = [f.parent / f"{stem}.json" for f in run_files]
        files = [read_json(p) for p in paths if p.is_file()]
        if len(files) == len(refs) and all(_same_run(d, r) and sorted(d["paper_per_image"]) == i
                                           for d, r, i in zip(files, refs, ids)):
            found[stem] = files
        else:
            left_out.append(f"{stem}.json")
    if not found:
        return None
    base = _pooled(refs, ids)
    others = []
    for stem, files in found.items():
        counts = _pooled(files, ids)
        others.append(MethodScore(_label(files[0], stem), bootstrap_iou(counts),
                                  paired_bootstrap_iou_difference(counts, base)))
    others.sort(key=lambda s: -s.iou.estimate)
    run = MethodScore(_label(refs[0], run_files[0].stem), bootstrap_iou(base), None)
    return MethodComparison([run, *others], len(base), left_out)


def _pct(i: Interval, sign: str = "") -> str:
    return f"{100 * i.estimate:{sign}.2f} [{100 * i.low:{sign}.2f}, {100 * i.high:{sign}.2f}]"


def comparison_section(c: MethodComparison | None) -> list[str]:
    """The report's section (none without a comparison)."""
    if c is None:
        return []
    run = c.scores[0].label
    rows = [[s.label, _pct(s.iou), "-" if s.minus_run is None else _pct(s.minus_run, "+")]
            for s in c.scores]
    lines = ["## Heat-map methods compared (defective test images)", "",
             f"Every method scored on this run's classifiers (`racam evaluate --method M` adds "
             f"one; `racam run` again re-renders this report): defect IoU of Otsu on each map "
             f"over the {c.images} defective test images of all folds, its 95 % bootstrap "
             f"interval, and the paired difference against {run} on the same images; the "
             f"other methods from the highest IoU down.", "",
             md_table(["method", "defect IoU % [95 %]", f"minus {run} [95 %]"], rows)]
    if c.left_out:
        lines += ["Not compared (scored on some folds only, or on another classifier, images "
                  "or input scales): " + ", ".join(f"`{f}`" for f in c.left_out) + ".", ""]
    return lines
