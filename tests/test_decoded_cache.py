"""Decoded images kept in memory (:mod:`racam.data.decoded`): a dataset's samples are bit for bit
those read from disk (real KolektorSDD images, a 16-bit image, masks, pseudo-labels, flips), a
second epoch reads no file, a replaced file is read again, and the memory limit holds."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import racam.data.io as data_io
from racam.data import KolektorSDD
from racam.data import decoded as dec
from racam.data.io import Record, RecordDataset
from racam.pseudo.labels import PseudoLabelDataset, save_mask
from racam.training import seed_epoch


@pytest.fixture(autouse=True)
def empty_store(monkeypatch):
    monkeypatch.delenv(dec.LIMIT_ENV, raising=False)
    dec.clear()
    yield
    dec.clear()


def _same(a, b) -> bool:
    return a is b is None or (a is not None and b is not None and a.dtype == b.dtype
                              and torch.equal(a, b))


def test_real_samples_equal_those_read_from_disk_and_a_second_pass_reads_no_file(
        ksdd_root, monkeypatch) -> None:
    ds = KolektorSDD(ksdd_root, fold=0, split="train", size=(64, 176), augment=True)
    idx = [i for i, y in enumerate(ds.labels) if y == 1][:3] + [0, 1]
    monkeypatch.setenv(dec.LIMIT_ENV, "0")  # nothing kept: every sample read from disk
    seed_epoch(0, 0)
    fresh = [ds[i] for i in idx]
    assert dec.used_bytes() == 0
    monkeypatch.delenv(dec.LIMIT_ENV)
    for _ in range(2):  # first pass reads and keeps, second reads nothing
        seed_epoch(0, 0)  # the same flips
        got = [ds[i] for i in idx]
        assert all(_same(a.image, b.image) and _same(a.mask, b.mask)
                   and a.original_size == b.original_size for a, b in zip(fresh, got))
        monkeypatch.setattr(data_io, "read_image", _no_read)
        monkeypatch.setattr(data_io, "read_mask", _no_read)
    assert 0 < dec.used_bytes() <= len(idx) * 64 * 176 * 2  # uint8 image + bool mask
    seed_epoch(0, 0)
    ds[idx[0]].image.zero_()  # a caller's change does not reach the store
    seed_epoch(0, 0)
    assert _same(ds[idx[0]].image, fresh[0].image)


def _no_read(*args, **kwargs):
    raise AssertionError("read from disk")


def _record(tmp_path, name: str, arr: np.ndarray) -> Record:
    path = tmp_path / f"{name}.png"
    Image.fromarray(arr).save(path)
    return Record(id=name, image_path=path, mask_path=None, label=0, group=name)


def test_a_16_bit_image_is_kept_exactly_and_a_replaced_file_is_read_again(tmp_path) -> None:
    rng = np.random.default_rng(0)
    rec = _record(tmp_path, "deep", rng.integers(0, 65535, (40, 30), dtype=np.uint16))
    ds = RecordDataset([rec], size=(20, 24), channels=1)
    first = ds._read(rec)[0]
    assert not torch.equal(first.mul(255).round().div(255), first)  # not k / 255 values
    assert _same(ds[0].image, first) and _same(ds[0].image, first)  # miss, then hit
    Image.fromarray(rng.integers(0, 65535, (40, 30), dtype=np.uint16)).save(tmp_path / "x.png")
    (tmp_path / "x.png").replace(rec.image_path)  # new content: read again
    assert _same(ds[0].image, ds._read(rec)[0]) and not torch.equal(ds[0].image, first)


def test_the_limit_keeps_the_most_recent_images(tmp_path, monkeypatch) -> None:
    rng = np.random.default_rng(1)
    recs = [_record(tmp_path, f"i{k}", rng.integers(0, 255, (100, 100), dtype=np.uint8))
            for k in range(4)]
    ds = RecordDataset(recs, size=(100, 100), channels=1, has_masks=False)
    monkeypatch.setenv(dec.LIMIT_ENV, str(2.5 * 100 * 100 / 2**20))  # room for two images
    for i in range(4):
        ds[i]
    assert dec.used_bytes() == 2 * 100 * 100
    monkeypatch.setattr(data_io, "read_image", _no_read)
    assert _same(ds[3].image, torch.from_numpy(np.array(Image.open(recs[3].image_path)))
                 [None].float().div(255))
    with pytest.raises(AssertionError, match="read from disk"):
        ds[0]  # the oldest went first


def test_pseudo_labels_and_bands_equal_those_read_from_disk(tmp_path, ksdd_root,
                                                            monkeypatch) -> None:
    base = KolektorSDD(ksdd_root, fold=0, split="train", size=(64, 176))
    labels = tmp_path / "pseudo"
    rng = np.random.default_rng(2)
    for k, rec in enumerate(base.records[:3]):
        w, h = data_io.image_size(rec.image_path)
        band = torch.from_numpy(rng.random((h, w)) > 0.9) if k else None
        save_mask(labels, rec.id, torch.from_numpy(rng.random((h, w)) > 0.5), band)
    (labels / "manifest.json").write_text("{}")
    ds = PseudoLabelDataset(base, labels)
    monkeypatch.setenv(dec.LIMIT_ENV, "0")
    fresh = [ds[i] for i in range(3)]
    monkeypatch.delenv(dec.LIMIT_ENV)
    for _ in range(2):
        got = [ds[i] for i in range(3)]
        assert all(_same(a.mask, b.mask) and _same(a.ignore, b.ignore)
                   for a, b in zip(fresh, got))
    assert fresh[0].ignore is None and fresh[1].ignore is not None
