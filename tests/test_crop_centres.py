"""``segmentation.crop_centres``: where the defect-centred crops come from.

Real KolektorSDD training images, 4 defective and 4 good; two of the defective images are made
wholly ignored, as ``train_masks_rest: ignore`` leaves the defective images without a true mask
(an empty mask inside a full ignore band). With ``defect_pixels`` every defect-centred draw (the
CPU crop dataset and the device sampler alike) takes one of the two images that keep their mask
and holds a defect pixel; with ``defective_images`` (the earlier rule) the ignored images take
their share of the draws.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch.utils.data import Dataset

from racam.data import KolektorSDD
from racam.data.device_cache import DeviceCache
from racam.data.sample import Sample
from racam.errors import ConfigError
from racam.segmentation.crops import DefectCropDataset
from racam.segmentation.device_crops import DeviceCropSampler
from racam.stages.folds import LabelledSubset

CPU = torch.device("cpu")


class Ignored(Dataset):
    """``base`` with the samples at ``blank`` wholly ignored (empty mask, full ignore band)."""

    def __init__(self, base: LabelledSubset, blank: set[int]) -> None:
        self.base, self.blank, self.labels = base, blank, list(base.labels)

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, i: int) -> Sample:
        s = self.base[i]
        if i not in self.blank:
            return s
        assert s.mask is not None
        return dataclasses.replace(s, mask=torch.zeros_like(s.mask),
                                   ignore=torch.ones_like(s.mask))


@pytest.fixture(scope="module")
def half_ignored(ksdd_root):
    ds = KolektorSDD(ksdd_root, fold=0, split="train", size=(64, 176), channels=1)
    pos = [i for i, y in enumerate(ds.labels) if y == 1][:4]
    neg = [i for i, y in enumerate(ds.labels) if y == 0][:4]
    return Ignored(LabelledSubset(ds, pos + neg), blank={1, 3})


def test_crop_dataset_centres_on_images_with_defect_pixels(half_ignored) -> None:
    ids = {half_ignored[i].id: i for i in range(len(half_ignored))}
    crops = DefectCropDataset(half_ignored, (32, 48), 1.0, 64, seed=3, centres="defect_pixels")
    assert crops.positives == [0, 2]
    drawn = [crops[k] for k in range(64)]
    assert {ids[s.id] for s in drawn} == {0, 2}
    assert all(s.mask.any() for s in drawn)  # every centred window holds a defect pixel
    old = DefectCropDataset(half_ignored, (32, 48), 1.0, 64, seed=3)
    assert {ids[old[k].id] for k in range(64)} == {0, 1, 2, 3}
    with pytest.raises(ConfigError, match="crop_centres"):
        DefectCropDataset(half_ignored, (32, 48), 1.0, 4, centres="masks")


def test_device_sampler_follows_the_same_rule(half_ignored) -> None:
    cache = DeviceCache.build(half_ignored, CPU, masks=True)
    sampler = DeviceCropSampler(cache, (32, 48), 1.0, 64, seed=3, centres="defect_pixels")
    index = sampler.draws(0)[0]
    assert set(index.tolist()) == {0, 2}
    hits = torch.cat([b.masks.flatten(1).any(1) for b in sampler.epoch_batches(0, 8)])
    assert hits.all()
    old = DeviceCropSampler(cache, (32, 48), 1.0, 64, seed=3)
    assert set(old.draws(0)[0].tolist()) == {0, 1, 2, 3}
