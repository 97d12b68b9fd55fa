"""`racam data info`: counts per split or fold, for KolektorSDD (real data) and a folder tree."""

from __future__ import annotations

import re

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from racam.cli import app
from racam.errors import ConfigError, DataError

runner = CliRunner()


def _rows(output: str) -> dict[str, tuple[int, int, int]]:
    """Table rows ``name -> (images, defective, defect-free)`` parsed from rich's output."""
    rows = {}
    for line in output.splitlines():
        m = re.match(r"^\W*([a-z][\w /]*?)\s*\W\s*(\d+)\s*\W\s*(\d+)\s*\W\s*(\d+)\s*\W*$", line)
        if m:
            rows[m.group(1)] = tuple(int(x) for x in m.groups()[1:])
    return rows


def test_help_lists_data_info() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0 and "data" in result.output
    result = runner.invoke(app, ["data", "--help"])
    assert result.exit_code == 0 and "info" in result.output


@pytest.mark.data
def test_info_on_real_kolektorsdd(ksdd_root) -> None:
    result = runner.invoke(app, ["data", "info", str(ksdd_root)])
    assert result.exit_code == 0, result.output
    rows = _rows(result.output)
    assert "split_33_0.pyb" in result.output
    assert rows["all"] == (399, 52, 347)
    tests = [rows[f"fold {k} / test"] for k in range(3)]
    assert sum(t[0] for t in tests) == 399 and sum(t[1] for t in tests) == 52
    for k in range(3):
        tr, te = rows[f"fold {k} / train"], rows[f"fold {k} / test"]
        assert tr[0] + te[0] == 399 and tr[1] + te[1] == 52
    only_all = runner.invoke(app, ["data", "info", str(ksdd_root), "--dataset", "ksdd",
                                   "--split-file", "none"])
    assert only_all.exit_code == 0 and list(_rows(only_all.output)) == ["all"]


def test_info_on_folder_tree(tmp_path) -> None:
    rng = np.random.default_rng(0)
    for cls, n in (("good", 7), ("defect", 4)):
        (tmp_path / cls).mkdir()
        for k in range(n):
            Image.fromarray(rng.integers(0, 255, (10, 8), dtype=np.uint8)).save(
                tmp_path / cls / f"{cls}{k}.png")
    result = runner.invoke(app, ["data", "info", str(tmp_path), "--seed", "3"])
    assert result.exit_code == 0, result.output
    assert "folder" in result.output
    rows = _rows(result.output)
    # round(0.3 * 7) = 2 good and round(0.3 * 4) = 1 defective image in test
    assert rows == {"all": (11, 4, 7), "train": (8, 3, 5), "test": (3, 1, 2)}


def test_info_errors_are_racam_errors(tmp_path) -> None:
    (tmp_path / "good").mkdir()
    (tmp_path / "defect").mkdir()
    Image.new("L", (4, 4)).save(tmp_path / "good" / "a.png")
    result = runner.invoke(app, ["data", "info", str(tmp_path), "--dataset", "folder"])
    assert isinstance(result.exception, DataError)
    assert str(tmp_path / "defect") in str(result.exception)
    result = runner.invoke(app, ["data", "info", str(tmp_path), "--dataset", "mnist"])
    assert isinstance(result.exception, ConfigError)
