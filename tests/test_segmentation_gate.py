"""``segmentation.gate: classifier`` (issue 29 item 3): a segmentation mask is emptied where the
run's classifier calls the image good, in the evaluation (gated counts beside the ungated ones,
from the same network) and in ``racam predict`` from a run folder (torch) or an export bundle
(onnxruntime).

Run: the session's tiny run (``trained_run``, real images of the bundled KolektorSDD sample);
its segmentation network is barely trained and marks nothing, so the mask tests use a copy whose
network marks every pixel (its last layer set to a constant defect logit: the failure of issue
29, defects marked on good images, at its extreme).
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import TINY_CFG, racam
from PIL import Image

from racam.config import load_config
from racam.data.io import image_to_tensor
from racam.data.registry import BUILTIN_ROOTS
from racam.deploy.bundle import read_bundle
from racam.deploy.export import export_run
from racam.deploy.inference import Inferencer
from racam.deploy.predict import PredictOptions, predict_folder
from racam.engine import Engine
from racam.stages.evaluate import FoldResults, summarize_run
from racam.stages.segmentation import SegmentationStageResult

SAMPLE = BUILTIN_ROOTS["builtin:ksdd_sample"]
#: the settings of the session's ``trained_run`` (tests/conftest.py)
TINY = {"device": "cpu", "data.size": [64, 160], "classifier.epochs": 2,
        "classifier.samples_per_epoch": 16, "segmentation.epochs": 1,
        "segmentation.samples_per_epoch": 8}


def marks_everything(src: Path, dest: Path) -> Path:
    """A copy of the segmentation checkpoint ``src`` whose network marks every pixel."""
    state = torch.load(src, map_location="cpu", weights_only=True)
    state["model"]["segmentation_head.0.weight"].zero_()
    state["model"]["segmentation_head.0.bias"].copy_(torch.tensor([-20.0, 20.0]))
    dest.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, dest)
    return dest


def run_copy(trained_run: Path, dest: Path, gate: str) -> Path:
    """The parts of ``trained_run`` predict reads, its network marking everything, with
    ``segmentation.gate: gate`` in its config."""
    seg = next((trained_run / "fold0/segmentation").glob("*/last.pt"))
    marks_everything(seg, dest / seg.relative_to(trained_run))
    shutil.copytree(trained_run / "fold0/classifier", dest / "fold0/classifier")
    cfg = json.loads((trained_run / "config.json").read_text())
    cfg["segmentation"]["gate"] = gate
    (dest / "config.json").write_text(json.dumps(cfg))
    return dest


def images(dest: Path, n: int = 6) -> Path:
    dest.mkdir(parents=True)
    for k, f in enumerate(sorted(SAMPLE.glob("kos*/Part*.jpg"))[::7][:n]):
        Image.open(f).save(dest / f"i{k}.png")
    return dest


def predicted(out: Path) -> dict[str, tuple[str, np.ndarray]]:
    """``{file: (decision, mask)}`` of a predict output folder."""
    with (out / "predictions.csv").open() as f:
        rows = list(csv.DictReader(f))
    return {r["file"]: (r["decision"], np.asarray(Image.open(out / "masks" / r["file"])) > 0)
            for r in rows}


def split_threshold(out: Path) -> float:
    """A decision threshold between the middle two defect probabilities of a predict output."""
    with (out / "predictions.csv").open() as f:
        probs = sorted(float(r["probability"]) for r in csv.DictReader(f))
    mid = len(probs) // 2
    assert probs[mid - 1] < probs[mid], "the classifier gives these images one probability"
    return (probs[mid - 1] + probs[mid]) / 2


def assert_gated(gated: dict[str, tuple[str, np.ndarray]],
                 ungated: dict[str, tuple[str, np.ndarray]]) -> None:
    """Gated masks: empty where the decision is good, the ungated mask where it is defect;
    both happen, and each ungated mask marks pixels (the gate empties something)."""
    assert gated.keys() == ungated.keys()
    assert {d for d, _ in gated.values()} == {"good", "defect"}
    for name, (decision, mask) in gated.items():
        assert ungated[name][1].all()
        want = ungated[name][1] if decision == "defect" else np.zeros_like(mask)
        assert np.array_equal(mask, want), name


# ------------------------------------------------------------------------- evaluation
def test_gated_counts_are_the_counts_of_the_gated_masks(trained_run, tmp_path) -> None:
    """Counts of the network on the real test images, gated at a threshold between the
    classifier's test probabilities, against counting the gated masks with numpy: a good image
    called good has no false positive left, a defective image called defective keeps its true
    positives, and the ungated view is the network's own counts."""
    cfg = load_config(TINY_CFG, {**TINY, "output": str(trained_run),
                               "segmentation.gate": "classifier"})
    eng = Engine(cfg, progress=False, log=lambda _: None)
    clf, test = eng.classifier(0), eng.data(0).test
    seg_dir = eng.seg.path_key(0, cfg.segmentation.arch)[0]
    network = marks_everything(seg_dir / "last.pt", tmp_path / "all.pt")
    counts, per_image = eng.seg.score(0, network, cfg.segmentation)
    probs = sorted(clf.test_probs)
    threshold = (probs[len(probs) // 2 - 1] + probs[len(probs) // 2]) / 2
    seg = SegmentationStageResult(arch="deeplabv3", checkpoint=str(network), counts=counts,
                                  per_image=per_image)
    results = summarize_run({0: FoldResults(clf, None, eng.pseudo.run(0), seg)}, threshold)

    want = {"ungated": np.zeros(4, int), "gated": np.zeros(4, int)}
    cases = set()
    prob_of = dict(zip(clf.test_ids, clf.test_probs))
    for i, record in enumerate(test.records):
        true = test.true_mask(i).astype(bool)
        pred = np.ones_like(true)  # the network marks every pixel
        assert per_image[record.id][0] + per_image[record.id][1] == true.size
        defect = prob_of[record.id] >= threshold
        for view, mask in (("ungated", pred), ("gated", pred if defect else ~pred)):
            want[view] += [(mask & true).sum(), (mask & ~true).sum(), (~mask & true).sum(),
                           (~mask & ~true).sum()]
        cases.add((bool(true.any()), defect))
    assert {(False, False), (True, True)} <= cases  # a good image gated, a defective one kept
    keys = ("tp", "fp", "fn", "tn")
    assert [results.segmentation[k] for k in keys] == want["ungated"].tolist() == \
        [counts[k] for k in keys]
    gated = results.segmentation_gated
    assert gated is not None and [gated[k] for k in keys] == want["gated"].tolist()
    assert gated["emptied_images"] == sum(p < threshold for p in clf.test_probs)
    assert 0 < gated["fp"] < results.segmentation["fp"] and gated["tp"] > 0
    assert results.intervals["segmentation_gated"] is not None
    assert summarize_run({0: FoldResults(clf, None, eng.pseudo.run(0), seg)}).view(
        "segmentation_gated") is None  # no threshold: no gate


def test_a_gated_run_reuses_its_network_and_reports_both(trained_run, tmp_path) -> None:
    """``racam run`` with the gate on the session's finished run: nothing is computed again
    (the gate is not in the network's key), results.json, the printed summary and the report
    carry the ungated figures unchanged and the gated ones, labelled."""
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    before = json.loads((run / "results.json").read_text())
    assert "segmentation_gated" not in before  # an ungated run writes no gated view
    stored = {p: p.stat().st_mtime_ns for p in (run / "fold0").rglob("*") if p.is_file()}
    sets = [a for k, v in TINY.items() for a in ("--set", f"{k}={json.dumps(v)}")]
    code, out, err = racam("run", TINY_CFG, "--out", run, "--quiet", *sets,
                           "--set", "segmentation.gate=classifier")
    assert code == 0, err
    after = json.loads((run / "results.json").read_text())
    assert {p: p.stat().st_mtime_ns for p in (run / "fold0").rglob("*")
            if p.is_file()} == stored  # no stage computed or written again
    assert after["segmentation"] == before["segmentation"]
    clf = json.loads((run / "fold0/classifier/result.json").read_text())
    seg = json.loads(next((run / "fold0/segmentation").glob("*/result.json")).read_text())
    want = np.zeros(4, int)
    prob_of = dict(zip(clf["test_ids"], clf["test_probs"]))
    for image, (tp, fp, fn, tn) in seg["per_image"].items():
        p = prob_of[image]
        want += [tp, fp, fn, tn] if p >= 0.5 else [0, 0, tp + fn, fp + tn]
    g = after["segmentation_gated"]
    assert [g[k] for k in ("tp", "fp", "fn", "tn")] == want.tolist()
    assert g["emptied_images"] == sum(p < 0.5 for p in clf["test_probs"])
    lines = out.splitlines()
    assert any(line.startswith("segmentation, gated by the classifier IoU") for line in lines)
    assert any(line.startswith("segmentation    IoU") for line in lines)
    report = (run / "run-report.md").read_text()
    assert "on pseudo-labels, all test images |" in report
    assert "on pseudo-labels, gated by the classifier (empty mask where p(defect) < 0.5)" in report


def test_the_gate_is_not_in_the_network_key_and_defaults_stay_ungated(trained_run) -> None:
    """The network's folder and key are the same with and without the gate; the paper and demo
    configs leave it off, the folder example turns it on."""
    keys = [Engine(load_config(TINY_CFG, {**TINY, "output": str(trained_run),
                                        "segmentation.gate": g}), progress=False,
                   log=lambda _: None).seg.path_key(0, "deeplabv3")
            for g in ("none", "classifier")]
    assert keys[0][0] == keys[1][0]
    assert json.dumps(keys[0][1], sort_keys=True, default=str) == json.dumps(
        keys[1][1], sort_keys=True, default=str)
    assert "gate" not in keys[0][1]["segmentation"]
    for name in ("demo", "ksdd-cpu", "ksdd-paper", "ksdd-paper-offline", "ksdd2-paper"):
        assert load_config(name).segmentation.gate == "none"
    assert load_config("folder-example").segmentation.gate == "classifier"


# ---------------------------------------------------------------------------- predict
@pytest.fixture(scope="module")
def runs(trained_run, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("gate-runs")
    return {g: run_copy(trained_run, root / g, g) for g in ("none", "classifier")}


def test_predict_gates_the_run_folders_masks(runs, tmp_path) -> None:
    """torch: with the gate, an image the classifier calls good gets an empty mask, one it
    calls defective keeps the network's mask; without it every mask is the network's."""
    imgs = images(tmp_path / "imgs")
    opts = dict(images=imgs, device="cpu", progress=False)
    predict_folder(runs["none"], PredictOptions(out=tmp_path / "probe", **opts))
    threshold = split_threshold(tmp_path / "probe")
    out = {g: tmp_path / g for g in runs}
    for g, run in runs.items():
        predict_folder(run, PredictOptions(out=out[g], threshold=threshold, **opts))
    ungated = predicted(out["none"])
    assert all(m.all() for _, m in ungated.values())  # no gate: the decision changes nothing
    assert_gated(predicted(out["classifier"]), ungated)


def test_bundle_records_the_gate_and_onnx_masks_follow_it(runs, tmp_path) -> None:
    """``racam export`` of a gated run: bundle.json says ``gated: true`` and onnxruntime masks
    are gated; a bundle.json without the field (an older racam's) reads as ungated."""
    bundle = tmp_path / "bundle"
    export_run(runs["classifier"], bundle)
    assert read_bundle(bundle).mask.gated is True
    assert json.loads((bundle / "bundle.json").read_text())["mask"]["gated"] is True
    old = tmp_path / "old"
    shutil.copytree(bundle, old)
    meta = json.loads((old / "bundle.json").read_text())
    del meta["mask"]["gated"]
    (old / "bundle.json").write_text(json.dumps(meta))
    assert read_bundle(old).mask.gated is False
    imgs = images(tmp_path / "imgs")
    opts = dict(images=imgs, device="cpu", progress=False)
    predict_folder(old, PredictOptions(out=tmp_path / "probe", **opts))
    threshold = split_threshold(tmp_path / "probe")
    for name in ("bundle", "old"):
        predict_folder(tmp_path / name, PredictOptions(out=tmp_path / f"o-{name}",
                                                       threshold=threshold, **opts))
    ungated = predicted(tmp_path / "o-old")
    assert all(m.all() for _, m in ungated.values())
    assert_gated(predicted(tmp_path / "o-bundle"), ungated)
    for g, run in runs.items():  # a run folder's own rule (torch), as its bundle's
        assert Inferencer.open(run, device="cpu").meta.mask.gated is (g == "classifier")


def test_large_images_are_gated_before_tiling(runs) -> None:
    """An image far larger than the input (segmented in tiles): empty below the decision
    threshold, the network's mask at or above it."""
    files = sorted(SAMPLE.glob("kos*/Part*.jpg"))[:12]
    tiles = [Image.open(f).convert("L") for f in files]
    w, h = tiles[0].size
    big = Image.new("L", (w * 4, h * 3))
    for k, im in enumerate(tiles):
        big.paste(im.resize((w, h)), ((k % 4) * w, (k // 4) * h))
    gated, plain = (Inferencer.open(runs[g], device="cpu") for g in ("classifier", "none"))
    tiling = gated.tiling(big.size)
    assert tiling is not None
    x = image_to_tensor(big, gated.meta.size, 1)
    prob, mask = plain.predict_large(big, x, tiling)
    assert mask.all()
    p_low, low = gated.predict_large(big, x, tiling, threshold=prob)  # prob >= threshold
    p_high, high = gated.predict_large(big, x, tiling, threshold=min(1.0, prob + 1e-3))
    assert p_low == p_high == prob
    assert np.array_equal(low, mask) and not high.any() and high.shape == mask.shape
