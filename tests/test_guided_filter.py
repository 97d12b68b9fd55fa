"""The guided filter against a brute-force reading of He et al.'s definition, and its edge-keeping
behaviour."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import TINY_CFG

from racam.pseudo.guided import guide_from_images, guided_filter


def brute_force(p: np.ndarray, g: np.ndarray, r: int, eps: float) -> np.ndarray:
    """Window by window, with loops: a, b per window (cut at the border), then the mean of the
    coefficients of the windows that cover each pixel."""
    h, w = p.shape
    a = np.zeros_like(p)
    b = np.zeros_like(p)
    for y in range(h):
        for x in range(w):
            win = (slice(max(0, y - r), y + r + 1), slice(max(0, x - r), x + r + 1))
            gi, pi = g[win].ravel(), p[win].ravel()
            cov = np.mean(gi * pi) - gi.mean() * pi.mean()
            a[y, x] = cov / (gi.var() + eps)
            b[y, x] = pi.mean() - a[y, x] * gi.mean()
    q = np.zeros_like(p)
    for y in range(h):
        for x in range(w):
            win = (slice(max(0, y - r), y + r + 1), slice(max(0, x - r), x + r + 1))
            q[y, x] = a[win].mean() * g[y, x] + b[win].mean()
    return np.clip(q, 0.0, 1.0)


@pytest.mark.parametrize(("r", "eps"), [(1, 1e-3), (2, 0.1), (4, 1e-2)])
def test_matches_brute_force(r: int, eps: float) -> None:
    rng = np.random.default_rng(r)
    p = rng.random((2, 11, 17))
    g = rng.random((2, 11, 17))
    got = guided_filter(torch.from_numpy(p), torch.from_numpy(g), r, eps).numpy()
    for k in range(2):
        np.testing.assert_allclose(got[k], brute_force(p[k], g[k], r, eps), atol=1e-5)


def test_follows_the_guide_edge() -> None:
    """A map blurred across a step edge of the guide jumps at the edge after filtering with a
    small eps (it follows the guide); with a large eps it is only smoothed (a smaller jump)."""
    x = torch.arange(40, dtype=torch.float64)
    guide = (x >= 20).double().expand(30, 40)[None]
    blurred = torch.sigmoid((x - 19.5) / 4).expand(30, 40)[None]

    def jump(m: torch.Tensor) -> float:
        return float(m[0, 15, 20] - m[0, 15, 19])

    assert jump(guided_filter(blurred, guide, 3, 1e-4)) > 3 * jump(blurred)
    assert jump(guided_filter(blurred, guide, 3, 10.0)) < jump(blurred)


def test_guide_is_grey_in_unit_range() -> None:
    images = torch.randn(3, 3, 8, 9)
    images[2] = 5.0  # constant image: zeros, not NaN
    guide = guide_from_images(images)
    assert guide.shape == (3, 8, 9)
    assert torch.isfinite(guide).all()
    assert guide[:2].amin() == 0 and guide[:2].amax() == 1
    assert (guide[2] == 0).all()
    np.testing.assert_allclose(guide[0].argmax(), images[0].mean(0).argmax())


def test_rejects_bad_parameters() -> None:
    m = torch.rand(1, 5, 5)
    with pytest.raises(ValueError, match="radius"):
        guided_filter(m, m, 0, 0.1)
    with pytest.raises(ValueError, match="eps"):
        guided_filter(m, m, 2, 0.0)


def test_pseudo_labels_are_cut_from_the_refined_maps(tmp_path) -> None:
    """``write_pseudo_labels(refine=...)`` filters each map at the model's input size with its
    own image as guide, then resizes and cuts it; on real KolektorSDD images the masks are the
    Otsu masks of the guided filter's output (computed here by the brute-force filter)."""
    from PIL import Image

    from racam.data import KolektorSDD
    from racam.pseudo.guided import guided_refiner
    from racam.pseudo.heatmaps import to_original_size
    from racam.pseudo.labels import mask_filename, write_pseudo_labels
    from racam.pseudo.otsu import otsu_mask
    from racam.stages.folds import SAMPLE_ROOT

    ds = KolektorSDD(SAMPLE_ROOT, fold=0, split="train", size=(24, 64), channels=1,
                     split_file="demo_split.pyb")
    defective = [i for i, y in enumerate(ds.labels) if y == 1][:3]
    g = torch.Generator().manual_seed(0)
    maps = torch.rand(len(defective), 64, 24, generator=g)

    class FixedCam:
        pos = 0

        def __call__(self, images: torch.Tensor, targets=None) -> torch.Tensor:
            out = maps[self.pos:self.pos + len(images)]
            self.pos += len(images)
            return out

    sub = torch.utils.data.Subset(ds, defective)
    sub.labels, sub.records = [1] * 3, [ds.records[i] for i in defective]  # type: ignore[attr-defined]
    write_pseudo_labels(FixedCam(), sub, tmp_path, meta={}, batch_size=2, progress=False,
                        refine=guided_refiner(2, 1e-3))
    for k, i in enumerate(defective):
        s = ds[i]
        guide = guide_from_images(s.image[None])[0].double().numpy()
        want = torch.from_numpy(brute_force(maps[k].double().numpy(), guide, 2, 1e-3)).float()
        want_mask = otsu_mask(to_original_size(want[None], s.original_size))[0].numpy()
        got = np.array(Image.open(tmp_path / "masks" / mask_filename(s.id))) > 0
        assert got.shape == want_mask.shape and got.any()
        assert (got != want_mask).mean() < 1e-3  # float32 against float64 at Otsu's bin edges


def test_guided_settings_name_the_pseudo_labels_and_enter_their_key() -> None:
    from racam.config import load_config
    from racam.engine import Engine
    from racam.layout import pseudo_key

    plain = load_config(TINY_CFG, {"cam.pseudo_threshold": "otsu2"})
    guided = load_config(TINY_CFG, {"cam.pseudo_threshold": "otsu2", "cam.guided_radius": 8,
                                  "cam.guided_eps": 1e-4})
    assert pseudo_key(plain) == "racam-d50-otsu2"
    assert pseudo_key(guided) == "racam-d50-g8e0.0001-otsu2"
    assert "guided_radius" not in Engine(plain).ctx.key("cam")["cam"]
    assert "guided_eps" not in Engine(load_config(TINY_CFG, {"cam.guided_eps": 0.5})).ctx.key(
        "cam")["cam"]  # no radius: eps changes nothing
    assert Engine(guided).ctx.key("cam")["cam"]["guided_radius"] == 8
