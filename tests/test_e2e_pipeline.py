"""End to end on real KolektorSDD images: `racam run` and `racam reproduce` on a tiny config.

Needs the real KolektorSDD (``ksdd_root`` fixture). A custom one-fold split over a few real
items keeps it to about a minute on 2 CPU cores.
"""

from __future__ import annotations

import json
import pickle
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from racam.cli import app

pytestmark = [pytest.mark.data, pytest.mark.slow]

TRAIN = ["kos10", "kos14", "kos15", "kos16", "kos19", "kos20", "kos28", "kos38", "kos45",
         "kos47", "kos48", "kos49"]
TEST = ["kos36", "kos39", "kos40", "kos43"]


def tiny_config(tmp: Path, ksdd_root: Path) -> Path:
    """A one-fold config over real KSDD items, small images and few epochs."""
    split = tmp / "tiny_split.pyb"
    with open(split, "wb") as f:
        pickle.dump(([[(u, False) for u in TRAIN]], [[(u, False) for u in TEST]]), f)
    cfg = tmp / "tiny.yaml"
    cfg.write_text(f"""
name: tiny
seed: 0
output: {tmp / 'run'}
device: cpu
data: {{dataset: ksdd, root: {ksdd_root}, split_file: {split}, folds: [0], size: [96, 256],
        channels: 1, val_fraction: 0.2}}
classifier: {{backbone: vgg16_narrow, width: 8, batch_norm: true, epochs: 8, batch_size: 8,
              lr: 0.01, samples_per_epoch: 64}}
cam: {{method: racam, delta: 50, fusion: max, batch_size: 8}}
segmentation: {{arch: deeplabv3, encoder: resnet18, output_stride: 16, epochs: 1,
                batch_size: 4, lr: 0.01, samples_per_epoch: 8}}
reproduce: {{deltas: [0, 50], supervised_archs: [unet], figure_images: 2,
             methods: [gradcam, scorecam, ablationcam, fullgrad, racam]}}
""")
    return cfg


@pytest.fixture(scope="module")
def run_dir(ksdd_root: Path, tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("e2e")
    cfg = tiny_config(tmp, ksdd_root)
    res = CliRunner().invoke(app, ["run", str(cfg), "--quiet"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    (tmp / "run" / "stdout.txt").write_text(res.output)
    return tmp / "run"


def test_run_writes_every_artefact(run_dir: Path) -> None:
    fold = run_dir / "fold0"
    for rel in ["classifier/best.pt", "classifier/last.pt", "classifier/result.json",
                "cam/test/racam-d50.json", "pseudo/racam-d50/manifest.json",
                "pseudo/racam-d50/result.json", "segmentation/deeplabv3-racam-d50/result.json"]:
        assert (fold / rel).is_file(), rel
    for rel in ["results.json", "run-report.md", "run-report.html", "overlays.png", "config.json"]:
        assert (run_dir / rel).is_file(), rel
    manifest = json.loads((fold / "pseudo/racam-d50/manifest.json").read_text())
    assert manifest["method"] == "racam" and manifest["delta"] == 50
    assert manifest["num_images"] == len(TRAIN) * 8 - 0
    masks = list((fold / "pseudo/racam-d50/masks").glob("*.png"))
    assert len(masks) == manifest["num_images"]
    # pseudo-labels are at the original image size; defect-free images get empty masks
    entry = next(e for e in manifest["images"] if e["label"] == 0)
    m = Image.open(fold / "pseudo/racam-d50" / entry["mask"])
    assert m.size == Image.open(entry["image"]).size
    assert not np.asarray(m).any()
    Image.open(run_dir / "overlays.png").verify()


def test_classifier_beats_chance_on_held_out_units(run_dir: Path) -> None:
    r = json.loads((run_dir / "fold0/classifier/result.json").read_text())
    assert len(r["test_probs"]) == len(TEST) * 8
    assert r["test_auroc"] > 0.6, r["test_auroc"]


def test_results_are_well_formed(run_dir: Path) -> None:
    res = json.loads((run_dir / "results.json").read_text())
    for key in ("cam_paper", "cam_deployment", "pseudo_labels", "segmentation"):
        r = res[key]
        for metric in ("iou", "miou", "precision", "recall", "f1"):
            if r[metric] is None:  # over an empty set (e.g. no pixel predicted): says why
                assert metric in r["undefined"], (key, metric)
            else:
                assert 0.0 <= r[metric] <= 1.0, (key, metric)
        assert r["tp"] + r["fn"] > 0, key  # the test/train images hold defects
    report = (run_dir / "run-report.md").read_text()
    assert "Classifier" in report and "overlays.png" in report
    assert "## Plan" not in report  # a KolektorSDD run has no plan.json


def test_rerun_reuses_finished_stages(run_dir: Path) -> None:
    cfg = run_dir.parent / "tiny.yaml"
    ckpt = run_dir / "fold0/classifier/best.pt"
    seg_result = run_dir / "fold0/segmentation/deeplabv3-racam-d50/result.json"
    before = (ckpt.stat().st_mtime_ns, seg_result.read_text())
    seg_result.unlink()  # as if the run had been killed during segmentation
    res = CliRunner().invoke(app, ["run", str(cfg), "--quiet"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert ckpt.stat().st_mtime_ns == before[0], "classifier must not be retrained"
    assert "classifier ..." not in res.output and "segmentation" in res.output
    assert json.loads(seg_result.read_text())["counts"] == json.loads(before[1])["counts"]


def test_methods_scored_by_evaluate_join_the_report(run_dir: Path) -> None:
    cfg = run_dir.parent / "tiny.yaml"
    assert "## Heat-map methods compared" not in (run_dir / "run-report.md").read_text()
    res = CliRunner().invoke(app, ["evaluate", str(cfg), "--method", "gradcam", "--quiet"],
                             catch_exceptions=False)
    assert res.exit_code == 0, res.output
    grad = json.loads(res.output[res.output.index("{"):])["paper"]["iou"]
    res = CliRunner().invoke(app, ["run", str(cfg), "--quiet"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    report = (run_dir / "run-report.md").read_text()
    own = json.loads((run_dir / "results.json").read_text())
    assert "## Heat-map methods compared" in report
    assert f"| RA-CAM (`racam-d50`, delta 50) | {100 * own['cam_paper']['iou']:.2f} [" in report
    assert f"| Grad-CAM (`gradcam`) | {100 * grad:.2f} [" in report


def test_reproduce_writes_every_table_and_figure(run_dir: Path) -> None:
    """`racam reproduce --out DIR` writes into DIR and reuses the stages already there (a copy
    of the `racam run` folder: the classifier is not retrained)."""
    cfg = run_dir.parent / "tiny.yaml"
    out = run_dir.parent / "repro"
    shutil.copytree(run_dir, out)
    ckpt = out / "fold0/classifier/best.pt"
    before = ckpt.stat().st_mtime_ns
    res = CliRunner().invoke(app, ["reproduce", str(cfg), "--out", str(out), "--quiet"],
                             catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert ckpt.stat().st_mtime_ns == before, "classifier must not be retrained"
    assert not (run_dir / "report.md").exists(), "--out must be honoured"
    report = (out / "report.md").read_text()
    for heading in ("Table I", "Deployment view", "Table IV", "Table III", "Figures 8-9",
                    "Figure 1", "Figures 4-5", "Timings", "Machine", "Config"):
        assert heading in report, heading
    for name in ("RA-CAM", "Grad-CAM", "Score-CAM", "Ablation-CAM", "FullGrad",
                 "LayerCAM+FGBP", "FullGrad+FGBP", "UNet", "DeepLabV3"):
        # rows at delta 0 carry a "(delta 0: guided backpropagation...)" label
        assert re.search(rf"\| {re.escape(name)}( \(delta 0: guided backpropagation[^|]*)? \|",
                         report), name
    assert "nan" not in report.lower()
    html = (out / "report.html").read_text()
    assert "<table>" in html and html.count("<img") == 3
    data = json.loads((out / "reproduce.json").read_text())
    assert data["chosen_delta"] in (0, 50)
    assert data["seeds"] == [0] and not list(out.glob("seed*"))
    # paired bootstrap of RA-CAM against each baseline, from per-image counts of the stage files
    boot = {(r["a"], r["b"]): r for r in data["bootstrap"]["rows"]}
    n_defective = sum(json.loads((out / "fold0/classifier/result.json").read_text())[
        "test_labels"])
    for m in ("gradcam", "scorecam", "ablationcam", "fullgrad"):
        iv = boot[("racam", m)]["interval"]
        assert iv["images"] == n_defective and iv["low"] <= iv["high"]
    stage = json.loads((out / f"fold0/cam/test/racam-d{data['chosen_delta']:g}.json").read_text())
    per = stage["paper_per_image"]
    assert len(per) == n_defective
    assert [sum(c[j] for c in per.values()) for j in range(3)] == [
        stage["paper"][k] for k in ("tp", "fp", "fn")]
    # both Eq. 7 readings and both FGBP head scopes of RA-CAM
    assert {r["variant"] for r in data["racam_variants"]} == {
        "weighting=element,fgbp_head=sample", "weighting=channel,fgbp_head=sample",
        "weighting=element,fgbp_head=unit"}
    assert (out / f"fold0/cam/test/racam-wchannel-d{data['chosen_delta']:g}.json").is_file()
    for fig in data["figures"].values():
        assert Path(fig).parent == out / "figures", fig
        Image.open(fig).verify()
