"""Test-time augmentation of heat maps (racam.pseudo.tta) against maps worked out with numpy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import Tensor

from racam.pseudo.tta import images_per_pass, tta_cam


def ramp_cam(images: Tensor, targets: object = 1) -> Tensor:
    """A map that is not flip-invariant: the first channel times a left-to-right and
    top-to-bottom ramp (x + 2 y) / (W + 2 H), so it stays in [0, 1]."""
    _, _, h, w = images.shape
    y = torch.arange(h, dtype=torch.float32)[:, None]
    x = torch.arange(w, dtype=torch.float32)[None, :]
    return images[:, 0].float() * (x + 2 * y) / (w + 2 * h)


def test_flips_average_the_flipped_back_maps() -> None:
    """numpy: the map of the flipped image is image[::-1] * ramp; flipped back it is
    image * ramp[::-1]; the mean over plain, h and v is image * (r + r_h + r_v) / 3."""
    rng = np.random.default_rng(0)
    img = rng.random((2, 1, 5, 7)).astype(np.float32)
    y, x = np.mgrid[0:5, 0:7].astype(np.float32)
    ramp = (x + 2 * y) / (7 + 2 * 5)
    want = img[:, 0] * (ramp + ramp[:, ::-1] + ramp[::-1, :]) / 3
    got = tta_cam(ramp_cam, flips=("h", "v"))(torch.from_numpy(img), targets=1)
    assert got.shape == (2, 5, 7)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-6, atol=1e-7)


def test_scales_call_the_map_at_each_size_and_average() -> None:
    """A map that is the constant (its input height) / 100: the mean of 0.10, 0.15, 0.20 for
    scales 1, 1.5, 2 of a 10 x 6 input, at the input's size; the 3 images in one pass at scale
    1 and one by one at the enlarged scales (``images_per_pass``)."""
    sizes: list[tuple[int, int]] = []

    def height_cam(images: Tensor, targets: object = 1) -> Tensor:
        sizes.append((images.shape[-2], images.shape[-1]))
        return torch.full((images.shape[0], *images.shape[-2:]), images.shape[-2] / 100)

    got = tta_cam(height_cam, scales=(1.0, 1.5, 2.0))(torch.rand(3, 1, 10, 6))
    assert sizes == [(10, 6)] + [(15, 9)] * 3 + [(20, 12)] * 3
    assert got.shape == (3, 10, 6)
    np.testing.assert_allclose(got.numpy(), np.full((3, 10, 6), 0.15), rtol=1e-6)
    sizes.clear()  # scale 2 alone, with and without the left-right flip: 2 maps at 20 x 12
    got = tta_cam(height_cam, scales=(2.0,), flips=("h",))(torch.rand(1, 1, 10, 6))
    assert sizes == [(20, 12), (20, 12)]
    np.testing.assert_allclose(got.numpy(), np.full((1, 10, 6), 0.20), rtol=1e-6)


def test_scale_two_of_a_pointwise_map_is_the_enlarged_map_shrunk_back() -> None:
    """Scale 2 of ``cam(x) = x``: the input enlarged (bilinear) then shrunk back (bilinear).
    numpy oracle of half-pixel-centred bilinear sampling: enlarging by 2 puts the output pixel
    centres at input coordinates (j + 0.5) / 2 - 0.5, and shrinking by 2 averages each 2 x 2
    block of those (the sampling points fall half-way between pixels)."""
    rng = np.random.default_rng(1)
    img = rng.random((1, 1, 6, 8)).astype(np.float32)

    def enlarge_1d(a: np.ndarray, axis: int) -> np.ndarray:
        n = a.shape[axis]
        pos = np.clip((np.arange(2 * n) + 0.5) / 2 - 0.5, 0, n - 1)
        lo = np.floor(pos).astype(int)
        hi = np.minimum(lo + 1, n - 1)
        w = (pos - lo).reshape([-1 if i == axis else 1 for i in range(a.ndim)])
        return np.take(a, lo, axis=axis) * (1 - w) + np.take(a, hi, axis=axis) * w

    big = enlarge_1d(enlarge_1d(img[0, 0], 0), 1)
    want = big.reshape(6, 2, 8, 2).mean(axis=(1, 3))
    got = tta_cam(lambda x, targets=1: x[:, 0], scales=(2.0,))(torch.from_numpy(img))
    np.testing.assert_allclose(got[0].numpy(), want, rtol=1e-5, atol=1e-6)


@pytest.mark.data
def test_real_image_flips_of_a_pointwise_map_change_nothing(ksdd_root: Path) -> None:
    """On a real KolektorSDD image a map that depends on each pixel alone is flip-equivariant,
    so flipping, mapping and flipping back gives the plain map exactly."""
    grey = np.asarray(Image.open(ksdd_root / "kos01" / "Part0.jpg").convert("L"), np.float32)
    img = torch.from_numpy(grey[None, None, ::4, ::4] / 255.0)

    def square(images: Tensor, targets: object = 1) -> Tensor:
        return images[:, 0] ** 2

    got = tta_cam(square, flips=("h", "v"))(img)
    np.testing.assert_allclose(got.numpy(), (grey[::4, ::4] / 255.0)[None] ** 2, rtol=1e-6)


def test_nothing_asked_returns_the_map_itself_and_bad_options_are_named() -> None:
    assert tta_cam(ramp_cam) is ramp_cam
    with pytest.raises(ValueError, match="flips"):
        tta_cam(ramp_cam, flips=("d",))
    with pytest.raises(ValueError, match="scales"):
        tta_cam(ramp_cam, scales=(0.0,))
    with pytest.raises(ValueError, match="scales"):
        tta_cam(ramp_cam, scales=())


def test_config_keys_name_the_pseudo_label_folder_and_are_checked() -> None:
    """``cam.scales`` / ``cam.flips`` at their defaults leave the pseudo-label
    folder name as it was (earlier runs stay valid); set, they add ``-s<scales><flips>``."""
    import dataclasses

    from racam.config import load_config, without_later_defaults
    from racam.errors import ConfigError
    from racam.layout import pseudo_key

    base = {"cam.method": "racam", "cam.delta": 10, "cam.guided_radius": 16,
            "cam.guided_eps": 1e-4, "cam.pseudo_threshold": "otsu2"}
    plain = load_config("ksdd-cpu", {**base, "cam.scales": [1.0]})
    assert pseudo_key(plain) == "racam-d10-g16e0.0001-otsu2"
    stage_part = without_later_defaults("cam", dataclasses.asdict(plain.cam))  # stage keys
    assert not {"scales", "flips"} & set(stage_part)
    cfg = load_config("ksdd-cpu", {**base, "cam.scales": [1, 2], "cam.flips": ["h"]})
    assert pseudo_key(cfg) == "racam-d10-g16e0.0001-s1_2h-otsu2"
    with pytest.raises(ConfigError, match="cam.flips"):
        load_config("ksdd-cpu", {"cam.flips": ["d"]})
    with pytest.raises(ConfigError, match="cam.scales"):
        load_config("ksdd-cpu", {"cam.scales": [-1.0]})
    assert pseudo_key(load_config("ksdd-cpu")).endswith("-s1_1.5_2-otsu2")  # the config's own



def test_pipeline_pseudo_labels_use_the_scaled_maps(trained_run: Path, tmp_path: Path) -> None:
    """``cam.scales: [2.0]`` reaches the pipeline: the run's classifier is reused, the
    pseudo-labels go to their own folder (``-s2``), the manifest records the scales, and the
    masks differ from the run's plain (scale 1) pseudo-labels of the same images."""
    import dataclasses
    import json
    import shutil

    from racam.config import load_config
    from racam.engine import Engine
    from racam.layout import pseudo_key

    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    plain_cfg = dataclasses.replace(load_config(run / "config.json"), output=str(run))
    cfg = dataclasses.replace(plain_cfg, cam=dataclasses.replace(plain_cfg.cam,
                                                                 scales=[2.0]))
    assert pseudo_key(cfg) == pseudo_key(plain_cfg) + "-s2"
    plain = Engine(plain_cfg, progress=False, log=lambda _: None).pseudo_dir(0)
    engine = Engine(cfg, progress=False, log=lambda _: None)
    clf_before = sorted((run / "fold0" / "classifier").rglob("*.pt"))
    engine.pseudo_labels([0])
    scaled = engine.pseudo_dir(0)
    assert scaled != plain and (plain / "manifest.json").is_file()
    assert json.loads((scaled / "manifest.json").read_text())["scales"] == [2.0]
    assert sorted((run / "fold0" / "classifier").rglob("*.pt")) == clf_before
    masks = sorted(p.relative_to(scaled) for p in scaled.rglob("*.png"))
    assert masks == sorted(p.relative_to(plain) for p in plain.rglob("*.png"))
    differ = [m for m in masks if not np.array_equal(np.asarray(Image.open(scaled / m)),
                                                     np.asarray(Image.open(plain / m)))]
    assert differ, "scale 2 gave the same masks as scale 1 on every image"


def test_every_heat_map_of_the_run_uses_the_scales(trained_run: Path, tmp_path: Path) -> None:
    """``cam.scales`` reaches every heat map, not only the pseudo-labels: the run's heat-map
    callable is the plain method's map of the enlarged input (an independent computation with
    the method built directly), and the test-image scores go to their own file and key, so the
    stored scale-1 score is neither reused nor overwritten."""
    import dataclasses
    import shutil

    import torch.nn.functional as F

    from racam.cam.registry import build_cam, cam_options, get_method
    from racam.config import load_config
    from racam.engine import Engine
    from racam.models import classifier_target_layers

    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    plain_cfg = dataclasses.replace(load_config(run / "config.json"), output=str(run))
    cfg = dataclasses.replace(plain_cfg, cam=dataclasses.replace(plain_cfg.cam, scales=[2.0]))
    quiet = {"progress": False, "log": lambda _: None}
    plain_engine, engine = Engine(plain_cfg, **quiet), Engine(cfg, **quiet)
    method = "gradcam"
    model = engine.model(0)
    stages = classifier_target_layers(model)
    layers = [stages[s] for s in get_method(method).default_layers]
    direct = build_cam(method, model, target_layers=layers,
                       **cam_options(method, delta=cfg.cam.delta, fusion=cfg.cam.fusion))
    x = torch.stack([engine.data(0).test[i].image for i in range(2)])
    big = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
    want = F.interpolate(direct(big, targets=1).detach().float()[:, None],
                         size=x.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
    got = engine.cam(0, method)(x, targets=1)
    assert torch.allclose(got, want, atol=1e-5)
    assert not torch.allclose(plain_engine.cam(0, method)(x, targets=1), want, atol=1e-3)
    path, key = engine.heatmaps.path_key(0, "racam")
    plain_path, plain_key = plain_engine.heatmaps.path_key(0, "racam")
    assert path.name == plain_path.name.replace(".json", "-s2.json")
    assert key["scales"] == [2.0] and "scales" not in plain_key and "flips" not in key


def test_a_config_or_run_folder_with_the_old_scale_keys_still_loads(tmp_path: Path,
                                                                     capsys) -> None:
    """``cam.pseudo_scales`` / ``cam.pseudo_flips`` (the names before every heat map used
    them) are read as ``cam.scales`` / ``cam.flips`` with one deprecation line, and a stage
    key stored under the old names compares equal to today's."""
    import yaml

    from racam import compat
    from racam.config import load_config

    path = tmp_path / "old.yaml"
    path.write_text(yaml.safe_dump({"name": "old", "cam": {"pseudo_scales": [2.0],
                                                           "pseudo_flips": ["h"]}}))
    cfg = load_config(str(path))
    assert (cfg.cam.scales, cfg.cam.flips) == ([2.0], ["h"])
    err = capsys.readouterr().err
    assert "cam.pseudo_scales -> cam.scales" in err and err.count("\n") == 1
    now = {"cam": {"method": "racam", "scales": [2.0]}}
    assert compat.comparable({"cam": {"method": "racam", "pseudo_scales": [2.0]}}, now) == now
    assert compat.comparable({"cam": {"method": "racam", "pseudo_scales": [1.0]}},
                             now) != now


def test_the_run_report_says_what_the_heat_maps_are_averaged_over() -> None:
    """The report's header names the input scales and flips of the heat maps where they are not
    the plain input, so a run with ``cam.scales`` is not read as one of plain maps."""
    from racam.config import load_config
    from racam.report.run_report import heatmap_options

    assert heatmap_options(load_config("folder-example")) == ""
    many = load_config("folder-example", {"cam.scales": [1.0, 1.5, 2.0], "cam.flips": ["h"]})
    assert heatmap_options(many) == ", mean of the maps at input scales 1, 1.5, 2, flips h"
    assert heatmap_options(load_config("ksdd-cpu")) == (
        ", mean of the maps at input scales 1, 1.5, 2")


def test_enlarged_inputs_go_through_in_passes_of_the_batchs_pixels() -> None:
    """A batch of 4 at scales 1, 1.5, 2: one pass of 4 at scale 1, then passes of
    floor(4 / s**2) = 1 image (4 * 1.5**2 = 9 and 4 * 4 = 16 pixel units would not fit 4), and
    per-image targets follow their image. The maps equal the unsplit computation: each image's
    own constant (its mean times the target) at every scale."""
    calls: list[tuple[int, object]] = []

    def mean_cam(images: Tensor, targets: object = 1) -> Tensor:
        calls.append((images.shape[0], targets))
        t = torch.as_tensor(targets, dtype=torch.float32).reshape(-1, 1, 1)
        means = images.mean(dim=(1, 2, 3))[:, None, None]
        return (means * t).expand(-1, *images.shape[-2:]).clone()

    images = torch.stack([torch.full((1, 8, 6), v) for v in (0.1, 0.2, 0.3, 0.4)])
    targets = torch.tensor([1.0, 0.5, 1.0, 0.5])
    got = tta_cam(mean_cam, scales=(1.0, 1.5, 2.0))(images, targets)
    assert [n for n, _ in calls] == [4, 1, 1, 1, 1, 1, 1, 1, 1]
    assert [float(t[0]) for _, t in calls[1:5]] == [1.0, 0.5, 1.0, 0.5]  # type: ignore[index]
    want = np.array([0.1, 0.1, 0.3, 0.2])[:, None, None] * np.ones((4, 8, 6))
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-6)
    assert images_per_pass(4, 1.0) == 4 and images_per_pass(4, 0.5) == 4
    assert images_per_pass(9, 1.5) == 4 and images_per_pass(8, 2.0) == 2
    assert images_per_pass(3, 2.0) == 1
