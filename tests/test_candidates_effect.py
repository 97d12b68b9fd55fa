"""``scripts/candidates_effect.py`` on hand-made run folders: a fold whose kept candidate is
attempt 0 reads the base run's segmentation result, another attempt reads its own, and the
printed IoUs are the pooled IoUs of those counts (computed here by hand)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
KEY = "unet-racam-d70-g16e0.0001-otsu2"


def _write(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


def test_kept_candidate_decides_which_segmentation_result_is_read(tmp_path) -> None:
    base, cand = tmp_path / "base", tmp_path / "cand"
    # fold 0 keeps attempt 0 (base counts), fold 1 keeps attempt 1 (its own counts)
    base_counts = {0: {"a": [1, 1, 0, 9], "b": [2, 0, 2, 9]}, 1: {"c": [1, 3, 0, 9]}}
    cand_counts = {1: {"c": [3, 1, 0, 9]}}
    for k, kept in ((0, 0), (1, 1)):
        _write(base / f"fold{k}" / "segmentation" / KEY / "result.json",
               {"per_image": base_counts[k]})
        _write(cand / "seed0" / f"fold{k}" / "classifier" / "result.json", {"attempts": [
            {"attempt": 0, "seed": k, "pseudo_area": 0.01, "chosen": kept == 0},
            {"attempt": 1, "seed": 1000 + k, "pseudo_area": 0.02 - 0.015 * kept,
             "chosen": kept == 1}]})
    _write(cand / "seed0" / "fold1" / "segmentation" / KEY / "result.json",
           {"per_image": cand_counts[1]})
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "candidates_effect.py"),
                           "--base", str(base), "--cand", str(cand), "--seeds", "0",
                           "--folds", "0", "1"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "seed 0 fold 0: kept attempt 0" in out and "seed 0 fold 1: kept attempt 1" in out
    # fold 0: tp 3, fp 1, fn 2 -> 50.00 both; fold 1: with 3/(3+1) = 75, without 1/4 = 25
    assert re.search(r"fold 0: .*IoU with 50\.00  without 50\.00", out)
    assert re.search(r"fold 1: .*IoU with 75\.00  without 25\.00", out)
    # pooled: with (3+3)/(6+2+2) = 60, without (3+1)/(4+4+2) = 40
    assert re.search(r"with candidates: per seed 60\.00", out)
    assert re.search(r"without candidates: per seed 40\.00", out)
    assert "with minus without: +20.00" in out
