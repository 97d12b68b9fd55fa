"""Folder dataset (good/ + defect/ [+ masks/]): labels, masks, seeded split, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from racam.data import FolderDataset
from racam.errors import ConfigError, DataError

W, H = 16, 24


def _tree(tmp_path: Path, n_good: int = 10, n_defect: int = 5, masks: bool = True,
          good_masks: bool = False) -> Path:
    rng = np.random.default_rng(0)
    root = tmp_path / "parts"
    for cls, n in (("good", n_good), ("defect", n_defect)):
        (root / cls).mkdir(parents=True)
        for k in range(n):
            Image.fromarray(rng.integers(0, 255, (H, W, 3), dtype=np.uint8)).save(
                root / cls / f"{cls}_{k:02d}.png")
    if masks:
        (root / "masks").mkdir()
        for k in range(n_defect):
            m = np.zeros((H, W), dtype=np.uint8)
            m[k:k + 4, 2:7] = 255
            Image.fromarray(m).save(root / "masks" / f"defect_{k:02d}.png")
        if good_masks:
            Image.new("L", (W, H)).save(root / "masks" / "good_00.bmp")
    return root


def test_labels_ids_and_masks(tmp_path) -> None:
    root = _tree(tmp_path, good_masks=True)
    ds = FolderDataset(root, split="all", size=(8, 12), channels=3)
    assert len(ds) == 15 and ds.labels == [0] * 10 + [1] * 5
    assert ds.records[0].id == "good/good_00" and ds.records[10].id == "defect/defect_00"
    assert ds.records[0].mask_path.name == "good_00.bmp" and ds.records[1].mask_path is None
    d = ds[12]
    assert d.image.shape == (3, 12, 8) and d.label == 1 and d.original_size == (W, H)
    ref = np.asarray(Image.open(root / "masks" / "defect_02.png").resize((8, 12),
                                                                         Image.NEAREST)) > 0
    assert np.array_equal(d.mask.numpy(), ref) and d.mask.any()
    # a good image without a mask file has an empty mask when masks/ exists
    g = ds[1]
    assert g.mask is not None and not g.mask.any() and g.mask.shape == (12, 8)
    assert not ds.true_mask(1).any() and ds.true_mask(1).shape == (H, W)
    assert np.array_equal(ds.true_mask(12), np.asarray(Image.open(root / "masks" /
                                                                  "defect_02.png")) > 0)


def test_without_masks_folder_masks_are_none(tmp_path) -> None:
    ds = FolderDataset(_tree(tmp_path, masks=False), split="all", channels=1)
    assert all(r.mask_path is None for r in ds.records)
    assert ds[0].mask is None and ds[14].mask is None and ds[14].image.shape == (1, H, W)
    assert ds.true_mask(14) is None


def test_seeded_stratified_split_is_reproducible(tmp_path) -> None:
    root = _tree(tmp_path, n_good=10, n_defect=5)
    ids = {}
    for seed in (0, 1, 2, 3):
        tr = FolderDataset(root, split="train", seed=seed, test_fraction=0.3)
        te = FolderDataset(root, split="test", seed=seed, test_fraction=0.3)
        # round(0.3 * 10) = 3 good and round(0.3 * 5) = 2 defective images in test
        assert sorted(te.labels) == [0, 0, 0, 1, 1] and sorted(tr.labels) == [0] * 7 + [1] * 3
        a, b = {r.id for r in tr.records}, {r.id for r in te.records}
        assert not a & b and len(a | b) == 15
        ids[seed] = b
    again = FolderDataset(root, split="test", seed=2, test_fraction=0.3)
    assert {r.id for r in again.records} == ids[2]
    assert len(set(map(frozenset, ids.values()))) > 1  # the seed matters
    # tiny classes still give at least one image to each side
    small = _tree(tmp_path / "small", n_good=2, n_defect=2, masks=False)
    te = FolderDataset(small, split="test", test_fraction=0.1)
    assert sorted(te.labels) == [0, 1]
    with pytest.raises(ConfigError, match="test_fraction"):
        FolderDataset(small, split="test", test_fraction=1.0)


@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_user_split_file(tmp_path, fmt) -> None:
    root = _tree(tmp_path, masks=False)
    spec = {"train": ["good_00", "good_01", "defect_00"], "test": ["good_05", "defect_04"]}
    text = json.dumps(spec) if fmt == "json" else (
        "train: [good_00, good_01, defect_00]\ntest:\n  - good_05\n  - defect_04\n")
    (root / f"split.{fmt}").write_text(text)
    tr = FolderDataset(root, split="train", seed=5)
    te = FolderDataset(root, split="test")
    assert [r.group for r in tr.records] == ["good_00", "good_01", "defect_00"]
    assert [r.group for r in te.records] == ["good_05", "defect_04"] and te.labels == [0, 1]
    assert len(FolderDataset(root, split="all")) == 15


def test_user_split_naming_unknown_stem(tmp_path) -> None:
    root = _tree(tmp_path, masks=False)
    (root / "split.json").write_text(json.dumps({"train": ["good_00"], "test": ["ghost"]}))
    with pytest.raises(DataError, match="ghost") as exc:
        FolderDataset(root, split="test")
    assert str(root / "split.json") in str(exc.value)


def test_empty_defect_folder_names_it(tmp_path) -> None:
    root = _tree(tmp_path, n_defect=0, masks=False)
    with pytest.raises(DataError, match="no images") as exc:
        FolderDataset(root)
    assert str(root / "defect") in str(exc.value)
    (root / "defect").rmdir()
    with pytest.raises(DataError, match="not found") as exc:
        FolderDataset(root)
    assert str(root / "defect") in str(exc.value)


def test_defect_image_with_missing_mask_names_it(tmp_path) -> None:
    root = _tree(tmp_path)
    (root / "masks" / "defect_03.png").unlink()
    with pytest.raises(DataError, match="mask file missing") as exc:
        FolderDataset(root, strict=True)
    assert str(root / "defect" / "defect_03.png") in str(exc.value)
    # not strict: the image keeps its label, without a true mask (left out of pixel metrics)
    ds = FolderDataset(root)
    i = next(i for i, r in enumerate(ds.records) if r.image_path.stem == "defect_03")
    assert ds.labels[i] == 1 and ds.true_mask(i) is None and ds[i].mask is None
    assert ds.audit.without_usable_mask == [root / "defect" / "defect_03.png"]


def test_unreadable_image_names_the_file(tmp_path) -> None:
    root = _tree(tmp_path, masks=False)
    bad = root / "good" / "broken.jpg"
    bad.write_text("plain text, not an image")
    with pytest.raises(DataError, match="cannot read image") as exc:
        FolderDataset(root, strict=True)
    assert str(bad) in str(exc.value)
    # a truncated JPEG passes a header check; the audit decodes it and names it
    buf = root / "good" / "whole.jpg"
    noise = np.random.default_rng(1).integers(0, 255, (H * 8, W * 8), dtype=np.uint8)
    Image.fromarray(noise).save(buf)
    data = buf.read_bytes()
    bad.write_bytes(data[:len(data) // 2])
    buf.unlink()
    with pytest.raises(DataError, match="cannot read image") as exc:
        FolderDataset(root, strict=True)
    assert str(bad) in str(exc.value)
    ds = FolderDataset(root)  # not strict: left out, the others are used
    assert bad not in [r.image_path for r in ds.records] and len(ds) == 15


def test_mask_size_mismatch_names_both_files(tmp_path) -> None:
    root = _tree(tmp_path)
    Image.new("L", (W + 1, H), 255).save(root / "masks" / "defect_01.png")
    with pytest.raises(DataError, match=f"{W + 1}x{H}") as exc:
        FolderDataset(root, strict=True)
    assert str(root / "masks" / "defect_01.png") in str(exc.value)
    assert str(root / "defect" / "defect_01.png") in str(exc.value)


def test_masks_contradicting_their_folder(tmp_path) -> None:
    root = _tree(tmp_path)
    Image.new("L", (W, H), 0).save(root / "masks" / "defect_00.png")
    with pytest.raises(DataError, match="is empty"):
        FolderDataset(root, strict=True)
    root2 = _tree(tmp_path / "b")
    Image.new("L", (W, H), 1).save(root2 / "masks" / "good_03.png")
    with pytest.raises(DataError, match="has defect pixels") as exc:
        FolderDataset(root2, strict=True)
    assert str(root2 / "masks" / "good_03.png") in str(exc.value)


def test_duplicate_stems_are_refused(tmp_path) -> None:
    root = _tree(tmp_path, masks=False)
    Image.new("RGB", (W, H)).save(root / "defect" / "good_00.jpg")
    with pytest.raises(DataError, match="unique"):
        FolderDataset(root, strict=True)


def test_batches_collate(tmp_path) -> None:
    from torch.utils.data import DataLoader

    from racam.data import collate_samples

    ds = FolderDataset(_tree(tmp_path), split="all", size=(8, 12), augment=True)
    batch = next(iter(DataLoader(ds, batch_size=15, collate_fn=collate_samples)))
    assert batch.images.shape == (15, 1, 12, 8) and batch.masks.shape == (15, 12, 8)
    assert batch.labels.tolist() == ds.labels
    assert torch.equal(batch.masks.flatten(1).any(1), batch.labels.bool())
