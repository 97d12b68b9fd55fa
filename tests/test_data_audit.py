"""``racam data info`` and ``racam run`` on a folder dataset with the problems factories have."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers import tiny_folder_run
from PIL import Image
from typer.testing import CliRunner

from racam.cli import app
from racam.data import FolderDataset
from racam.errors import DataError

W, H = 64, 64


def problem_folder(root: Path) -> dict[Path, str]:
    """A folder with one file of each problem; returns {problem file: its problem tag}."""
    rng = np.random.default_rng(0)
    for cls in ("good", "defect", "masks"):
        (root / cls).mkdir(parents=True)
    for cls in ("good", "defect"):
        for i in range(8):
            img = rng.normal(128, 20, (H, W))
            mask = np.zeros((H, W), np.uint8)
            if cls == "defect":
                r = int(rng.integers(10, 50))
                img[r:r + 4, 8:56] = 20  # a dark scratch
                mask[r:r + 4, 8:56] = 255
                Image.fromarray(mask).save(root / "masks" / f"{cls}{i}.png")
            Image.fromarray(img.clip(0, 255).astype(np.uint8)).save(root / cls / f"{cls}{i}.png")
    m = root / "masks"
    Image.new("L", (W, H), 0).save(m / "defect0.png")                        # empty mask
    (m / "defect1.png").unlink()                                              # missing mask
    (root / "defect" / "defect2.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 30)  # corrupt
    nonbinary = np.zeros((H, W), np.uint8)
    nonbinary[5:9, 5:50] = [[60], [120], [180], [255]]
    Image.fromarray(nonbinary).save(m / "defect3.png")                        # not binary
    Image.new("L", (W + 8, H), 255).save(m / "defect4.png")                   # wrong size
    Image.new("L", (W, H), 255).save(m / "orphan.png")                        # no image
    (root / "good" / "good7.png").write_bytes((root / "good" / "good6.png").read_bytes())  # dup
    return {root / "defect/defect0.png": "defect0.png", m / "defect0.png": "empty mask",
            root / "defect/defect1.png": "missing mask",
            root / "defect/defect2.png": "unreadable image", m / "defect3.png": "mask not binary",
            m / "defect4.png": "mask size", m / "orphan.png": "mask without image",
            root / "good/good7.png": "duplicate image"}


def test_data_info_names_every_problem_file_and_exits_0(tmp_path) -> None:
    expected = problem_folder(tmp_path / "parts")
    expected.pop(tmp_path / "parts/defect/defect0.png")  # named through its mask
    res = CliRunner().invoke(app, ["data", "info", str(tmp_path / "parts"), "--dataset",
                                   "folder"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    warnings = [ln for ln in res.output.splitlines() if ln.startswith("warning: ")]
    for path, tag in expected.items():
        assert any(f"{path}: {tag}" in w for w in warnings), (path, tag, warnings)
    assert len(warnings) == len(expected)
    flat = " ".join(res.output.split())  # the console wraps long lines
    summary = flat[flat.index(f"{len(warnings)} problem(s): "):].split(" problem(s): ")[1]
    kinds = [tag for tag in expected.values() if not tag.endswith(".png")]
    assert all(f"1 {tag}" in summary.split(";")[0] for tag in kinds)
    assert summary.split(";")[0].count(", ") == len(kinds) - 1
    assert "readable images: good 8, defect 7" in res.output
    assert "64x64 (15)" in res.output


def test_strict_makes_each_problem_an_error(tmp_path) -> None:
    problem_folder(tmp_path / "parts")
    with pytest.raises(DataError, match="and 6 more"):
        FolderDataset(tmp_path / "parts", strict=True)


def test_run_warns_trains_on_readable_images_and_reports_left_out(tmp_path) -> None:
    expected = problem_folder(tmp_path / "parts")
    out = tmp_path / "run"
    res = CliRunner().invoke(app, tiny_folder_run(tmp_path / 'parts', out, 1),
                           catch_exceptions=False)
    assert res.exit_code == 0, res.output
    for path in expected:
        if path.name != "defect0.png" or path.parent.name == "masks":
            assert f"warning: {path}" in res.output
    results = json.loads((out / "results.json").read_text())
    left_out = {str(tmp_path / "parts/defect" / f"defect{i}.png") for i in (0, 1, 4)}
    assert set(results["data"]["left_out_of_pixel_metrics"]) == left_out
    report = (out / "run-report.md").read_text()
    assert all(p in report for p in left_out)
    clf = json.loads((out / "fold0/classifier/result.json").read_text())
    all_ids = clf["test_ids"]
    assert "defect/defect2" not in all_ids  # the corrupt image is left out
    strict = CliRunner().invoke(app, ["run", "folder-example", "--quiet", "--out",
                                      str(tmp_path / "strict"), "--set",
                                      f"data.root={tmp_path / 'parts'}", "--set",
                                      "data.strict=true"])
    assert strict.exit_code != 0 and isinstance(strict.exception, DataError)
