"""The paper's figures: Grad-CAM per VGG16 stage (Fig. 1), method grid (Figs. 4-5), delta (Figs. 8-9)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from racam.report.figures import image_grid, line_plot
from racam.report.paper_numbers import DISPLAY

if TYPE_CHECKING:
    from racam.pipeline.run import Pipeline


def _defective(pipe: "Pipeline", fold: int, n: int) -> list[int]:
    return [i for i, y in enumerate(pipe.data(fold).test.labels) if y == 1][:n]


def _image_panel(dataset, index: int) -> tuple:
    from racam.pseudo.heatmaps import to_original_size

    sample = dataset[index]
    true = dataset.true_mask(index)
    return (sample.id, "image", to_original_size(sample.image[:1], sample.original_size)[0], true), true


def stage_figure(pipe: "Pipeline", fold: int, n: int, path: Path) -> Path:
    """Fig. 1: Grad-CAM computed at each stage S1..S5 on ``n`` defective test images."""
    from racam.models import classifier_target_layers
    from racam.pseudo.heatmaps import iter_heatmaps

    idx = _defective(pipe, fold, n)
    stages = classifier_target_layers(pipe.model(fold))
    ds = pipe.data(fold).test
    rows = [[_image_panel(ds, i)[0]] for i in idx]
    for name, layer in stages.items():
        cam = pipe.cam(fold, "gradcam", layers=[layer])
        for r, (_, s, heat, _) in enumerate(iter_heatmaps(cam, ds, idx, batch_size=1,
                                                         device=pipe.device)):
            rows[r].append((f"Grad-CAM {name}", "heat", heat, rows[r][0][3]))
    return image_grid(rows, path, col_width=1.3, row_height=3.2,
                      suptitle="Grad-CAM at the five stages (green: true defect)")


def method_grid_figure(pipe: "Pipeline", fold: int, n: int, methods: list[str], delta: float,
                       path: Path) -> Path:
    """Figs. 4-5: image, true mask, and each method's heat map and Otsu mask."""
    from racam.pseudo.heatmaps import iter_heatmaps

    idx = _defective(pipe, fold, n)
    ds = pipe.data(fold).test
    rows = []
    for i in idx:
        panel, true = _image_panel(ds, i)
        rows.append([panel, ("true mask", "mask", true, None)])
    for m in methods:
        cam = pipe.cam(fold, m, delta if m == "racam" else None)
        for r, (_, _, heat, mask) in enumerate(iter_heatmaps(cam, ds, idx, batch_size=1,
                                                             device=pipe.device)):
            true = rows[r][1][2]
            rows[r] += [(DISPLAY.get(m, m), "heat", heat, true),
                        (f"{DISPLAY.get(m, m)} mask", "mask", mask, true)]
    return image_grid(rows, path, col_width=1.15, row_height=3.0)


def delta_figure(sweep: dict[str, Any], path: Path) -> Path:
    """Figs. 8-9: RA-CAM IoU (%) against delta on training and test images."""
    xs = [r["delta"] for r in sweep["rows"]]
    series = {
        "train": (xs, [100 * r["train"]["iou"] for r in sweep["rows"]]),
        "test": (xs, [100 * r["test"]["iou"] for r in sweep["rows"]]),
    }
    return line_plot(series, path, xlabel="delta (percentile)", ylabel="IoU (%)",
                     title="RA-CAM IoU against FGBP delta (dashed: chosen on train)",
                     mark_x=sweep["chosen_delta"])
