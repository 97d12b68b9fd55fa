"""Otsu thresholds against scikit-image's threshold_otsu (the oracle), on random and real maps."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from skimage.filters import threshold_otsu

from racam.pseudo import otsu_mask, otsu_threshold


def _reference(maps: torch.Tensor) -> list[float]:
    return [float(threshold_otsu(m.numpy(), nbins=256)) for m in maps]


def _minmax(x: torch.Tensor) -> torch.Tensor:
    lo = x.amin((-2, -1), keepdim=True)
    hi = x.amax((-2, -1), keepdim=True)
    return (x - lo) / (hi - lo)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_random_maps_equal_skimage(dtype: torch.dtype) -> None:
    g = torch.Generator().manual_seed(1)
    maps = [
        torch.rand(6, 31, 47, generator=g, dtype=dtype),
        torch.rand(6, 40, 24, generator=g, dtype=dtype) ** 3,  # skewed
        F.avg_pool2d(torch.rand(6, 1, 50, 30, generator=g, dtype=dtype), 5, 1, 2)[:, 0],
        # bimodal: a bright blob on a dim background, with noise
        0.2 + 0.6 * (torch.rand(6, 32, 32, generator=g, dtype=dtype) > 0.8)
        + 0.1 * torch.rand(6, 32, 32, generator=g, dtype=dtype),
    ]
    for m in maps:
        thr = otsu_threshold(m)
        assert thr.shape == (m.shape[0],) and thr.dtype == dtype
        assert thr.tolist() == _reference(m)


def test_cam_like_maps_equal_skimage() -> None:
    """Bilinear-upsampled low-resolution maps, min-max normalised, some quantised to k/255
    (many pixels exactly on bin edges): the case of real heat maps."""
    g = torch.Generator().manual_seed(2)
    small = torch.rand(8, 1, 11, 4, generator=g)
    maps = _minmax(F.interpolate(small, size=(352, 128), mode="bilinear")[:, 0])
    quantised = (maps * 255).round() / 255
    for m in (maps, quantised):
        assert otsu_threshold(m).tolist() == _reference(m)


@pytest.mark.data
def test_real_ksdd_derived_maps_equal_skimage(ksdd_root) -> None:
    """Normalised, blurred real KolektorSDD images (defective and defect-free)."""
    names = ["kos01/Part5", "kos10/Part0", "kos38/Part0", "kos50/Part4"]
    maps = []
    for n in names:
        img = np.array(Image.open(ksdd_root / f"{n}.jpg").convert("L"), dtype=np.float32) / 255
        x = torch.from_numpy(img)[None, None, :1232, :]
        maps.append(_minmax(F.avg_pool2d(x, 9, 1, 4)[0, 0]))
    batch = torch.stack(maps)
    thr = otsu_threshold(batch)
    assert thr.tolist() == _reference(batch)
    assert ((thr > 0) & (thr < 1)).all()
    assert torch.equal(otsu_mask(batch), batch > thr[:, None, None])


def test_batch_equals_one_by_one_and_mask_is_strictly_above() -> None:
    g = torch.Generator().manual_seed(3)
    maps = torch.rand(5, 20, 30, generator=g)
    thr = otsu_threshold(maps)
    for i in range(5):
        assert otsu_threshold(maps[i:i + 1])[0] == thr[i]
    assert torch.equal(otsu_mask(maps), maps > thr[:, None, None])
    assert ((thr >= 0) & (thr <= 1)).all()


def test_two_level_map_separates_the_levels() -> None:
    m = torch.full((1, 4, 6), 0.1)
    m[0, 1:3, 2:5] = 0.9
    thr = otsu_threshold(m)
    assert 0.1 <= thr.item() < 0.9
    assert torch.equal(otsu_mask(m)[0], m[0] == 0.9)
    assert thr.tolist() == _reference(m)


def test_constant_maps_give_empty_masks_never_nan() -> None:
    maps = torch.stack([torch.zeros(8, 8), torch.full((8, 8), 0.5), torch.ones(8, 8),
                        torch.rand(8, 8, generator=torch.Generator().manual_seed(4))])
    thr = otsu_threshold(maps)
    assert not torch.isnan(thr).any()
    assert thr[:3].tolist() == [0.0, 0.5, 1.0]
    assert thr[3] == threshold_otsu(maps[3].numpy(), nbins=256)
    mask = otsu_mask(maps)
    assert not mask[:3].any() and mask[3].any()


def test_bad_shape_and_non_finite_values_raise() -> None:
    with pytest.raises(ValueError, match="B, H, W"):
        otsu_threshold(torch.rand(4, 4))
    bad = torch.rand(1, 4, 4)
    bad[0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        otsu_threshold(bad)


def test_otsu2_is_skimage_otsu_of_the_otsu_foreground() -> None:
    from racam.pseudo.otsu import pseudo_mask

    g = torch.Generator().manual_seed(3)
    yy, xx = torch.meshgrid(torch.arange(96), torch.arange(64), indexing="ij")
    blob = torch.exp(-((yy - 40.0) ** 2 + (xx - 30.0) ** 2) / 300.0)
    heat = (0.7 * blob + 0.3 * torch.rand(96, 64, generator=g)).clamp(0, 1)
    t1 = threshold_otsu(heat.numpy(), nbins=256)
    fg = heat.numpy()[heat.numpy() > t1]
    t2 = threshold_otsu(fg, nbins=256)
    want = heat.numpy() > t2
    got = pseudo_mask(heat, "otsu2").numpy()
    assert (got != want).sum() <= 2  # bin-edge ties of the two histograms
    assert got.sum() < pseudo_mask(heat, "otsu").sum()  # a core inside the Otsu mask
    assert not (got & ~pseudo_mask(heat, "otsu").numpy()).any()
    two = torch.zeros(8, 8)
    two[:4] = 1.0  # two levels: the foreground is constant, so otsu2 keeps the Otsu mask
    assert torch.equal(pseudo_mask(two, "otsu2"), pseudo_mask(two, "otsu"))
    with pytest.raises(ValueError, match="otsu2"):
        pseudo_mask(heat, "median")
