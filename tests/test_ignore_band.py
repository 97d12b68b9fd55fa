"""The ``band`` pseudo-label rule: an uncertain ring left out of segmentation training.

Oracles: scikit-image's Otsu threshold applied twice (the rule's definition), hand-computed
cross-entropy over the kept pixels, and a mask that equals its own ignore band (so every crop,
pad and flip must move both alike).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from skimage.filters import threshold_otsu

from racam.data import KolektorSDD
from racam.data.sample import Sample, collate_samples
from racam.pseudo.labels import IGNORE, PseudoLabelDataset, mask_filename, write_pseudo_labels
from racam.pseudo.otsu import pseudo_mask, pseudo_trimap
from racam.segmentation.crops import DefectCropDataset
from racam.segmentation.losses import IGNORE_INDEX, segmentation_loss
from racam.stages.folds import SAMPLE_ROOT


def _blob_map(seed: int = 3) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(96), torch.arange(64), indexing="ij")
    blob = torch.exp(-((yy - 40.0) ** 2 + (xx - 30.0) ** 2) / 300.0)
    return (0.7 * blob + 0.3 * torch.rand(96, 64, generator=g)).clamp(0, 1)


def test_band_is_the_ring_between_the_two_skimage_otsu_thresholds() -> None:
    heat = _blob_map()
    h = heat.numpy()
    t1 = threshold_otsu(h, nbins=256)
    t2 = threshold_otsu(h[h > t1], nbins=256)
    core, band = pseudo_trimap(heat, "band")
    assert band is not None
    assert (core.numpy() != (h > t2)).sum() <= 2  # bin-edge ties of the two histograms
    assert (band.numpy() != ((h > t1) & (h <= t2))).sum() <= 4
    assert not (core & band).any() and band.any() and core.any()
    assert torch.equal(core, pseudo_mask(heat, "otsu2"))
    assert torch.equal(core | band, pseudo_mask(heat, "otsu"))
    assert pseudo_trimap(heat, "otsu2")[1] is None and pseudo_trimap(heat, "otsu")[1] is None
    two = torch.zeros(8, 8)
    two[:4] = 1.0  # constant foreground: no inner threshold, so no band
    core2, band2 = pseudo_trimap(two, "band")
    assert torch.equal(core2, two > 0) and band2 is not None and not band2.any()


def test_ignored_pixels_count_in_no_loss_term() -> None:
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 2, 16, 16, generator=g)
    y = (torch.rand(2, 16, 16, generator=g) > 0.8).long()
    ignore = torch.rand(2, 16, 16, generator=g) > 0.6
    target = y.clone()
    target[ignore] = IGNORE_INDEX
    keep = ~ignore
    # cross-entropy: the mean over the kept pixels, by hand
    logp = torch.log_softmax(logits, 1)
    want = -(logp.gather(1, y[:, None])[:, 0][keep]).mean()
    assert torch.allclose(segmentation_loss("ce")(logits, target), want, atol=1e-6)
    for name in ("ce", "ce+dice", "ce+dice_defect"):
        loss = segmentation_loss(name)
        changed = logits.clone()
        changed.permute(0, 2, 3, 1)[ignore] = torch.randn(int(ignore.sum()), 2, generator=g)
        assert torch.allclose(loss(logits, target), loss(changed, target), atol=1e-6), name
        assert not torch.allclose(loss(logits, y), loss(changed, y), atol=1e-6), name
    assert torch.allclose(F.cross_entropy(logits, y), segmentation_loss("ce")(logits, y))


def test_crops_move_the_band_with_the_mask(tmp_path) -> None:
    g = torch.Generator().manual_seed(1)

    class Twin(torch.utils.data.Dataset):
        labels = [1, 0, 1]

        def __len__(self) -> int:
            return 3

        def __getitem__(self, i: int) -> Sample:
            mask = torch.rand(50, 70, generator=torch.Generator().manual_seed(i)) > 0.9
            return Sample(image=torch.rand(1, 50, 70, generator=g), label=self.labels[i],
                          id=str(i), original_size=(70, 50), mask=mask, ignore=mask.clone())

    crops = DefectCropDataset(Twin(), (64, 64), 0.5, num_samples=40, seed=7)
    for k in range(40):
        s = crops[k]
        assert s.ignore is not None and s.mask is not None
        assert s.mask.shape == s.ignore.shape == (64, 64)
        assert torch.equal(s.mask, s.ignore), k
    batch = collate_samples([crops[0], Sample(image=torch.zeros(1, 64, 64), label=0, id="x",
                                              original_size=(64, 64),
                                              mask=torch.zeros(64, 64, dtype=torch.bool))])
    assert batch.ignore is not None and batch.ignore.shape == (2, 64, 64)
    assert torch.equal(batch.ignore[0], crops[0].ignore) and not batch.ignore[1].any()


class RingCam:
    """Heat maps of ``order``: 1 on the true mask, 0.5 on a ring around it, 0 elsewhere."""

    def __init__(self, dataset, order: list[int]) -> None:
        self.maps = []
        for i in order:
            m = torch.from_numpy(dataset.true_mask(i)).float()[None, None]
            grown = F.max_pool2d(m, 9, stride=1, padding=4)[0, 0]
            self.maps.append(0.5 * grown + 0.5 * m[0, 0])
        self.pos = 0

    def __call__(self, images: torch.Tensor, targets=None) -> torch.Tensor:
        out = torch.stack(self.maps[self.pos:self.pos + len(images)])
        self.pos += len(images)
        return out


def test_band_pseudo_labels_on_real_images(tmp_path) -> None:
    ds = KolektorSDD(SAMPLE_ROOT, fold=0, split="train", size=None, channels=1,
                     split_file="demo_split.pyb")
    defective = [i for i, y in enumerate(ds.labels) if y == 1]
    cam = RingCam(ds, defective)
    maps = list(cam.maps)
    write_pseudo_labels(cam, ds, tmp_path, meta={}, batch_size=1, progress=False,
                        threshold="band")
    for i, heat in zip(defective, maps):
        name = mask_filename(ds.records[i].id)
        got = np.array(Image.open(tmp_path / "masks" / name)) > 0
        band = np.array(Image.open(tmp_path / IGNORE / name)) > 0
        core, ring = pseudo_trimap(heat, "band")
        assert ring is not None
        assert np.array_equal(got, core.numpy()) and np.array_equal(band, ring.numpy())
        assert np.array_equal(got, ds.true_mask(i))  # the oracle's core is the true mask
        assert band.any() and not (band & got).any()
    good = ds.labels.index(0)
    assert not (tmp_path / IGNORE / mask_filename(ds.records[good].id)).exists()
    small = KolektorSDD(SAMPLE_ROOT, fold=0, split="train", size=(64, 160), channels=1,
                        split_file="demo_split.pyb")
    wrapped = PseudoLabelDataset(small, tmp_path)
    s = wrapped[defective[0]]
    assert s.ignore is not None and s.ignore.shape == s.mask.shape == (160, 64)
    assert s.ignore.any() and wrapped[good].ignore is None
