"""``torchrun --standalone --nproc_per_node 2 -m racam run demo`` end to end on 2 CPU processes
(gloo), against single-process runs from the same classifier checkpoint.

The DDP run's classifier differs from a single-process one (flips, dropout and BatchNorm
statistics are drawn per rank), so the single-process oracle starts from a copy of the DDP run's
classifier stage: from there on heat maps, pseudo-labels and their scores must be identical.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import KSDD_SAMPLE, TINY_CFG
from PIL import Image
from typer.testing import CliRunner

from racam import distributed
from racam.classifier import load_classifier, predict_proba
from racam.cli import app
from racam.cli.options import load
from racam.stages.folds import fold_datasets

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
# a shorter demo: 8 classifier epochs, 1 segmentation epoch, the sample read as KolektorSDD;
# decision threshold 0, so every test image is called defective and the deployment view holds
# the heat maps of the good ones too (at 0.5 whether any is depends on the CPU's numerics: on
# an AVX2-only CPU the classifier called every test image good)
SETTINGS = ["--set", "device=cpu", "--set", "classifier.epochs=8", "--set",
            "segmentation.epochs=1", "--set", "classifier.threshold=0.0",
            *(a for k, v in KSDD_SAMPLE.items() for a in ("--set", f"{k}={v}"))]


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> tuple[Path, Path, str]:
    tmp = tmp_path_factory.mktemp("ddp")
    ddp, single = tmp / "ddp", tmp / "single"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), env.get("PYTHONPATH", "")])
    for var in distributed.TORCHRUN_VARS:
        env.pop(var, None)
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                           "--nproc_per_node", "2", "-m", "racam", "run", TINY_CFG, "--out",
                           str(ddp), "--quiet", *SETTINGS],
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    shutil.copytree(ddp / "fold0" / "classifier", single / "fold0" / "classifier")
    res = CliRunner().invoke(app, ["run", TINY_CFG, "--out", str(single), "--quiet", *SETTINGS],
                             catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return ddp, single, proc.stdout


def test_one_report_and_world_size(runs) -> None:
    ddp, single, stdout = runs
    assert stdout.count("report: ") == 1 and stdout.count("classifier test AUROC") == 1
    assert json.loads((ddp / "results.json").read_text())["world_size"] == 2
    assert json.loads((single / "results.json").read_text())["world_size"] == 1
    assert not list(ddp.rglob("*.tmp*"))  # no leftovers of atomic writes


def test_same_artefacts_as_a_single_process_run(runs) -> None:
    ddp, single, _ = runs
    files = _files(ddp)
    assert files == _files(single)
    for rel in ["results.json", "run-report.md", "run-report.html", "overlays.png",
                "config.json", "fold0/classifier/best.pt", "fold0/cam/test/racam-d50.json",
                "fold0/pseudo/racam-d50/manifest.json",
                "fold0/segmentation/deeplabv3-racam-d50/last.pt"]:
        assert rel in files, rel


def test_cam_metrics_equal_single_process_ones(runs) -> None:
    ddp, single, _ = runs
    a = json.loads((ddp / "fold0/cam/test/racam-d50.json").read_text())
    b = json.loads((single / "fold0/cam/test/racam-d50.json").read_text())
    assert a["paper"]["tp"] > 0 and len(a["paper_per_image"]) > 1
    # defect-free test images called defective: their heat maps count in the deployment view
    assert a["deployment"]["fp"] > a["paper"]["fp"]
    for view in ("paper", "deployment", "paper_per_image"):
        assert a[view] == b[view], view


def test_pseudo_labels_equal_single_process_ones(runs) -> None:
    ddp, single, _ = runs
    d, s = ddp / "fold0/pseudo/racam-d50", single / "fold0/pseudo/racam-d50"
    ma, mb = (json.loads((p / "manifest.json").read_text()) for p in (d, s))
    assert ma["images"] == mb["images"] and len(ma["images"]) == ma["num_images"]
    for entry in ma["images"]:
        pa = np.asarray(Image.open(d / entry["mask"]))
        assert np.array_equal(pa, np.asarray(Image.open(s / entry["mask"]))), entry["id"]
    qa, qb = (json.loads((p / "result.json").read_text()) for p in (d, s))
    assert qa["pseudo_vs_true_defective"] == qb["pseudo_vs_true_defective"]


def test_sharded_test_probabilities_equal_one_process_prediction(runs) -> None:
    ddp, _, _ = runs
    stage = json.loads((ddp / "fold0/classifier/result.json").read_text())
    cfg = load(TINY_CFG, SETTINGS[1::2], ddp)
    model, _ = load_classifier(stage["checkpoint"])
    test = fold_datasets(cfg.data, 0, cfg.seed).test
    probs = predict_proba(model, test, batch_size=cfg.cam.batch_size, device="cpu")
    assert stage["test_ids"] == [r.id for r in test.records]
    assert np.allclose(stage["test_probs"], probs.numpy(), rtol=0, atol=1e-6)
