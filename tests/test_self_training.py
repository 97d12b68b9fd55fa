"""Self-training (``segmentation.self_training``) on the bundled KolektorSDD sample: round 1 is
trained on round 0's masks of the training images, which are checked against an independent
recomputation (the network's softmax, bilinear resize to the original size, ``> 0.5``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import TINY_CFG

from racam.config import load_config
from racam.data import read_mask
from racam.deploy.run_dir import open_run
from racam.engine import Engine, RunResults
from racam.layout import segmentation_tag
from racam.pseudo.labels import mask_filename
from racam.segmentation import load_segmentation


@pytest.fixture(scope="module")
def self_trained(tmp_path_factory) -> tuple[Engine, RunResults]:
    out = tmp_path_factory.mktemp("self-training")
    cfg = load_config(TINY_CFG, {"output": str(out), "device": "cpu", "data.size": [64, 160],
                               "classifier.epochs": 2, "classifier.samples_per_epoch": 16,
                               "segmentation.arch": "unet", "segmentation.output_stride": None,
                               "segmentation.epochs": 1, "segmentation.samples_per_epoch": 8,
                               "segmentation.self_training": 1})
    pipe = Engine(cfg, progress=False, log=lambda _: None)
    return pipe, pipe.run()


def test_round_one_is_the_runs_network(self_trained) -> None:
    pipe, _ = self_trained
    seg = pipe.fold_dir(0) / "segmentation"
    tag0 = segmentation_tag(pipe.cfg, round=0)
    assert segmentation_tag(pipe.cfg) == tag0 + "-st1"
    assert (seg / tag0 / "last.pt").is_file() and (seg / (tag0 + "-st1") / "last.pt").is_file()
    r1 = pipe.segmentation(0)
    assert r1.round == 1 and r1.checkpoint.endswith(f"{tag0}-st1/last.pt")
    assert pipe.segmentation(0, round=0).round == 0
    assert open_run(pipe.out).segmentation_path == seg / (tag0 + "-st1") / "last.pt"


def test_round_one_labels_are_round_zeros_masks(self_trained) -> None:
    pipe, _ = self_trained
    labels = pipe.seg.self_training_labels(0, pipe.cfg.segmentation.arch, 1)
    model, _ = load_segmentation(pipe.segmentation(0, round=0).checkpoint)
    model.eval()
    ds = pipe.data(0).train_all
    n_defective = 0
    for i, (rec, label) in enumerate(zip(ds.records, ds.labels)):
        got = read_mask(labels / "masks" / mask_filename(rec.id))
        if label == 0:
            assert not got.any(), f"{rec.id}: a defect-free training image keeps an empty mask"
            continue
        n_defective += 1
        s = ds[i]
        with torch.no_grad():
            p = torch.softmax(model(s.image[None]), dim=1)[:, 1:]
        w, h = s.original_size
        want = (F.interpolate(p, size=(h, w), mode="bilinear", align_corners=False)[0, 0]
                > 0.5).numpy()
        assert got.shape == want.shape
        assert np.mean(got == want) > 0.999, rec.id  # float reassociation at the 0.5 edge
    assert n_defective > 0


def test_rerun_reuses_every_round(self_trained) -> None:
    pipe, _ = self_trained
    seg = pipe.fold_dir(0) / "segmentation"
    stamps = {p: p.stat().st_mtime_ns for p in seg.glob("*/last.pt")}
    again = Engine(pipe.cfg, progress=False, log=lambda _: None)
    again.run()
    assert {p: p.stat().st_mtime_ns for p in seg.glob("*/last.pt")} == stamps
    assert len(stamps) == 2


def test_stage_key_of_round_zero_does_not_depend_on_self_training(self_trained) -> None:
    """A run folder trained without self-training is reused as round 0 of a run with it."""
    import dataclasses

    pipe, _ = self_trained
    cfg0 = dataclasses.replace(pipe.cfg, segmentation=dataclasses.replace(
        pipe.cfg.segmentation, self_training=0))
    plain = Engine(cfg0, progress=False, log=lambda _: None)
    arch = pipe.cfg.segmentation.arch
    assert plain.seg.path_key(0, arch) == pipe.seg.path_key(0, arch, "pseudo", 0)
    assert plain.segmentation(0).checkpoint == pipe.segmentation(0, round=0).checkpoint
    assert Path(plain.segmentation(0).checkpoint).parent.name == segmentation_tag(cfg0)


def test_the_report_names_the_self_training_round(self_trained) -> None:
    """The masks table's segmentation row says the network is round 1, not round 0."""
    pipe, _ = self_trained
    rows = [line for line in (pipe.out / "run-report.md").read_text().splitlines()
            if line.startswith(f"| {pipe.cfg.segmentation.arch} on pseudo-labels")]
    assert rows and all("then 1 round of self-training on its own masks" in r for r in rows)
