"""The run report's "Data problems" section: the dataset's file problems counted by kind, one
example of each, and every problem in a folded list (a folder with duplicated photos can have
dozens; each file stays named)."""

from __future__ import annotations

from racam.report.tables import md_table
from racam.stages.problems import DataProblems, FileProblem


def _short(text: str, root: str | None) -> str:
    """``text`` with the data root left out of its paths."""
    return text.replace(root.rstrip("/") + "/", "") if root else text


def _row(kind: str, problems: list[FileProblem], root: str | None) -> list[object]:
    first = problems[0]
    return [kind, len(problems), f"`{_short(first.path, root)}`", _short(first.message, root)]


def data_problems_section(data: DataProblems, root: str | None = None) -> list[str]:
    """Report lines: a table of the problems by kind (count, first file) with every problem
    below it in a ``<details>`` block; then the images left out of the pixel metrics. ``root``
    (the data root) is left out of the paths shown in the table."""
    lines: list[str] = []
    if data.problems:
        groups = data.by_kind()
        rows = [_row(kind, ps, root) for kind, ps in groups.items()]
        lines += ["## Data problems", "",
                  f"{len(data.problems)} problem(s) of {len(groups)} kind(s) in the dataset's "
                  "files (`racam data info` lists the same; `data.strict: true` makes them "
                  "errors):", "",
                  md_table(["problem", "files", "the first file", "what is wrong with it"], rows),
                  "",
                  '<details markdown="1"><summary>Every problem, file by file</summary>', "",
                  *[f"- `{p}`" for p in data.problems], "", "</details>", ""]
    if data.left_out_of_pixel_metrics:
        lines += ["Images without a usable mask, used to train the classifier but left out of "
                  "the pixel metrics:", ""]
        lines += [f"- `{p}`" for p in data.left_out_of_pixel_metrics] + [""]
    return lines
