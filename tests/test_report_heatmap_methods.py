"""The run report's comparison of every heat-map method scored on the run's classifiers
(:mod:`racam.report.heatmap_methods`): pooled over folds, each method against the run's own on
the same images, and files of other folds' subsets or of another classifier left out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from racam.report.heatmap_methods import compare_methods, comparison_section

KEY = {"seed": 0, "data": {"root": "d"}, "classifier": {"epochs": 3},
       "inputs": {"data": "a", "checkpoint": "c"}}


def _write(folder: Path, stem: str, method: str, counts: dict[str, list[int]], **key) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{stem}.json"
    path.write_text(json.dumps({"method": method, "delta": 50 if method == "racam" else None,
                                "paper_per_image": {k: v + [100] for k, v in counts.items()},
                                "key": {**KEY, **key, "method": method}}))
    return path


def test_methods_are_pooled_over_folds_and_paired_with_the_runs_method(tmp_path) -> None:
    f0, f1 = tmp_path / "fold0/cam/test", tmp_path / "fold1/cam/test"
    run = [_write(f0, "racam-d50", "racam", {"a": [2, 2, 0], "b": [1, 0, 3]}),
           _write(f1, "racam-d50", "racam", {"c": [4, 4, 0]})]
    _write(f0, "gradcam", "gradcam", {"a": [1, 3, 1], "b": [0, 1, 4]})
    _write(f1, "gradcam", "gradcam", {"c": [2, 6, 2]})
    _write(f0, "layercam", "layercam", {"a": [2, 0, 0], "b": [1, 0, 3]})  # fold 0 only
    _write(f0, "old", "fullgrad", {"a": [2, 0, 0], "b": [4, 0, 0]})
    _write(f1, "old", "fullgrad", {"c": [8, 0, 0]}, inputs={"data": "a", "checkpoint": "x"})
    c = compare_methods(run)
    assert c is not None and c.images == 3
    assert [s.label for s in c.scores] == ["RA-CAM (`racam-d50`, delta 50)",
                                          "Grad-CAM (`gradcam`)"]
    assert c.left_out == ["layercam.json", "old.json"]
    racam, grad = c.scores
    assert racam.iou.estimate == pytest.approx(7 / (7 + 6 + 3))  # pooled tp / (tp + fp + fn)
    assert grad.iou.estimate == pytest.approx(3 / (3 + 10 + 7))
    assert grad.minus_run is not None
    assert grad.minus_run.estimate == pytest.approx(3 / 20 - 7 / 16)
    assert grad.minus_run.high < 0 < racam.iou.low  # every image scores lower here
    text = "\n".join(comparison_section(c))
    assert "over the 3 defective test images of all folds" in text
    assert "| Grad-CAM (`gradcam`) | 15.00 [" in text and "`old.json`" in text


def test_other_methods_are_listed_from_the_highest_iou_down(tmp_path) -> None:
    f0 = tmp_path / "fold0/cam/test"
    run = [_write(f0, "racam-d50", "racam", {"a": [5, 5, 0]})]
    for stem, tp in (("ablationcam", 1), ("gradcam", 4), ("layercam", 2)):  # IoU tp / 10
        _write(f0, stem, stem, {"a": [tp, 10 - tp, 0]})
    c = compare_methods(run)
    assert c is not None
    assert [s.label.split(" ")[0] for s in c.scores] == ["RA-CAM", "Grad-CAM", "LayerCAM",
                                                         "Ablation-CAM"]
    assert "from the highest IoU down" in "\n".join(comparison_section(c))


def test_no_section_without_another_method(tmp_path) -> None:
    run = [_write(tmp_path / "fold0/cam/test", "racam-d50", "racam", {"a": [1, 1, 1]})]
    assert compare_methods(run) is None and comparison_section(None) == []
    assert compare_methods([]) is None
