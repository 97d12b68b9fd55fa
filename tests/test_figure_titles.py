"""The run's overlays.png keeps long file names readable: neighbouring titles do not overlap."""

from __future__ import annotations

import numpy as np

from racam.report.figures import fit_title, grid_figure


def test_long_titles_of_neighbouring_panels_do_not_overlap() -> None:
    names = ["line3_camera2/2024-05-17_shift_b/defect_scratch_long_name_000123",
             "averyveryveryverylongnamewithoutanyseparator_and_more.png",
             "kos10/Part5", "plant 4/station-12/left_side_of_the_part/image_0042.png"]
    img = np.zeros((40, 16))
    fig = grid_figure([[(n, "image", img, None) for n in names]], col_width=1.4, row_height=3.6)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    boxes = [ax.title.get_window_extent(renderer) for ax in fig.axes]
    for left, right in zip(boxes, boxes[1:]):
        assert left.x1 <= right.x0, (left, right)
    for ax, box in zip(fig.axes, boxes):  # and each title stays within its own column
        col = ax.get_position().transformed(fig.transFigure)
        pad = (fig.get_figwidth() * fig.dpi / len(names) - col.width) / 2
        assert col.x0 - pad <= box.x0 and box.x1 <= col.x1 + pad


def test_fit_title_keeps_short_titles_and_the_end_of_long_ones() -> None:
    assert fit_title("kos10/Part5", 1.26) == "kos10/Part5"
    long = fit_title("a/" * 40 + "image_0042.png", 1.26)
    assert long.count("\n") == 2 and long.endswith("image_0042.png") and "\u2026" in long
