"""The device-resident training cache: same images, same draws, same learning as the loader."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from test_classifier_train import Blobs
from test_segmentation import Discs
from torch.utils.data import Subset

from racam.classifier import train as cls_train
from racam.classifier import train_classifier
from racam.config import ClassifierConfig, SegmentationConfig
from racam.data import KolektorSDD
from racam.data.device_cache import DeviceCache, augments, device_generator
from racam.data.sample import Sample
from racam.segmentation import train as seg_train
from racam.segmentation import train_segmentation
from racam.segmentation.device_crops import DeviceCropSampler
from racam.stages.folds import LabelledSubset
from racam.training import dataset_labels, epoch_sampler, loader_base_seed, seed_epoch

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def real(ksdd_root):
    """12 real KolektorSDD training images (4 defective) at 64 x 176."""
    ds = KolektorSDD(ksdd_root, fold=0, split="train", size=(64, 176), channels=3)
    pos = [i for i, y in enumerate(ds.labels) if y == 1][:4]
    neg = [i for i, y in enumerate(ds.labels) if y == 0][:8]
    return LabelledSubset(ds, pos + neg)


def _flipped(x: torch.Tensor, h: bool, v: bool) -> torch.Tensor:
    return x.flip([d for d, f in ((-1, h), (-2, v)) if f]) if h or v else x


def test_build_stores_decoded_images_compactly(real) -> None:
    cache = DeviceCache.build(real, CPU, masks=True)
    assert cache.images.dtype == torch.uint8 and cache.images.shape == (12, 1, 176, 64)
    assert not cache.augment and len(cache) == 12 and cache.nbytes < 12 * 176 * 64 * 3
    batch = cache.gather(torch.arange(12))
    for i in range(12):  # grey stored once, expanded to 3 exact channels per batch
        s = real[i]
        assert torch.equal(batch.images[i], s.image) and torch.equal(batch.masks[i], s.mask)
    assert batch.labels.tolist() == real.labels
    blobs = Blobs(4, augment=True)  # values that are not k / 255: kept as float32
    cache = DeviceCache.build(Subset(blobs, [0, 1, 2]), CPU)
    assert cache.images.dtype == torch.float32 and cache.augment and blobs.augment
    assert torch.equal(cache.gather(torch.tensor([1])).images[0], blobs.images[1])


def test_classifier_batches_equal_the_loaders(real) -> None:
    cfg = ClassifierConfig(batch_size=5, samples_per_epoch=13)
    cache = DeviceCache.build(real, CPU)
    labels = dataset_labels(real)
    for epoch in (0, 3):
        ours = list(cls_train.epoch_batches(cfg, real, cache, labels, 7, epoch, CPU)[0])
        theirs = list(cls_train.epoch_batches(cfg, real, None, labels, 7, epoch, CPU)[0])
        assert [len(b.labels) for b in ours] == [5, 5, 3]
        # the step count the learning-rate schedule is told matches both paths
        assert cls_train.epoch_batches(cfg, real, cache, labels, 7, epoch, CPU)[1] == 3
        assert cls_train.epoch_batches(cfg, real, None, labels, 7, epoch, CPU)[1] == 3
        for a, b in zip(ours, theirs, strict=True):
            assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)


def test_flips_are_drawn_like_the_loaders() -> None:
    base = Blobs(6, pos_every=2)
    aug = Blobs(6, pos_every=2, augment=True)
    cache = DeviceCache.build(aug, CPU, masks=True)
    assert augments(Subset(aug, [0])) and not augments(base)
    counts = torch.zeros(2)
    n = 0
    for epoch in range(40):
        gen = seed_epoch(0, epoch)
        order = list(epoch_sampler(aug.labels, SegmentationConfig(balance="none"), gen, aug))
        flips = device_generator(CPU, loader_base_seed(gen))
        for b, i in zip(cache.epoch_batches(order, 6, True, flips), [order]):
            for k, idx in enumerate(i):
                img, mask = b.images[k], b.masks[k]
                hits = [(h, v) for h in (False, True) for v in (False, True)
                        if torch.equal(img, _flipped(base.images[idx], h, v))]
                assert len(hits) == 1  # one of the four flips of image idx
                h, v = hits[0]
                assert torch.equal(mask, _flipped(base.masks[idx], h, v))  # mask moves along
                counts += torch.tensor([h, v], dtype=torch.float)
                n += 1
    share = counts / n
    assert ((share > 0.38) & (share < 0.62)).all(), share  # 240 draws, p = 1/2 each


def test_device_crops_match_the_dataset_rule(real) -> None:
    cache = DeviceCache.build(real, CPU, masks=True)
    sampler = DeviceCropSampler(cache, (32, 48), 1.0, 64, seed=3)
    index, top, left, flips = sampler.draws(0)
    assert (index < 4).all()  # centred draws take defective images only
    batch = next(sampler.epoch_batches(0, 8))
    for k in range(8):  # a crop is the window of its image, flipped as drawn
        s = real[int(index[k])]
        t, lft = int(top[k]), int(left[k])
        window = s.image[:, t:t + 48, lft:lft + 32]
        h, v = bool(flips[k, 0]), bool(flips[k, 1])
        assert torch.equal(batch.images[k], _flipped(window, h, v))
        assert torch.equal(batch.masks[k], _flipped(s.mask[t:t + 48, lft:lft + 32], h, v))
    hits = torch.cat([b.masks.flatten(1).any(1) for b in sampler.epoch_batches(0, 8)])
    assert hits.all()  # every centred window holds a defect pixel
    assert all(torch.equal(a, b) for a, b in zip(sampler.draws(1), DeviceCropSampler(
        cache, (32, 48), 1.0, 64, seed=3).draws(1)))  # a function of (seed, epoch)
    assert not torch.equal(sampler.draws(1)[1], top)
    uniform = DeviceCropSampler(cache, (32, 48), 0.0, 256, seed=3)
    share = torch.cat([b.masks.flatten(1).any(1) for b in uniform.epoch_batches(0, 8)]).float()
    assert share.mean() < 0.5  # uniform windows rarely hit a thin defect
    big = DeviceCropSampler(cache, (80, 200), 0.5, 4, seed=0)  # larger than the image: padded
    b = next(big.epoch_batches(0, 4))
    assert b.images.shape == (4, 3, 200, 80) and not b.masks[:, 176:].any()


def test_ignore_bands_follow_the_masks() -> None:
    class Banded(Discs):
        def __getitem__(self, i: int) -> Sample:
            s = super().__getitem__(i)
            s.ignore = s.mask.roll(3, -1) if i % 2 else None
            return s

    ds = Banded(4, augment=True)
    cache = DeviceCache.build(ds, CPU, masks=True)
    assert cache.ignore is not None and not cache.ignore[0].any()
    flips = torch.tensor([[True, False], [True, True]])
    b = cache.gather(torch.tensor([0, 1]), flips)
    assert torch.equal(b.ignore[1], _flipped(ds.items[1][1].roll(3, -1), True, True))
    crops = next(DeviceCropSampler(cache, (32, 32), 1.0, 2, seed=0).epoch_batches(0, 2))
    assert crops.ignore is not None and crops.ignore.shape == (2, 32, 32)


@pytest.mark.data
def test_classifier_learns_the_same_with_the_cache(real, tmp_path) -> None:
    """Without flips the cache path is the loader path: bit-identical weights on CPU."""
    cfg = ClassifierConfig(backbone="vgg16_narrow", width=16, epochs=2, batch_size=4, lr=0.01,
                           batch_norm=True)
    val = LabelledSubset(real.dataset, real.indices[:3] + real.indices[-3:])
    a = train_classifier(cfg, real, val, tmp_path / "a", seed=0, progress=False, in_channels=3)
    b = train_classifier(dataclasses.replace(cfg, device_cache=True), real, val,
                         tmp_path / "b", seed=0, progress=False, in_channels=3)
    sa = torch.load(a.last_path, weights_only=True)["model"]
    sb = torch.load(b.last_path, weights_only=True)["model"]
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    strip = [{k: v for k, v in h.items() if k != "seconds"} for h in a.history]
    assert strip == [{k: v for k, v in h.items() if k != "seconds"} for h in b.history]


def test_segmentation_learns_with_the_cache(tmp_path, monkeypatch) -> None:
    """Whole images: the cache's batches are the loader's (no flips: same weights); crops:
    the device sampler's draws train as well as the dataset's."""
    cfg = SegmentationConfig(arch="unet", encoder="resnet18", epochs=2, batch_size=2, lr=0.01)
    ds = Discs(6)
    a = train_segmentation(cfg, ds, tmp_path / "a", seed=1, progress=False)
    b = train_segmentation(dataclasses.replace(cfg, device_cache=True), ds, tmp_path / "b",
                           seed=1, progress=False)
    assert [h["loss"] for h in a.history] == [h["loss"] for h in b.history]
    used = []
    monkeypatch.setattr(seg_train, "DefectCropDataset", lambda *a, **k: used.append(1))
    crops = dataclasses.replace(cfg, crop=(64, 64), samples_per_epoch=16, epochs=6,
                                device_cache=True)
    res = train_segmentation(crops, Discs(8), tmp_path / "c", seed=0, progress=False)
    assert not used  # no host crop dataset on this path
    assert res.history[-1]["loss"] < 0.5 * res.history[0]["loss"]
