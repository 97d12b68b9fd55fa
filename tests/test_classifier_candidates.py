"""``classifier.candidates`` in the pipeline, on the bundled KolektorSDD sample at a tiny size:
every candidate is trained and scored by the share of the defective training images its
pseudo-labels mark, the lowest is kept, and that score equals the share the pseudo-label stage
then writes to disk (read back here from the PNGs)."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import TINY_CFG
from PIL import Image

from racam.config import load_config
from racam.engine import Engine, classifier_summary
from racam.io import read_json


def test_the_candidate_with_the_smallest_pseudo_label_area_is_kept(tmp_path) -> None:
    cfg = load_config(TINY_CFG, {"output": str(tmp_path), "device": "cpu", "data.size": [64, 160],
                               "classifier.epochs": 2, "classifier.samples_per_epoch": 16,
                               "classifier.candidates": 2, "classifier.min_val_auroc": 0.0,
                               "cam.guided_radius": 4, "cam.pseudo_threshold": "otsu2"})
    said: list[str] = []
    engine = Engine(cfg, progress=False, log=said.append)
    res = engine.train_classifier()[0]
    attempts = res.attempts
    assert attempts is not None
    assert [a["seed"] for a in attempts] == [0, 1000]
    areas = [a["pseudo_area"] for a in attempts]
    assert all(0 < a < 1 for a in areas) and areas[0] != areas[1]
    kept = int(np.argmin(areas))
    assert [a["chosen"] for a in attempts] == [i == kept for i in range(2)]
    assert res.checkpoint == attempts[kept]["checkpoint"]
    assert sum("pseudo-labels mark" in s for s in said) == 2
    # the kept score is the mean share of the masks the pseudo-label stage writes
    engine.pseudo_labels([0])
    manifest = read_json(engine.pseudo_dir(0) / "manifest.json")
    shares = [(np.asarray(Image.open(engine.pseudo_dir(0) / it["mask"])) > 0).mean()
              for it in manifest["images"] if it["label"] == 1]
    assert areas[kept] == pytest.approx(float(np.mean(shares)), rel=1e-12)
    assert manifest["checkpoint"] == attempts[kept]["checkpoint"]
    summary = classifier_summary(res)
    assert "restarted" not in summary
    assert summary["candidates"] == [{"seed": a["seed"], "pseudo_area": a["pseudo_area"],
                                      "chosen": a["chosen"]} for a in attempts]
