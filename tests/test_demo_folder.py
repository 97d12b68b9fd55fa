"""Issue 29 item 5: ``racam demo`` reads the bundled KolektorSDD sample as a folder dataset
(``data.root: builtin:ksdd_sample_folder``, :mod:`racam.data.sample_view`), the path a user's
folder takes, plan included. Oracle: the KolektorSDD loader on the sample itself with the
sample's split file."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

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


def test_demo_runs_folder_examples_recipe_with_shorter_schedules(cache) -> None:
    """Issue 29 item 5: ``racam demo`` is the run a user's folder gets, ``racam run
    folder-example --set data.root=ROOT``, on the sample: the same plan and every recipe key
    the same (oracle: folder-example's own config on the sample root), apart from its name and
    output, two shorter schedules, masks that only score (the sample's masks would otherwise
    train: folder-example learns the masks a user has) and fewer deltas for ``racam reproduce
    demo``."""
    demo, planned = load_planned_config("demo")
    mine, _ = load_planned_config("folder-example", ["data.root=builtin:ksdd_sample_folder"])
    assert planned is not None and demo.data.dataset == "folder"
    assert (demo.classifier.epochs, mine.classifier.epochs) == (6, 15)
    assert (demo.segmentation.epochs, mine.segmentation.epochs) == (3, 8)
    assert (demo.segmentation.train_masks, mine.segmentation.train_masks) == ("none", "all")
    same = dataclasses.replace(
        demo, name=mine.name, output=mine.output, reproduce=mine.reproduce,
        classifier=dataclasses.replace(demo.classifier, epochs=mine.classifier.epochs),
        segmentation=dataclasses.replace(demo.segmentation, epochs=mine.segmentation.epochs,
                                         train_masks=mine.segmentation.train_masks,
                                         train_masks_rest=mine.segmentation.train_masks_rest))
    assert same == mine
    assert tuple(demo.data.size) == (256, 640) and demo.segmentation.gate == "classifier"
