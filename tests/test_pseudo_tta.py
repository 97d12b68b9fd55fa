"""Test-time augmentation of heat maps (racam.pseudo.tta) against maps worked out with numpy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import Tensor

from racam.pseudo.tta import tta_cam


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
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-6, atol=1e-7)


def test_scales_call_the_map_at_each_size_and_average() -> None:
    """A map that is the constant (its input height) / 100: the mean of 0.10, 0.15, 0.20 for
    scales 1, 1.5, 2 of a 10 x 6 input, at the input's size; each size passed once."""
    sizes: list[tuple[int, int]] = []

    def height_cam(images: Tensor, targets: object = 1) -> Tensor:
        sizes.append((images.shape[-2], images.shape[-1]))
        return torch.full((images.shape[0], *images.shape[-2:]), images.shape[-2] / 100)

    got = tta_cam(height_cam, scales=(1.5, 2.0))(torch.rand(3, 1, 10, 6))
    assert sizes == [(10, 6), (15, 9), (20, 12)]
    assert got.shape == (3, 10, 6)
    np.testing.assert_allclose(got.numpy(), np.full((3, 10, 6), 0.15), rtol=1e-6)


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
