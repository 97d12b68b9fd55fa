"""KolektorSDD2 loader on a small synthetic tree in the official layout (NNNNN[_GT].png)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from racam.data import KolektorSDD2
from racam.errors import ConfigError, DataError

W, H = 23, 63


def _tree(tmp_path: Path) -> tuple[Path, dict[str, np.ndarray]]:
    """train: 10000..10004 (10001, 10003 defective); test: 20000..20002 (20002 defective)."""
    rng = np.random.default_rng(0)
    root = tmp_path / "KolektorSDD2"
    masks = {}
    layout = {"train": (range(10000, 10005), {10001, 10003}),
              "test": (range(20000, 20003), {20002})}
    for split, (ids, defective) in layout.items():
        (root / split).mkdir(parents=True)
        for i in ids:
            Image.fromarray(rng.integers(0, 255, (H, W, 3), dtype=np.uint8)).save(
                root / split / f"{i}.png")
            m = np.zeros((H, W), dtype=np.uint8)
            if i in defective:
                m[10:30, 5:9] = 255
            masks[str(i)] = m > 0
            Image.fromarray(m).save(root / split / f"{i}_GT.png")
    return root, masks


def test_official_splits_counts_and_labels(tmp_path) -> None:
    root, masks = _tree(tmp_path)
    train = KolektorSDD2(root, split="train")
    test = KolektorSDD2(root, split="test")
    assert [r.id for r in train.records] == ["10000", "10001", "10002", "10003", "10004"]
    assert train.labels == [0, 1, 0, 1, 0] and test.labels == [0, 0, 1]
    assert all(r.mask_path.name == f"{r.id}_GT.png" for r in train.records + test.records)
    both = KolektorSDD2(root, split="all")
    assert len(both) == 8 and sum(both.labels) == 3


def test_samples_rgb_resized_with_nearest_masks(tmp_path) -> None:
    root, masks = _tree(tmp_path)
    ds = KolektorSDD2(root, split="train", size=(12, 32))
    s = ds[1]
    assert ds.channels == 3 and s.image.shape == (3, 32, 12) and s.original_size == (W, H)
    expected = np.asarray(Image.open(root / "train" / "10001.png").resize((12, 32),
                                                                          Image.BILINEAR)) / 255
    assert np.allclose(s.image.permute(1, 2, 0).numpy(), expected, atol=1e-6)
    ref = np.asarray(Image.fromarray(masks["10001"]).resize((12, 32), Image.NEAREST))
    assert s.mask.dtype == torch.bool and np.array_equal(s.mask.numpy(), ref)
    gray = KolektorSDD2(root, split="test", size=None, channels=1)[2]
    assert gray.image.shape == (1, H, W) and np.array_equal(gray.mask.numpy(), masks["20002"])


def test_missing_gt_names_the_image(tmp_path) -> None:
    root, _ = _tree(tmp_path)
    (root / "test" / "20001_GT.png").unlink()
    with pytest.raises(DataError, match="mask file missing") as exc:
        KolektorSDD2(root, split="test")
    assert str(root / "test" / "20001.png") in str(exc.value)


def test_missing_split_folder_and_bad_split(tmp_path) -> None:
    root, _ = _tree(tmp_path)
    for p in (root / "test").iterdir():
        p.unlink()
    with pytest.raises(DataError, match="no images") as exc:
        KolektorSDD2(root, split="test")
    assert str(root / "test") in str(exc.value)
    (root / "test").rmdir()
    with pytest.raises(DataError, match="not found"):
        KolektorSDD2(root, split="test")
    with pytest.raises(ConfigError, match="split"):
        KolektorSDD2(root, split="val")
