"""The Markdown report of ``racam reproduce`` (``report.md``; ``report.html`` is rendered from
it): the paper's Tables I, III, IV and Figures 1, 4-5, 8-9 next to the paper's numbers, each
claim backed by a bootstrap interval (:func:`render_report`). It reads the typed results of
``reproduce.json`` only (:mod:`racam.paper.results`), so a stored reproduction can be rendered
again (:func:`render_folder`, ``racam reproduce CONFIG --out DIR --render-only``).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from racam.config import RunConfig, config_from_dict
from racam.data import registry as datasets
from racam.errors import DataError
from racam.evaluation.bootstrap import CONFIDENCE
from racam.io import atomic_write_text, read_json
from racam.models.registry import effective_width
from racam.paper.format import ReportInput
from racam.paper.observations import observations
from racam.paper.results import ReproductionResults
from racam.paper.tables import (
    classifier_section,
    sweep_section,
    table_i_section,
    table_iii_section,
    table_iv_section,
    variants_section,
)
from racam.report.html import write_html
from racam.report.tables import md_table


def render_report(cfg: RunConfig, results: ReproductionResults | Mapping[str, Any],
                  out: Path) -> str:
    """The Markdown report of a reproduction (``results``: typed, or ``reproduce.json``'s
    dictionary) written to ``out``. Every figure may be missing or 0: a missing row or number
    prints as ``-``, an undefined one as ``n/a``, a missing figure file as ``n/a`` and why;
    nothing is divided by a zero or missing figure."""
    res = (results if isinstance(results, ReproductionResults)
           else ReproductionResults.from_dict(results))
    inp = ReportInput(cfg, res, out)
    notes = observations(res)
    return "\n".join([
        f"# racam reproduction: {cfg.name}", "", _setup(inp), "", _reading(), "",
        *(["## What this run shows next to the paper", ""] + [f"- {n}" for n in notes] + [""]
          if notes else []),
        *classifier_section(inp), *table_i_section(inp), *variants_section(inp),
        *table_iv_section(inp), *table_iii_section(inp), *sweep_section(inp),
        *_figures(inp), "## Timings", "",
        *timing_lines(res, cfg.reproduce.wall_goal_minutes, inp.multi), "",
        *_machine_and_config(inp)])


def render_folder(folder: Path) -> Path:
    """Write ``report.md`` and ``report.html`` of the reproduction stored in ``folder`` again
    from its ``reproduce.json`` and ``config.json`` (after a change to the report's wording; no
    number is recomputed); returns the path of ``report.md``."""
    folder = Path(folder)
    results = _read_record(folder / "reproduce.json")
    cfg = config_from_dict(_read_record(folder / "config.json"))
    if results.get("chosen_delta") is not None:  # as `racam reproduce` renders it
        cfg = dataclasses.replace(cfg, cam=dataclasses.replace(cfg.cam,
                                                               delta=results["chosen_delta"]))
    text = render_report(cfg, ReproductionResults.from_dict(results), folder)
    atomic_write_text(folder / "report.md", text)
    write_html(text, folder / "report.html", title=f"racam reproduce: {cfg.name}")
    return folder / "report.md"


def _read_record(path: Path) -> dict[str, Any]:
    """A JSON object stored by ``racam reproduce``; :class:`DataError` naming ``path`` when it
    is not one (a missing file raises ``FileNotFoundError``, which names it too)."""
    try:
        value = read_json(path)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not a JSON file written by racam reproduce ({exc})") from None
    if not isinstance(value, dict):
        raise DataError(f"{path}: expected a JSON object, found {type(value).__name__}")
    return value


def _width_note(cfg: RunConfig) -> str:
    """`` (width divisor N)`` for a backbone whose channels ``classifier.width`` divides
    (``vgg16_narrow``), else nothing: the other backbones ignore the key."""
    width = effective_width(cfg.classifier.backbone, cfg.classifier.width)
    return f" (width divisor {width})" if width > 1 else ""


def _setup(inp: ReportInput) -> str:
    """The paragraph saying what ran: data, classifier, fusion, RA-CAM's options, seeds."""
    cfg, delta = inp.cfg, inp.delta
    folds = datasets.get(cfg.data.dataset).folds(cfg.data)
    return (f"Dataset `{cfg.data.dataset}`, folds {folds} "
            f"(every number below is pooled over the test folds: micro TP/FP/FN over all pixels "
            f"of all test images of all folds). Input {cfg.data.size[0]}x{cfg.data.size[1]} "
            f"(width x height), {cfg.data.channels} channel(s). Classifier "
            f"`{cfg.classifier.backbone}`{_width_note(cfg)}, "
            f"{cfg.classifier.epochs} epochs. Fusion of "
            f"layers: **{cfg.cam.fusion}**"
            + ("" if cfg.cam.fusion == "max" else
               " (the protocol's default is max; this config's choice, made on training images, "
               "is explained in docs/protocol.md)")
            + f". RA-CAM: Eq. 7 read **{cfg.cam.weighting}**-wise, FGBP "
            f"head scope **{cfg.cam.fgbp_head}**, delta chosen on training images: "
            f"**{inp.delta_text}**"
            + (" (delta 0 is guided backpropagation: FGBP's percentile filter is off)"
               if delta == 0 else "")
            + f". Classifier seeds: {', '.join(map(str, inp.seeds))}"
            + (" (heat-map tables: mean ± sd over the seeds)." if inp.multi else "."))


def _reading() -> str:
    """How to read the report's numbers against the paper's."""
    return ("Paper numbers are the paper's KSDD results at paper scale (full VGG16, 512x1408, "
            "ImageNet-initialised); ours are from the run described here. Where the scale "
            "differs (CPU scale), the comparison is of orderings, not of absolute values. "
            f"Intervals are paired bootstrap {100 * CONFIDENCE:g}% intervals over the defective "
            "test images (`racam.evaluation.bootstrap`), in IoU points. In the tables `-` marks "
            "a figure this run did not compute (a stage not run, a result not recorded) and "
            "`n/a` one that is undefined (a score over an empty set, e.g. precision when no "
            "pixel is predicted defective, or AUROC over test images of a single class).")


#: The figures under the delta table: key in ``reproduce.json``, alt text, section heading.
FIGURES = [("fig8_9", "delta sweep", None),
           ("fig1", "Grad-CAM per stage", "## Figure 1: Grad-CAM at the five VGG16 stages"),
           ("fig4_5", "methods", "## Figures 4-5: heat maps and Otsu masks of every method")]


def _figures(inp: ReportInput) -> list[str]:
    lines: list[str] = []
    for key, title, heading in FIGURES:
        if heading:
            lines += [heading, ""]
            if key == "fig4_5":
                lines += ["Green outline: the true defect.", ""]
        lines += [figure_markdown(inp.res.figures.get(key), title, inp.out), ""]
    return lines


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


def _machine_and_config(inp: ReportInput) -> list[str]:
    machine = (["```json", json.dumps(inp.res.machine, indent=2), "```"] if inp.res.machine
               else ["n/a (not recorded in `reproduce.json`)."])
    return ["## Machine", "", *machine, "", "## Config", "", "```json",
            json.dumps(inp.cfg.to_dict(), indent=2), "```", ""]


def stage_profile(res: ReproductionResults, multi: bool) -> list[str]:
    """The per-stage profile: seconds of each stage kind (summed over folds and seeds; earlier
    interrupted calls of a stage included), largest first, and its share of the wall time of
    all the calls (``wall_seconds_all_calls``) with the time outside the stages (choosing the
    delta, the bootstrap, figures, the report) as its own row. Where no calls were recorded, or
    they sum to less than the stages (stages computed by unrecorded calls), the shares are of
    the stages' sum instead, and the header says so."""
    total = sum(res.stage_seconds.values())
    wall_all = res.wall_seconds_all_calls
    of_wall = wall_all is not None and wall_all >= total and wall_all > 0
    base = float(wall_all) if of_wall and wall_all is not None else total
    rows: list[list[Any]] = [[k, v] for k, v in sorted(res.stage_seconds.items(),
                                                          key=lambda kv: (-kv[1], kv[0]))]
    rows.append(["all stages", round(total, 1)])
    if of_wall and wall_all is not None:
        rows.append(["outside the stages", round(wall_all - total, 1)])
    for row in rows:
        row.append(f"{100 * row[1] / base:.1f} %" if base > 0 else "n/a")
    said = ("Shares are of the wall time of all the calls (the stages and what ran outside "
            "them)." if of_wall else
            "Shares are of the stages' sum: the recorded calls' wall time "
            + ("is not recorded." if wall_all is None
               else f"({wall_all} s) missed some stages."))
    if res.replaced_seconds:  # recorded since reproduce.json kept it; older ones: unknown
        said += (" A stage computed again over its own result, reusing that result's work (the "
                 "classifier, when the delta chosen on training images changes which stored "
                 "epoch its pseudo-labels' area keeps), counts both computations: "
                 + ", ".join(f"{k} {v} s" for k, v in sorted(res.replaced_seconds.items()))
                 + " of the figures above are the earlier computations.")
    return [md_table(["stage", "seconds (sum over folds" + (" and seeds)" if multi else ")"),
                      "share"], rows), said, ""]


def timing_lines(res: ReproductionResults, goal_min: float | None, multi: bool) -> list[str]:
    """The report's timings: the per-stage profile (:func:`stage_profile`), the wall time of
    this call and of all the calls that computed stages, and the wall goal, checked on all the
    calls' wall time, or on the stages' sum where that is larger (stages computed by calls that
    were not recorded)."""
    wall, wall_all = res.wall_seconds_this_call, res.wall_seconds_all_calls
    total = sum(res.stage_seconds.values())
    lines = [*stage_profile(res, multi),
             "Wall time of the `racam reproduce` call that wrote this report: "
             + (f"{wall} s." if wall is not None else "n/a (not recorded in `reproduce.json`).")]
    if wall_all is not None:
        lines[-1] += (f" All {res.calls} call(s) that computed stages or were interrupted: "
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
