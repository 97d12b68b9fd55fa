"""`racam run` on a user's folder dataset without masks: pseudo-labels and a segmentation
network are produced, and scores that need true masks are left out instead of failing."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
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
    pseudo = out / "fold0/pseudo/racam-d50-sm1_1.5_2-otsu2"  # the plan's scales, averaged
    manifest = json.loads((pseudo / "manifest.json").read_text())
    n_train = manifest["num_images"]
    assert manifest["num_defective"] == sum(e["label"] for e in manifest["images"]) > 0
    assert len(list((pseudo / "masks").glob("*.png"))) == n_train
    assert (out / f"fold0/segmentation/unet-{pseudo.name}-tmall-restignore/last.pt").is_file()
    assert (out / "run-report.md").is_file() and (out / "overlays.png").is_file()
    # the label-free check of the pseudo-labels: every defective training image, p in [0, 1]
    check = results["pseudo_deletion"]["0"]
    assert check["images"] == manifest["num_defective"]
    assert 0 < check["area"] < 1
    assert all(0 <= check[k] <= 1 for k in ("p_image", "p_deleted", "p_random_box"))
    report = (out / "run-report.md").read_text()
    assert "## Pseudo-labels checked without masks" in report
    assert "None: the dataset has no true masks" in report  # not an empty table


@pytest.mark.parametrize("how", ["move", "copy"])
def test_a_moved_or_copied_run_folder_is_run_again_without_recomputing(tmp_path, how) -> None:
    """Stage results store absolute checkpoint paths; after the run folder moved or was copied,
    `racam run` finds every network in the new folder, computes no stage and renders the report
    there. A copy reads its own files even while the original folder still holds them."""
    _folder(tmp_path / "imgs")
    first, moved = tmp_path / "run", tmp_path / "elsewhere" / "run"
    args = tiny_folder_run(tmp_path / "imgs", first, 2)
    assert CliRunner().invoke(app, args, catch_exceptions=False).exit_code == 0
    stored = json.loads((first / "fold0/classifier/result.json").read_text())["checkpoint"]
    assert stored.startswith(str(first))  # the path as written, in the old folder
    moved.parent.mkdir()
    first.rename(moved) if how == "move" else shutil.copytree(first, moved)
    args[args.index(str(first))] = str(moved)
    res = CliRunner().invoke(app, args, catch_exceptions=False)
    assert res.exit_code == 0, res.output
    calls = json.loads((moved / "calls.json").read_text())["calls"]
    assert len(calls) == 1 and calls[0]["finished"]  # the second call computed nothing
    assert str(moved) in (moved / "run-report.md").read_text()
    said = CliRunner().invoke(app, ["train-classifier", *args[1:]], catch_exceptions=False)
    assert said.exit_code == 0, said.output
    assert f"checkpoint {moved / stored[len(str(first)) + 1:]}" in said.output
    assert first.exists() == (how == "copy") and str(first) not in said.output


def test_a_stored_path_is_read_in_the_run_folder_when_the_run_has_it(tmp_path) -> None:
    from racam.layout import in_run_folder

    out = tmp_path / "new"
    (out / "fold1" / "classifier").mkdir(parents=True)
    (out / "fold1" / "classifier" / "best.pt").write_bytes(b"x")
    gone = str(tmp_path / "old" / "fold1" / "classifier" / "best.pt")
    assert in_run_folder(gone, out) == str(out / "fold1" / "classifier" / "best.pt")
    outside = tmp_path / "mine.pt"  # a file outside any run layout (no fold<k> part)
    outside.write_bytes(b"y")
    assert in_run_folder(str(outside), out) == str(outside)
    kept = tmp_path / "old" / "fold1" / "classifier" / "best.pt"  # the original, still there
    kept.parent.mkdir(parents=True)
    kept.write_bytes(b"z")
    assert in_run_folder(str(kept), out) == str(out / "fold1" / "classifier" / "best.pt")
    missing = str(tmp_path / "old" / "fold2" / "classifier" / "best.pt")
    assert in_run_folder(missing, out) == missing  # not in the new folder either: named as is
    assert in_run_folder(str(tmp_path / "nofold.pt"), out) == str(tmp_path / "nofold.pt")
