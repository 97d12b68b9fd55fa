"""KolektorSDD loader: real-data counts and folds, .bmp and .png masks, and bad input."""

from __future__ import annotations

import pickle
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from racam.data import KolektorSDD, Record, read_mask
from racam.errors import ConfigError, DataError

SPLIT = "split_33_0.pyb"


@pytest.fixture(scope="module")
def folds(ksdd_root):
    """Train and test datasets of the three folds of split_33_0 (labels read once)."""
    return {(k, part): KolektorSDD(ksdd_root, fold=k, split=part, split_file=SPLIT)
            for k in range(3) for part in ("train", "test")}


@pytest.mark.data
def test_all_items_399_images_52_defective(ksdd_root) -> None:
    ds = KolektorSDD(ksdd_root, split="all", split_file=None)
    assert len(ds) == 399 and sum(ds.labels) == 52
    ids = [r.id for r in ds.records]
    assert len(set(ids)) == 399
    assert "kos21/Part7" not in ids and "kos21/Part6" in ids
    assert len({r.group for r in ds.records}) == 50
    # the README's facts: kos38 Part0+1 and kos39 Part6+7 are defective, else one per item
    per_unit = Counter(r.group for r in ds.records if r.label == 1)
    assert per_unit["kos38"] == 2 and per_unit["kos39"] == 2
    assert sorted(set(per_unit.values())) == [1, 2] and len(per_unit) == 50
    assert all(isinstance(r, Record) and r.mask_path.suffix == ".png" for r in ds.records)


@pytest.mark.data
def test_folds_of_split_33_0(ksdd_root, folds) -> None:
    assert KolektorSDD.num_folds(ksdd_root, SPLIT) == 3
    test_units = [{r.group for r in folds[k, "test"].records} for k in range(3)]
    assert [len(u) for u in test_units] == [17, 17, 16]
    for k in range(3):
        train_units = {r.group for r in folds[k, "train"].records}
        assert not train_units & test_units[k]
        assert len(train_units | test_units[k]) == 50
    # every image tested exactly once over the three folds: 399 images, 52 defective
    tested = [r.id for k in range(3) for r in folds[k, "test"].records]
    assert len(tested) == 399 and len(set(tested)) == 399
    assert sum(sum(folds[k, "test"].labels) for k in range(3)) == 52
    # split="all" of a fold is its train + test items
    whole = KolektorSDD(ksdd_root, fold=1, split="all", split_file=SPLIT)
    assert sorted(r.id for r in whole.records) == sorted(
        r.id for p in ("train", "test") for r in folds[1, p].records)


@pytest.mark.data
def test_samples_are_resized_images_and_nearest_masks(ksdd_root) -> None:
    ds = KolektorSDD(ksdd_root, fold=1, split="test", size=(256, 704), split_file=SPLIT)
    i = next(i for i, r in enumerate(ds.records) if r.id == "kos01/Part5")
    s = ds[i]
    rec = ds.records[i]
    original = Image.open(rec.image_path)
    assert s.id == "kos01/Part5" and s.label == 1 and s.original_size == original.size
    assert s.image.shape == (1, 704, 256) and s.image.dtype == torch.float32
    assert 0.0 <= s.image.min() and s.image.max() <= 1.0
    expected = np.asarray(original.convert("L").resize((256, 704), Image.BILINEAR)) / 255.0
    assert np.allclose(s.image[0].numpy(), expected, atol=1e-6)
    mask_img = Image.open(rec.mask_path)
    expected_mask = np.asarray(mask_img.resize((256, 704), Image.NEAREST)) > 0
    assert s.mask.dtype == torch.bool and s.mask.shape == (704, 256)
    assert np.array_equal(s.mask.numpy(), expected_mask) and s.mask.any()
    assert np.array_equal(read_mask(rec.mask_path), np.asarray(mask_img) > 0)
    rgb = KolektorSDD(ksdd_root, fold=1, split="test", size=(64, 176), channels=3,
                      split_file=SPLIT)[i]
    assert rgb.image.shape == (3, 176, 64)
    assert torch.equal(rgb.image[0], rgb.image[1]) and torch.equal(rgb.image[0], rgb.image[2])


def _copy_units(src: Path, dst: Path, units: dict[str, list[str]], mask_ext: str) -> None:
    """Copy some real images; masks re-encoded as ``mask_ext`` (.bmp or .png)."""
    for unit, parts in units.items():
        (dst / unit).mkdir(parents=True)
        for part in parts:
            shutil.copy(src / unit / f"{part}.jpg", dst / unit / f"{part}.jpg")
            mask = Image.open(src / unit / f"{part}_label.png")
            mask.save(dst / unit / f"{part}_label{mask_ext}")


def _split(path: Path, train: list[str], test: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(([[(u, True) for u in train]], [[(u, False) for u in test]])))
    return path


@pytest.mark.data
def test_bmp_and_png_masks_give_the_same_dataset(ksdd_root, tmp_path) -> None:
    units = {"kos01": ["Part4", "Part5"], "kos21": ["Part5", "Part6", "Part7"]}
    datasets = {}
    for ext in (".bmp", ".png"):
        root = tmp_path / ext[1:]
        _copy_units(ksdd_root, root, units, ext)
        _split(root / "splits" / "mine.pyb", ["kos21"], ["kos01"])
        ds = KolektorSDD(root, fold=0, split="all", size=(100, 250), split_file="mine.pyb")
        assert all(r.mask_path.suffix == ext for r in ds.records)
        datasets[ext] = ds
    bmp, png = datasets[".bmp"], datasets[".png"]
    assert [r.id for r in bmp.records] == ["kos21/Part5", "kos21/Part6", "kos01/Part4",
                                           "kos01/Part5"]  # kos21/Part7 skipped
    real_labels = [int((np.asarray(Image.open(ksdd_root / f"{r.id}_label.png")) > 0).any())
                   for r in bmp.records]
    assert bmp.labels == png.labels == real_labels and sum(real_labels) == 2
    for i in range(len(bmp)):
        assert torch.equal(bmp[i].mask, png[i].mask) and torch.equal(bmp[i].image, png[i].image)
    test = KolektorSDD(tmp_path / "bmp", fold=0, split="test", split_file="mine.pyb")
    assert [r.id for r in test.records] == ["kos01/Part4", "kos01/Part5"]
    # a split file given as a path works too
    by_path = KolektorSDD(tmp_path / "png", split="train",
                          split_file=tmp_path / "png" / "splits" / "mine.pyb")
    assert [r.group for r in by_path.records] == ["kos21"] * 2


def test_augment_flips_image_and_mask_together(tmp_path) -> None:
    root = _synthetic(tmp_path, {"kos01": 1})
    plain = KolektorSDD(root, split="all", split_file=None)[0]
    aug = KolektorSDD(root, split="all", split_file=None, augment=True)
    seen = set()
    for seed in range(16):
        torch.manual_seed(seed)
        s = aug[0]
        for dims in ((), (-1,), (-2,), (-2, -1)):
            if torch.equal(s.image, plain.image.flip(dims) if dims else plain.image):
                assert torch.equal(s.mask, plain.mask.flip(dims) if dims else plain.mask)
                seen.add(dims)
                break
        else:
            pytest.fail("augmented image is not a flip of the original")
    assert len(seen) == 4


# ------------------------------------------------------------- synthetic trees, bad input

def _synthetic(tmp_path: Path, units: dict[str, int], size=(12, 20)) -> Path:
    """Tiny KolektorSDD-like tree: each unit has ``n`` parts, Part0 defective."""
    root = tmp_path / "ksdd"
    rng = np.random.default_rng(0)
    for unit, n in units.items():
        (root / unit).mkdir(parents=True)
        for k in range(n):
            Image.fromarray(rng.integers(0, 255, (size[1], size[0]), dtype=np.uint8)).save(
                root / unit / f"Part{k}.jpg")
            mask = np.zeros((size[1], size[0]), dtype=np.uint8)
            if k == 0:
                mask[3:9, 2:6] = 255
            Image.fromarray(mask).save(root / unit / f"Part{k}_label.png")
    return root


def test_synthetic_tree_counts_and_split_requirements(tmp_path) -> None:
    root = _synthetic(tmp_path, {"kos01": 3, "kos02": 2, "kos21": 8})
    ds = KolektorSDD(root, split="all", split_file=None)
    assert len(ds) == 12 and sum(ds.labels) == 3  # kos21/Part7 skipped
    assert ds[0].mask.sum() == 24 and ds[0].original_size == (12, 20)
    with pytest.raises(ConfigError, match="split file"):
        KolektorSDD(root, split="train", split_file=None)
    _split(root / "splits" / "s.pyb", ["kos01"], ["kos02"])
    with pytest.raises(ConfigError, match="fold 3"):
        KolektorSDD(root, fold=3, split="test", split_file="s.pyb")
    with pytest.raises(DataError, match="nope.pyb"):
        KolektorSDD(root, split="test", split_file="nope.pyb")


def test_missing_mask_names_the_image(tmp_path) -> None:
    root = _synthetic(tmp_path, {"kos01": 2})
    (root / "kos01" / "Part1_label.png").unlink()
    with pytest.raises(DataError, match="mask file missing") as exc:
        KolektorSDD(root, split="all", split_file=None)
    assert str(root / "kos01" / "Part1.jpg") in str(exc.value)


def test_unreadable_image_names_the_file(tmp_path) -> None:
    root = _synthetic(tmp_path, {"kos01": 2})
    (root / "kos01" / "Part1.jpg").write_text("this is not a JPEG")
    with pytest.raises(DataError, match="cannot read image") as exc:
        KolektorSDD(root, split="all", split_file=None)
    assert str(root / "kos01" / "Part1.jpg") in str(exc.value)


def test_mask_size_mismatch_names_both_files_and_sizes(tmp_path) -> None:
    root = _synthetic(tmp_path, {"kos01": 2})
    Image.new("L", (12, 19)).save(root / "kos01" / "Part1_label.png")
    with pytest.raises(DataError) as exc:
        KolektorSDD(root, split="all", split_file=None)
    msg = str(exc.value)
    assert str(root / "kos01" / "Part1_label.png") in msg
    assert str(root / "kos01" / "Part1.jpg") in msg
    assert "12x19" in msg and "12x20" in msg


def test_mask_size_mismatch_is_also_caught_when_loading(tmp_path) -> None:
    root = _synthetic(tmp_path, {"kos01": 2})
    ds = KolektorSDD(root, split="all", split_file=None)
    Image.new("L", (11, 20)).save(root / "kos01" / "Part0_label.png")
    with pytest.raises(DataError, match="11x20") as exc:
        ds[0]
    assert str(root / "kos01" / "Part0_label.png") in str(exc.value)


def test_split_file_naming_a_missing_unit(tmp_path) -> None:
    root = _synthetic(tmp_path, {"kos01": 2, "kos02": 2})
    split = _split(root / "splits" / "s.pyb", ["kos01", "kos07"], ["kos02"])
    with pytest.raises(DataError, match="kos07") as exc:
        KolektorSDD(root, split="train", split_file="s.pyb")
    assert str(split) in str(exc.value)


def test_missing_root(tmp_path) -> None:
    with pytest.raises(DataError, match="not found") as exc:
        KolektorSDD(tmp_path / "nowhere", split="all", split_file=None)
    assert "nowhere" in str(exc.value)
