"""Issue 29 item 5: ``racam demo`` reads the bundled KolektorSDD sample as a folder dataset
(``data.root: builtin:ksdd_sample_folder``, :mod:`racam.data.sample_view`), the path a user's
folder takes, plan included. Oracle: the KolektorSDD loader on the sample itself with the
sample's split file."""

from __future__ import annotations

import numpy as np
import pytest

from racam.config import load_config
from racam.data.folder import FolderDataset, FolderSpec
from racam.data.ksdd import KolektorSDD
from racam.data.registry import BUILTIN_ROOTS, resolve_root
from racam.engine import load_planned_config

SAMPLE = BUILTIN_ROOTS["builtin:ksdd_sample"]


@pytest.fixture()
def cache(monkeypatch, tmp_path):
    monkeypatch.setenv("RACAM_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _files(folder):
    return {p.relative_to(folder): p.stat().st_mtime_ns for p in folder.rglob("*")}


def test_the_folder_view_holds_the_samples_splits_image_for_image(cache) -> None:
    """Each split of the view: the KolektorSDD loader's images of that split of the sample,
    with the same pixels, labels and masks; the view is made once, in the cache, and the
    package's sample is only read."""
    package = _files(SAMPLE)
    root = resolve_root("folder", "builtin:ksdd_sample_folder")
    assert root.parent == cache and FolderSpec().detect(root)
    made = _files(root)
    for split in ("train", "test"):
        view = FolderDataset(root, split, size=None, channels=1)
        ksdd = KolektorSDD(SAMPLE, split_file=SAMPLE / "splits/demo_split.pyb", fold=0,
                           split=split, size=None, channels=1)
        want = {r.id.replace("/", "_"): i for i, r in enumerate(ksdd.records)}
        assert sorted(r.group for r in view.records) == sorted(want)
        for i, r in enumerate(view.records):
            j = want[r.group]
            assert view.labels[i] == ksdd.labels[j]
            assert r.id.split("/")[0] == ("defect" if ksdd.labels[j] else "good")
            assert np.array_equal(view[i].image.numpy(), ksdd[j].image.numpy())
            assert np.array_equal(view.true_mask(i) > 0, ksdd.true_mask(j) > 0)
    assert len(FolderDataset(root, "train").records) == 72
    assert resolve_root("folder", "builtin:ksdd_sample_folder") == root
    assert _files(root) == made and _files(SAMPLE) == package


def test_demo_is_a_planned_folder_run_whose_own_keys_win(cache) -> None:
    """The demo config goes through the plan (a folder run with data.plan: auto); its short
    schedules and small networks are its own keys, so the plan changes none of them."""
    cfg, planned = load_planned_config("demo")
    assert planned is not None and cfg.data.dataset == "folder"
    c, s = cfg.classifier, cfg.segmentation
    assert (c.backbone, c.weights, c.epochs, c.samples_per_epoch) == ("vgg16_narrow", None, 30, 64)
    assert (s.arch, s.encoder, s.encoder_weights, s.crop) == ("deeplabv3", "resnet18", None, None)
    assert (s.optimizer, s.schedule, s.epochs, s.samples_per_epoch) == ("sgd", "constant", 16, 48)
    assert tuple(cfg.data.size) == (128, 320) and s.gate == "none"
    taken = {setting.key for setting, took in planned.choices() if took}
    assert taken == {"segmentation.weight_decay", "segmentation.defect_crop_fraction"}
    assert cfg == load_config("demo")  # ... at their defaults: the plan changes no value
