"""Issue 24: a YAML key given twice is an error naming it; written files follow the umask."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_image_reading import CAM, one_error_line, racam

from racam.io import atomic_write_text, file_mode

SRC = Path(__file__).resolve().parents[1] / "src"


def test_duplicate_config_block_is_an_error_naming_the_key(tmp_path: Path) -> None:
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("seed: 0\nclassifier:\n  epochs: 1\ndata:\n  dataset: folder\n"
                   "classifier:\n  lr: 0.001\n")
    out = tmp_path / "out"
    code, _, err = racam("run", cfg, "--out", out)
    line = one_error_line(err)
    assert code == 2
    assert line == (f"error: config {cfg}: key 'classifier' appears twice in one mapping "
                    "(lines 2 and 6); the first would be dropped, so merge them into one")
    assert not out.exists()


def test_duplicate_nested_key_and_merge_keys(tmp_path: Path) -> None:
    from racam.config import load_config

    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("classifier:\n  epochs: 1\n  epochs: 2\n")
    code, _, err = racam("run", cfg, "--out", tmp_path / "o")
    assert code == 2 and "key 'epochs' appears twice in one mapping (lines 2 and 3)" in err
    # a YAML merge key overridden by the mapping's own key is not a duplicate
    from racam.yaml_load import load_yaml

    assert load_yaml("a: &b {x: 1, y: 2}\nc:\n  <<: *b\n  x: 3\n") == {
        "a": {"x": 1, "y": 2}, "c": {"x": 3, "y": 2}}
    cfg.write_text("classifier:\n  epochs: 3\n")
    assert load_config(cfg).classifier.epochs == 3


def test_split_file_with_a_duplicate_key_is_refused(tmp_path: Path) -> None:
    from test_mask_reading import clean_folder

    root = tmp_path / "ds"
    clean_folder(root, n=3)
    (root / "split.yaml").write_text("train: [good0, defect0]\ntest: [good1]\ntrain: [good2]\n")
    code, _, err = racam("data", "info", root, "--dataset", "folder")
    line = one_error_line(err)
    assert code == 2 and f"{root / 'split.yaml'}: cannot read split file" in line
    assert "key 'train' appears twice" in line


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_atomic_writes_follow_the_umask(tmp_path: Path, umask: int) -> None:
    old = os.umask(umask)
    try:
        assert file_mode() == 0o666 & ~umask
        path = atomic_write_text(tmp_path / "sub" / "r.txt", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask
    assert stat.S_IMODE((tmp_path / "sub").stat().st_mode) == 0o777 & ~umask


def test_racam_cam_outputs_readable_by_a_colleague(tmp_path: Path) -> None:
    images = tmp_path / "imgs"
    images.mkdir()
    for i in range(2):
        Image.fromarray(np.full((40, 40), 50 * i, np.uint8)).save(images / f"i{i}.png")
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"}
    res = subprocess.run([sys.executable, "-m", "racam", "cam", "--images", str(images),
                          "--out", str(out), *CAM], env=env, capture_output=True, text=True,
                         preexec_fn=lambda: os.umask(0o022), timeout=300)
    assert res.returncode == 0, res.stderr
    written = [out / "manifest.json", *sorted((out / "overlays").iterdir()),
               *sorted((out / "maps").iterdir())]
    assert len(written) == 5
    assert {oct(stat.S_IMODE(p.stat().st_mode)) for p in written} == {oct(0o644)}
