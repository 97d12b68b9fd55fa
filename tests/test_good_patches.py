"""``cam.good_prior`` (:mod:`racam.pseudo.good_patches`): each patch's distance to the nearest
patch of the good training images, and the pseudo-labels' maps multiplied by it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import TINY_CFG
from PIL import Image

from racam.config import load_config
from racam.data.sample import Sample
from racam.engine import Engine
from racam.io import read_json
from racam.models import build_classifier
from racam.pseudo import good_patches
from racam.pseudo.good_patches import GoodPatches, patch_features, with_good_prior

SAMPLE = Path(__file__).resolve().parents[1] / "src" / "racam" / "assets" / "ksdd_sample"
SIZE = (320, 128)  # (H, W) of the model's input; the sample images are about 630 x 250


def _image(path: Path) -> torch.Tensor:
    img = Image.open(path).convert("L").resize(SIZE[::-1], Image.BILINEAR)
    return torch.from_numpy(np.asarray(img, dtype=np.float32) / 255)[None]


class Images(torch.utils.data.Dataset):
    def __init__(self, images: list[torch.Tensor]) -> None:
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> Sample:
        return Sample(image=self.images[i], label=0, mask=torch.zeros(SIZE), id=str(i),
                      original_size=SIZE[::-1])


def _good_and_defective() -> tuple[list[torch.Tensor], torch.Tensor, np.ndarray]:
    """KolektorSDD sample images: the defect-free parts of four items, and one defective part
    with its true mask at the model's input size."""
    good = [_image(p) for item in ("kos10", "kos14", "kos15", "kos16")
            for p in sorted((SAMPLE / item).glob("Part*.jpg"))
            if np.asarray(Image.open(p.with_name(p.stem + "_label.png"))).max() == 0]
    defect = SAMPLE / "kos19" / "Part5.jpg"
    mask = Image.open(defect.with_name("Part5_label.png")).resize(SIZE[::-1], Image.NEAREST)
    return good, _image(defect), np.asarray(mask) > 0


@pytest.fixture(scope="module")
def lite0() -> torch.nn.Module:
    return build_classifier("efficientnet_lite0", weights="imagenet").eval()


def test_a_good_image_is_at_distance_zero_and_the_defect_is_farthest(lite0) -> None:
    """With every good patch in the bank, a good image's own patches are at distance 0; on a
    real defective image (ImageNet features, no training) the patches of its true defect are
    farther from the good images than the rest of the image."""
    good, defect, mask = _good_and_defective()
    bank = GoodPatches(lite0, Images(good), range(len(good)), size=10 ** 9)
    assert len(bank.bank) == len(good) * (SIZE[0] // 8) * (SIZE[1] // 8)
    scale = float(bank.bank.norm(dim=1).mean())  # about 43: float32 distances err ~1e-3 of it
    assert float(bank.distance(good[2][None]).abs().max()) < 2e-3 * scale
    dist = bank.distance(defect[None])[0].numpy()
    assert dist.shape == SIZE
    assert dist[mask].mean() > 1.5 * dist[~mask].mean()  # 40.4 against 24.4
    near = np.argwhere(dist == dist.max())[0]
    ys, xs = np.nonzero(mask)
    assert abs(near[0] - ys.mean()) < 40  # the farthest patch lies at the defect


def test_the_bank_is_built_on_first_use(lite0) -> None:
    """A stage that reuses stored masks never reads the good images."""
    class Unread(Images):
        def __getitem__(self, i: int) -> Sample:
            raise AssertionError("a good image was read")

    patches = GoodPatches(lite0, Unread([]), [0, 1])
    with pytest.raises(AssertionError, match="was read"):
        patches.distance(torch.zeros(1, 1, *SIZE))


def test_the_distance_is_the_nearest_bank_row_by_brute_force(lite0, monkeypatch) -> None:
    """Oracle: the nearest bank row by float64 NumPy over every row, the query cut in blocks."""
    good, defect, _ = _good_and_defective()
    monkeypatch.setattr(good_patches, "BLOCK", 37)
    bank = GoodPatches(lite0, Images(good), range(len(good)), size=500, seed=3)
    assert len(bank.bank) == 500
    f = patch_features(lite0, defect[None], bank.layers)[0]
    q = f.permute(1, 2, 0).reshape(-1, f.shape[0]).double().numpy()
    b = bank.bank.double().numpy()
    want = np.sqrt(((q[:, None] - b[None]) ** 2).sum(-1)).min(1).reshape(f.shape[1:])
    grid = F.interpolate(torch.from_numpy(want)[None, None].float(), size=SIZE,
                         mode="bilinear", align_corners=False)[0, 0]
    assert torch.allclose(bank.distance(defect[None])[0], grid, atol=1e-3)


def test_the_prior_keeps_what_the_map_and_the_distance_both_mark() -> None:
    class Distance:
        def distance(self, images: torch.Tensor) -> torch.Tensor:
            d = torch.zeros(len(images), 4, 6)
            d[:, :, 3:] = 2.0  # only the right half is unlike the good images
            return d

    def cam(images: torch.Tensor, targets: object = 1) -> torch.Tensor:
        m = torch.zeros(len(images), 4, 6)
        m[:, 1, 1], m[:, 1, 4], m[:, 2, 5] = 0.9, 0.6, 0.3  # a peak on the left
        return m

    out = with_good_prior(cam, Distance())(torch.zeros(2, 1, 4, 6))
    assert out.shape == (2, 4, 6)
    assert float(out[:, :, :3].abs().max()) == 0.0  # the map's peak where good images agree
    assert torch.allclose(out[0, 1, 4], torch.tensor(1.0))  # rescaled to [0, 1]
    assert torch.allclose(out[0, 2, 5], torch.tensor(0.5))


def test_the_epoch_is_chosen_on_the_map_alone_and_the_labels_take_the_prior(tmp_path) -> None:
    """The epoch choice scores the classifier's map alone (the area of the masks a run without
    the prior writes), so both runs share one classifier stage; the labels written with
    ``cam.good_prior`` differ from those without it."""
    base = {"output": str(tmp_path / "a"), "device": "cpu", "data.size": [64, 160],
            "classifier.epochs": 2, "classifier.samples_per_epoch": 16,
            "classifier.keep_epoch": "pseudo_area", "classifier.keep_tolerance": 1.0,
            "cam.pseudo_threshold": "otsu2"}
    prior = Engine(load_config(TINY_CFG, {**base, "cam.good_prior": True}), progress=False,
                   log=lambda s: None)
    res = prior.train_classifier()[0]
    prior.pseudo_labels([0])
    assert prior.pseudo_dir(0).name.endswith("-gp-otsu2")

    def shares(engine: Engine) -> list[float]:
        items = read_json(engine.pseudo_dir(0) / "manifest.json")["images"]
        return [float((np.asarray(Image.open(engine.pseudo_dir(0) / it["mask"])) > 0).mean())
                for it in items if it["label"] == 1]

    import shutil
    logs: list[str] = []
    plain = Engine(load_config(TINY_CFG, {**base, "output": str(tmp_path / "b")}), progress=False,
                   log=logs.append)
    shutil.copytree(prior.fold_dir(0) / "classifier", plain.fold_dir(0) / "classifier")
    plain.pseudo_labels([0])
    assert not any("classifier ..." in line for line in logs)  # the stored choice is its own
    assert not plain.pseudo_dir(0).name.endswith("-gp-otsu2")
    kept = res.epoch_choice
    assert float(np.mean(shares(plain))) == pytest.approx(kept["areas"][str(kept["epoch"])],
                                                          rel=1e-12)
    assert shares(plain) != pytest.approx(shares(prior), rel=1e-6)


def test_the_run_report_names_the_prior_in_the_pseudo_label_row() -> None:
    from racam.report.run_report import pseudo_label_options

    assert "`cam.good_prior`" in pseudo_label_options(load_config("folder-example",
                                                                  {"cam.good_prior": True}))
    assert pseudo_label_options(load_config("folder-example")) == ""
    assert pseudo_label_options(load_config(TINY_CFG)) == ""
