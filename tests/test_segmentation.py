"""Segmentation networks: building, training on masks, exact resume, prediction, real data."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.metrics import roc_auc_score
from torch.nn import functional as F
from torch.utils.data import Dataset

from racam.config import SegmentationConfig
from racam.data.sample import Sample
from racam.errors import CheckpointError, ConfigError, DataError
from racam.segmentation import (
    build_segmentation,
    check_input_size,
    input_divisor,
    load_segmentation,
    predict_masks,
    train_segmentation,
)


class Discs(Dataset):
    """Gray texture images ``(1, 128, 64)`` with one bright disc each (the mask)."""

    def __init__(self, n: int, seed: int = 0, r2: int = 64, augment: bool = False,
                 masks: bool = True) -> None:
        g = torch.Generator().manual_seed(seed)
        yy, xx = torch.meshgrid(torch.arange(128), torch.arange(64), indexing="ij")
        self.items = []
        for _ in range(n):
            cy, cx = int(torch.randint(10, 118, (1,), generator=g)), \
                int(torch.randint(10, 54, (1,), generator=g))
            mask = (yy - cy) ** 2 + (xx - cx) ** 2 <= r2
            img = torch.where(mask, torch.ones(()), 0.3 + 0.1 * torch.rand(128, 64, generator=g))
            self.items.append((img[None], mask))
        self.augment, self.masks = augment, masks

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> Sample:
        img, mask = self.items[i]
        if self.augment and torch.rand(()) < 0.5:
            img, mask = img.flip(-1), mask.flip(-1)
        return Sample(image=img, label=1, id=f"d{i}", original_size=(64, 128),
                      mask=mask if self.masks else None)


def _iou(pred: torch.Tensor, gt: torch.Tensor) -> float:
    tp = (pred & gt).sum().item()
    return tp / ((pred | gt).sum().item() or 1)


@pytest.mark.parametrize("arch,divisor", [("deeplabv3", 8), ("deeplabv3plus", 16), ("unet", 32)])
def test_build_shapes_and_divisors(arch: str, divisor: int) -> None:
    model = build_segmentation(arch, "resnet18", in_channels=1).eval()
    with torch.no_grad():
        assert model(torch.rand(2, 1, 128, 64)).shape == (2, 2, 128, 64)
    assert input_divisor(model) == divisor
    with pytest.raises(DataError, match=f"my image: size 72x100.*multiples of {divisor}"):
        check_input_size(model, 100, 72, "my image")
    with pytest.raises(ConfigError, match="unknown segmentation arch"):
        build_segmentation("fcn")
    with pytest.raises(ConfigError, match="encoder 'resnet7'"):
        build_segmentation("unet", "resnet7")


def test_unet_learns_discs_and_predicts(tmp_path) -> None:
    cfg = SegmentationConfig(arch="unet", encoder="resnet18", epochs=8, batch_size=4, lr=0.01)
    res = train_segmentation(cfg, Discs(24, augment=True), tmp_path, seed=0, progress=False)
    assert res.finished and [h["epoch"] for h in res.history] == list(range(1, 9))
    assert res.history[-1]["loss"] < 0.1 * res.history[0]["loss"]
    model, meta = load_segmentation(res.last_path)
    assert meta["arch"] == "unet" and meta["input_shape"] == [1, 128, 64]
    test = Discs(8, seed=5)
    ids, probs = [], []
    for batch_ids, prob in predict_masks(model, test, batch_size=3, device="cpu"):
        assert prob.shape == (len(batch_ids), 128, 64) and prob.dtype == torch.float32
        ids += batch_ids
        probs.append(prob)
    assert ids == [f"d{i}" for i in range(8)]
    prob = torch.cat(probs)
    assert prob.min() >= 0 and prob.max() <= 1
    gt = torch.stack([m for _, m in test.items])
    assert _iou(prob > 0.5, gt) > 0.5
    with torch.no_grad():  # prediction is the softmax defect channel of the network
        ref = model(test[0].image[None]).softmax(1)[0, 1]
    torch.testing.assert_close(prob[0], ref, atol=1e-5, rtol=1e-4)


CROP_RECIPE = SegmentationConfig(arch="unet", encoder="resnet18", epochs=2, batch_size=2,
                                 lr=1e-3, optimizer="adamw", schedule="cosine", crop=(64, 64),
                                 samples_per_epoch=4, loss="ce+dice_defect", precision="bf16",
                                 channels_last=True)


@pytest.mark.parametrize("recipe", ["whole images", "crops"])
def test_killed_and_resumed_run_equals_uninterrupted(tmp_path, recipe: str) -> None:
    cfg = SegmentationConfig(arch="deeplabv3", encoder="resnet18", epochs=2, batch_size=2,
                             lr=0.01)
    ds = Discs(6, augment=True)
    if recipe == "crops":  # crops are drawn from (seed, epoch, k); the schedule from the step
        cfg, ds = CROP_RECIPE, Discs(6)
    straight = train_segmentation(cfg, ds, tmp_path / "a", seed=1, progress=False)
    killed = train_segmentation(cfg, ds, tmp_path / "b", seed=1, progress=False, stop_after=1)
    assert not killed.finished
    torch.manual_seed(99)
    resumed = train_segmentation(cfg, ds, tmp_path / "b", seed=1, progress=False)
    a = torch.load(straight.last_path, weights_only=True)["model"]
    b = torch.load(resumed.last_path, weights_only=True)["model"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)  # BN stats too
    assert [h["loss"] for h in straight.history] == [h["loss"] for h in resumed.history]
    again = train_segmentation(cfg, ds, tmp_path / "b", seed=1, progress=False)
    assert again.history == resumed.history  # finished: returned, not retrained
    if recipe == "crops":  # cosine: the last step's lr is lr * (1 + cos(pi * 3 / 4)) / 2
        assert straight.history[-1]["lr"] == pytest.approx(1e-3 * (1 - 2 ** -0.5) / 2)


def test_bad_input(tmp_path) -> None:
    cfg = SegmentationConfig(arch="unet", epochs=1, batch_size=2)
    with pytest.raises(DataError, match="mask for every image"):
        train_segmentation(cfg, Discs(4, masks=False), tmp_path / "m", seed=0, progress=False)
    with pytest.raises(DataError, match="fewer than one batch"):
        train_segmentation(cfg, Discs(1), tmp_path / "n", seed=0, progress=False)
    with pytest.raises(ConfigError, match="batch_size must be >= 2 for deeplabv3"):
        train_segmentation(SegmentationConfig(batch_size=1), Discs(4), tmp_path / "o", seed=0)
    with pytest.raises(DataError, match="expects"):
        train_segmentation(cfg, Discs(4), tmp_path / "p", seed=0, in_channels=3)


@pytest.mark.data
def test_overfits_real_kolektor_defects(ksdd_root, tmp_path) -> None:
    """Real KolektorSDD images and true masks at 128x320: after training, defect pixels get
    higher probabilities than background (pixel AUROC by scikit-learn), untrained they do not."""
    names = ["kos01/Part5", "kos02/Part6", "kos03/Part2", "kos04/Part3", "kos01/Part0",
             "kos02/Part0"]
    samples = []
    for name in names:
        img = Image.open(ksdd_root / f"{name}.jpg").convert("L")
        x = torch.from_numpy(np.array(img.resize((128, 320), Image.BILINEAR))).float() / 255
        m = torch.from_numpy(np.array(Image.open(ksdd_root / f"{name}_label.png").convert("L")))
        m = F.interpolate(m.float()[None, None], size=(320, 128), mode="bilinear")[0, 0] > 0
        samples.append(Sample(image=x[None], label=int(m.any()), id=name,
                              original_size=img.size, mask=m))
    assert [s.label for s in samples] == [1, 1, 1, 1, 0, 0]

    class Real(Dataset):
        def __len__(self) -> int:
            return len(samples)

        def __getitem__(self, i: int) -> Sample:
            return samples[i]

    gt = torch.cat([s.mask.flatten() for s in samples]).numpy()

    def pixel_auroc(model: torch.nn.Module) -> float:
        prob = torch.cat([p.flatten() for _, p in predict_masks(model, Real(), 2, "cpu")])
        return roc_auc_score(gt, prob.numpy())

    cfg = SegmentationConfig(arch="unet", encoder="resnet18", epochs=16, batch_size=2, lr=0.05,
                             balance="none")
    torch.manual_seed(0)
    before = pixel_auroc(build_segmentation("unet", "resnet18"))
    res = train_segmentation(cfg, Real(), tmp_path, seed=0, progress=False)
    after = pixel_auroc(load_segmentation(res.last_path)[0])
    assert before < 0.7 and after > 0.9, (before, after)


@pytest.mark.parametrize("arch", ["deeplabv3", "unet"])
def test_lite0_encoder_loads_the_offline_imagenet_weights(arch: str, tmp_path) -> None:
    """Every encoder tensor equals the ImageNet Lite0 classifier's (tested on natural images in
    test_models), grey stem included; the classification head is left out; no download."""
    from racam.models import build_classifier

    cls = build_classifier("efficientnet_lite0", in_channels=1, weights="imagenet").state_dict()
    seg = build_segmentation(arch, "efficientnet_lite0", in_channels=1, encoder_weights="imagenet",
                             output_stride=16 if arch == "deeplabv3" else None)
    enc = seg.encoder.model.state_dict()
    assert enc.keys() <= cls.keys() and "conv_stem.weight" in enc
    for k, v in enc.items():
        assert torch.equal(v, cls[k]), k
    fresh = build_segmentation(arch, "efficientnet_lite0", in_channels=1)
    assert not torch.equal(fresh.encoder.model.conv_stem.weight, enc["conv_stem.weight"])
    bad = tmp_path / "bad.pth"
    torch.save({"conv_stem.weight": torch.zeros(3)}, bad)
    with pytest.raises(CheckpointError, match=r"bad\.pth: not EfficientNet-Lite weights"):
        build_segmentation(arch, "efficientnet_lite0", encoder_weights=str(bad))
