"""`racam run` on a user's folder dataset without masks: pseudo-labels and a segmentation
network are produced, and scores that need true masks are left out instead of failing."""

from __future__ import annotations

import json

import numpy as np
from helpers import tiny_folder_run
from PIL import Image
from typer.testing import CliRunner

from racam.cli import app


def _folder(root, n: int = 12) -> None:
    rng = np.random.default_rng(0)
    for cls in ("good", "defect"):
        (root / cls).mkdir(parents=True)
        for i in range(n):
            img = rng.normal(128, 20, (64, 64))
            if cls == "defect":
                r = rng.integers(10, 54)
                img[r:r + 3, 8:56] = 20  # a dark scratch
            Image.fromarray(img.clip(0, 255).astype(np.uint8)).save(root / cls / f"{cls}{i}.png")


def test_folder_dataset_without_masks_runs_end_to_end(tmp_path) -> None:
    _folder(tmp_path / "imgs")
    out = tmp_path / "run"
    res = CliRunner().invoke(app, tiny_folder_run(tmp_path / 'imgs', out, 2),
                           catch_exceptions=False)
    assert res.exit_code == 0, res.output
    results = json.loads((out / "results.json").read_text())
    assert results["cam_paper"] is None and results["segmentation"] is None
    manifest = json.loads((out / "fold0/pseudo/racam-d50-otsu2/manifest.json").read_text())
    n_train = manifest["num_images"]
    assert manifest["num_defective"] == sum(e["label"] for e in manifest["images"]) > 0
    assert len(list((out / "fold0/pseudo/racam-d50-otsu2/masks").glob("*.png"))) == n_train
    assert (out / "fold0/segmentation/unet-racam-d50-otsu2-tmall-restignore/last.pt").is_file()
    assert (out / "run-report.md").is_file() and (out / "overlays.png").is_file()
    # the label-free check of the pseudo-labels: every defective training image, p in [0, 1]
    check = results["pseudo_deletion"]["0"]
    assert check["images"] == manifest["num_defective"]
    assert 0 < check["area"] < 1
    assert all(0 <= check[k] <= 1 for k in ("p_image", "p_deleted", "p_random_box"))
    report = (out / "run-report.md").read_text()
    assert "## Pseudo-labels checked without masks" in report
    assert "None: the dataset has no true masks" in report  # not an empty table
