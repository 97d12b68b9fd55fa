"""Per-image counts of a segmentation network (Table III's bootstrap), kept by the stage and
added to a result stored before they were kept, on the demo run's real KolektorSDD images."""

from __future__ import annotations

import json
import shutil

import numpy as np

from racam.config import config_from_dict
from racam.engine import Engine
from racam.evaluation.bootstrap import BOOTSTRAP_SEED, bootstrap_iou


def test_per_image_counts_are_kept_and_added_to_older_results(trained_run, tmp_path) -> None:
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    said: list[str] = []
    cfg = config_from_dict(json.loads((run / "config.json").read_text()))
    pipe = Engine(cfg, run, progress=False, log=said.append)
    path = next((run / "fold0" / "segmentation").glob("*/result.json"))
    stored = json.loads(path.read_text())
    per = stored["per_image"]
    test_ids = [r.id for r in pipe.data(0).test.records]
    assert sorted(per) == sorted(test_ids)  # every test image of the fold, by its id
    totals = np.array(list(per.values())).sum(0).tolist()
    assert totals == [stored["counts"][k] for k in ("tp", "fp", "fn", "tn")]
    assert sum(c[0] for c in per.values()) > 0 or stored["counts"]["tp"] == 0

    # a result written before per-image counts were kept: scored again, not retrained
    del stored["per_image"]
    path.write_text(json.dumps(stored))
    network = path.parent / "last.pt"
    before = network.stat().st_mtime_ns
    assert pipe.segmentation(0).per_image is None  # only asked for, it is not rescored
    value = pipe.segmentation(0, per_image=True)
    assert value.per_image == per and value.rescored_counts is None
    assert json.loads(path.read_text())["per_image"] == per  # written back
    assert network.stat().st_mtime_ns == before and pipe.stages_computed == 0
    assert any("scoring the stored network again" in s for s in said)


def test_the_run_report_gives_the_segmentation_iou_an_interval(trained_run) -> None:
    """``racam run``'s results hold the bootstrap interval of the network's pooled IoU over
    its stored per-image counts, and the report prints it."""
    results = json.loads((trained_run / "results.json").read_text())
    per: dict = {}
    for path in sorted(trained_run.glob("fold*/segmentation/*/result.json")):
        per.update(json.loads(path.read_text())["per_image"])
    want = bootstrap_iou([per[i] for i in sorted(per)], seed=BOOTSTRAP_SEED).to_dict()
    got = results["intervals"]["segmentation"]
    assert got == want and got["images"] == len(per)
    iou = results["segmentation"]["iou"]
    assert iou is None or got["estimate"] == iou
    cam = results["intervals"]["cam_paper"]
    assert cam is not None and cam["images"] == sum(
        len(json.loads(p.read_text())["paper_per_image"])
        for p in trained_run.glob("fold*/cam/test/*.json"))
    text = (trained_run / "run-report.md").read_text()
    assert f"[{100 * got['low']:.2f}, {100 * got['high']:.2f}]" in text
