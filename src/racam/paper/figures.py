"""The paper's figures: Grad-CAM per VGG16 stage (Fig. 1), method grid (Figs. 4-5), delta
(Figs. 8-9). Drawn by :meth:`racam.paper.reproduce.Reproduction.figures`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from racam.pseudo.heatmaps import CamFn, iter_heatmaps, to_original_size
from racam.report.figures import image_grid, line_plot
from racam.report.names import DISPLAY


def defective_indices(dataset: Dataset, n: int) -> list[int]:
    """Indices of the first ``n`` defective images of ``dataset``."""
    return [i for i, y in enumerate(dataset.labels) if y == 1][:n]  # type: ignore[attr-defined]  # racam datasets have .labels


def _image_panel(dataset, index: int) -> tuple:
    sample = dataset[index]
    true = dataset.true_mask(index)
    image = to_original_size(sample.image[:1], sample.original_size)[0]
    return (sample.id, "image", image, true), true


def stage_figure(dataset: Dataset, stage_cams: dict[str, CamFn], n: int,
                 device: torch.device | str, path: Path) -> Path:
    """Fig. 1: Grad-CAM computed at each stage on ``n`` defective images of ``dataset``;
    ``stage_cams`` maps a stage name (S1..S5) to Grad-CAM at that stage."""
    idx = defective_indices(dataset, n)
    rows = [[_image_panel(dataset, i)[0]] for i in idx]
    for name, cam in stage_cams.items():
        for r, (_, _, heat, _) in enumerate(iter_heatmaps(cam, dataset, idx, batch_size=1,
                                                         device=device)):
            rows[r].append((f"Grad-CAM {name}", "heat", heat, rows[r][0][3]))
    return image_grid(rows, path, col_width=1.3, row_height=3.2,
                      suptitle="Grad-CAM at the five stages (green: true defect)")


def method_grid_figure(dataset: Dataset, method_cams: dict[str, CamFn], n: int,
                       device: torch.device | str, path: Path) -> Path:
    """Figs. 4-5: image, true mask, and each method's heat map and Otsu mask on ``n``
    defective images of ``dataset``; ``method_cams`` maps a method name to its heat map."""
    idx = defective_indices(dataset, n)
    rows = []
    for i in idx:
        panel, true = _image_panel(dataset, i)
        rows.append([panel, ("true mask", "mask", true, None)])
    for m, cam in method_cams.items():
        for r, (_, _, heat, mask) in enumerate(iter_heatmaps(cam, dataset, idx, batch_size=1,
                                                             device=device)):
            true = rows[r][1][2]
            rows[r] += [(DISPLAY.get(m, m), "heat", heat, true),
                        (f"{DISPLAY.get(m, m)} mask", "mask", mask, true)]
    return image_grid(rows, path, col_width=1.15, row_height=3.0)


def delta_figure(sweep: dict[str, Any], path: Path) -> Path:
    """Figs. 8-9: RA-CAM IoU (%) against delta on training and test images."""
    xs = [r["delta"] for r in sweep["rows"]]
    def pct(v: float | None) -> float:  # an undefined IoU is a gap in the line
        return float("nan") if v is None else 100 * v

    series = {
        "train": (xs, [pct(r["train"].get("iou")) for r in sweep["rows"]]),
        "test": (xs, [pct(r["test"].get("iou")) for r in sweep["rows"]]),
    }
    return line_plot(series, path, xlabel="delta (percentile)", ylabel="IoU (%)",
                     title="RA-CAM IoU against FGBP delta (dashed: chosen on train)",
                     mark_x=sweep["chosen_delta"])
