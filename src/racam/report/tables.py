"""Markdown tables of metrics."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from racam.pseudo.scale_choice import CALLED_AT

if TYPE_CHECKING:
    from racam.stages.classifier import ClassifierSummary


def pct(x: float | None) -> str:
    """A fraction in [0, 1] as a percentage with two decimals; ``None`` (a score over an empty
    set, see :mod:`racam.evaluation.metrics`) is ``n/a``."""
    return NA if x is None else f"{100 * x:.2f}"


def interval_text(iv: dict[str, Any] | None, missing: str = "-") -> str:
    """A bootstrap interval (fractions) as ``[12.34, 56.78]`` in percent, ``missing`` if none."""
    return missing if not iv else f"[{100 * iv['low']:.2f}, {100 * iv['high']:.2f}]"


#: How a score over an empty set is shown.
NA = "n/a"


#: A cell that reads as a figure: a number (sign, percent, unit), an interval ``[a, b]``, a
#: figure with its interval, or ``-`` / ``n/a`` for a missing one.
_FIGURE = re.compile(r"^(\*\*)?[-+]?(\d[\d,.]*|n/a|-)( ?(%|s|MB|GB|px))?(\*\*)?"
                     r"( ?\[[-+]?[\d.]+, [-+]?[\d.]+\])?$|^\[[-+]?[\d.]+, [-+]?[\d.]+\]$")


def _aligned(column: Sequence[Any]) -> str:
    """``---:`` (right) for a column of figures with at least one number, else ``---``."""
    cells = [str(c).strip() for c in column]
    figures = all(_FIGURE.match(c) for c in cells) and any(any(ch.isdigit() for ch in c)
                                                           for c in cells)
    return "---:" if figures else "---"


def md_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub-flavoured Markdown table; columns of figures are right-aligned, text left."""
    columns = [[row[k] for row in rows if k < len(row)] for k in range(len(header))]
    lines = ["| " + " | ".join(header) + " |",
             "| " + " | ".join(_aligned(c) if c else "---" for c in columns) + " |"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def or_dash(value: Any) -> str:
    """``-`` for a value that was not recorded (``None``), else the value as text."""
    return "-" if value is None else str(value)


def classifier_notes(where: str, v: ClassifierSummary | dict[str, Any]) -> list[str]:
    """Report lines on one classifier stage (:class:`racam.stages.classifier.ClassifierSummary`,
    or its stored form): a restart, the ``classifier.candidates`` choice, the epoch kept by
    area (``classifier.keep_epoch``), the pseudo-labels' scale, a divergence;
    ``where``: "Fold 0" etc."""
    if isinstance(v, dict):
        from racam.stages.classifier import ClassifierSummary
        v = ClassifierSummary.from_json(v)
    notes = []
    if v.restarted:
        notes.append(f"{where}: the first training stayed below the validation AUROC floor; "
                     "the table shows its restart (`classifier.restarts`).")
    if v.candidates:
        areas = ", ".join(f"seed {c.seed}: {100 * c.pseudo_area:.2f} %"
                          + (" (kept)" if c.chosen else "") for c in v.candidates)
        notes.append(f"{where}: of {len(v.candidates)} classifiers passing the validation "
                     "floor, the one whose pseudo-labels mark the least of the defective "
                     f"training images was kept (`classifier.candidates`; {areas}).")
    if v.epoch_choice:
        notes.append(epoch_choice_note(where, v.epoch_choice))
    if v.scale_choice:
        notes.append(scale_choice_note(where, v.scale_choice))
    if v.threshold_choice:
        notes.append(threshold_choice_note(where, v.threshold_choice))
    if v.diverged_at:
        notes.append(f"{where}: training diverged at epoch {v.diverged_at} (mean loss not "
                     f"finite) and stopped; the kept epoch {or_dash(v.best_epoch)} is from "
                     "before, chosen on validation images.")
    return notes


def scale_choice_note(where: str, choice: dict[str, Any]) -> str:
    """The report line on the pseudo-labels' input scales (``cam.scale_candidates``)."""
    called = ", ".join(f"scale {s}: {100 * c:.2f} %" for s, c in (choice.get("called") or {})
                       .items())
    areas = ", ".join(f"scale {s}: {100 * a:.2f} %" for s, a in choice["areas"].items())
    scale = choice["scale"]
    drawn = (f"the mean of the maps of the input scaled by {', '.join(f'{s:g}' for s in scale)}"
             if isinstance(scale, list) else f"the input scaled by {scale:g}")
    text = (f"{where}: the pseudo-labels are drawn from {drawn} "
            "(`cam.scale_candidates`, decided at the best validation AUROC's epoch")
    if called:
        text += (f"; defective training images the classifier calls defective at each scale "
                 f"(p(defect) >= {CALLED_AT:g}, whatever the decision threshold), at least half "
                 f"needed: {called}")
    if areas:
        text += f"; the smallest share of those images marked by the labels: {areas}"
    return text + ")."


def threshold_choice_note(where: str, choice: dict[str, Any]) -> str:
    """The report line on a decision threshold chosen on validation images
    (``classifier.threshold_rule: val_f1``)."""
    if choice.get("fallback"):
        return (f"{where}: the decision threshold stayed at {choice['threshold']:g} "
                f"(`classifier.threshold`): the {choice['images']} validation images hold one "
                "class, so `classifier.threshold_rule: val_f1` had nothing to choose by.")
    fixed = choice.get("f1_fixed")
    against = "" if fixed is None else f"; F1 {fixed:.3f} at `classifier.threshold`"
    return (f"{where}: the classifier calls an image defective at p(defect) >= "
            f"{choice['threshold']:.4g}, the threshold of the best F1 ({choice['f1']:.3f}) on "
            f"the {choice['images']} validation images, {choice['defective']} of them "
            f"defective (image labels only; `classifier.threshold_rule: val_f1`{against}).")


def epoch_choice_note(where: str, choice: dict[str, Any]) -> str:
    """The report line on an epoch kept by pseudo-label area (``classifier.keep_epoch``)."""
    areas = ", ".join(f"epoch {e}: {100 * a:.2f} %" + (" (kept)" if int(e) == choice["epoch"]
                                                       else "")
                      for e, a in choice["areas"].items())
    return (f"{where}: the classifier kept epoch {choice['epoch']} (epoch {choice['by_auroc']} "
            "has the best validation AUROC): of the epochs within "
            f"{choice['tolerance']:g} of that AUROC, its pseudo-labels mark the least of the "
            f"defective training images (`classifier.keep_epoch: pseudo_area`; {areas}).")
