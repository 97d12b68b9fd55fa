"""Report tables as a reader sees them: columns of figures right-aligned, text columns (names,
kinds, file lists) left-aligned, in the Markdown and in the HTML page rendered from it."""

from __future__ import annotations

import re

from racam.report.html import write_html
from racam.report.tables import md_table


def test_figures_right_text_left_in_markdown_and_html(tmp_path) -> None:
    """A table as the run report writes one: IoU figures, intervals, counts, percentages and
    missing figures right; a method name and a file list left, also where a cell of a text
    column is a dash or a number-like id."""
    table = md_table(
        ["what", "defect IoU", "95% CI", "images", "share", "files"],
        [["RA-CAM heat map", "8.83", "[7.10, 9.21]", "4", "12.5 %", "a.png, b.png"],
         ["pseudo-labels", "**25.82**", "-", "36", "n/a", "-"],
         ["segmentation", "27.70", "+1.72 [+1.07, +2.35]", "128", "0 %", "0001"]])
    assert table.splitlines()[1] == "| --- | ---: | ---: | ---: | ---: | --- |"
    page = write_html(table, tmp_path / "t.html", "t").read_text()
    cells = re.findall(r"<td( style=\"text-align: right;\")?>([^<]*)</td>", page)
    right = {text for style, text in cells if style}
    left = {text for style, text in cells if not style}
    assert {"8.83", "[7.10, 9.21]", "36", "n/a", "+1.72 [+1.07, +2.35]", "0 %"} <= right
    assert {"RA-CAM heat map", "a.png, b.png", "pseudo-labels"} <= left
    assert "text-align: right; }" not in page  # no blanket right alignment left in the CSS


def test_a_column_of_dashes_only_stays_left() -> None:
    """No figure in a column (every cell missing): nothing to line up, left as text."""
    assert md_table(["a", "b"], [["x", "-"], ["y", "-"]]).splitlines()[1] == "| --- | --- |"
