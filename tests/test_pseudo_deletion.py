"""The label-free deletion check of pseudo-labels (racam.pseudo.deletion): blurring away the
pixels that hold a defect removes what a classifier sees; blurring a box elsewhere does not."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from racam.data.sample import Sample
from racam.pseudo.deletion import blurred, deletion_rows, random_box, summarise


class SpotDetector(nn.Module):
    """p(defect) from the largest local contrast |x - local mean|: a dark spot on a flat
    background gives a high logit, a flat image a low one (an oracle with a known answer)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        local = nn.functional.avg_pool2d(x, 5, stride=1, padding=2, count_include_pad=False)
        contrast = (x - local).abs().amax(dim=(1, 2, 3))
        score = 40 * (contrast - 0.1)
        return torch.stack([-score, score], dim=1)


class Images(torch.utils.data.Dataset):
    """Images with their pseudo-label as ``mask`` (as PseudoLabelDataset gives them): an
    ``size`` x ``size`` square at each of ``corners``."""

    def __init__(self, images: list[torch.Tensor], corners: list[tuple[int, int]],
                 size: int) -> None:
        self.images, self.corners, self.size = images, corners, size

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> Sample:
        mask = torch.zeros(48, 64, dtype=torch.bool)
        y, x = self.corners[i]
        mask[y:y + self.size, x:x + self.size] = True
        return Sample(image=self.images[i], label=1, id=f"img{i}", original_size=(64, 48),
                      mask=mask)


def _spot_image(y: int, x: int) -> torch.Tensor:
    img = torch.full((1, 48, 64), 0.5)
    img[:, y:y + 4, x:x + 4] = 0.0
    return img


def test_deleting_the_defect_removes_it_and_a_box_elsewhere_does_not() -> None:
    spots = [(6, 6), (30, 40), (20, 50)]
    images = [_spot_image(*s) for s in spots]
    model = SpotDetector().eval()
    on = deletion_rows(model, Images(images, [(y - 2, x - 2) for y, x in spots], 8), [0, 1, 2])
    off = deletion_rows(model, Images(images, [(38, 0)] * 3, 8), [0, 1, 2])
    for area, p_image, p_deleted, _ in on:
        assert area == pytest.approx(64 / (48 * 64))
        assert p_image > 0.99 and p_deleted < 0.5
    assert all(p_deleted > 0.99 for _, _, p_deleted, _ in off)  # the mask missed the spot
    check = summarise(on)
    assert check is not None and check.images == 3 and check.p_deleted < check.p_image


def test_rows_do_not_depend_on_batching() -> None:
    rng = np.random.default_rng(1)
    ds = Images([torch.from_numpy(rng.random((1, 48, 64), dtype=np.float32)) for _ in range(5)],
                [(int(rng.integers(0, 30)), int(rng.integers(0, 40))) for _ in range(5)], 12)
    model = SpotDetector().eval()
    one = deletion_rows(model, ds, range(5), batch_size=1)
    three = deletion_rows(model, ds, range(5), batch_size=3)
    assert np.allclose(one, three, atol=1e-6)
    assert summarise([]) is None


def test_random_box_area_and_blur_keeps_the_mean() -> None:
    box = random_box((100, 200), 0.09, np.random.default_rng(0))
    assert box.sum() == 30 * 60
    x = torch.rand(2, 3, 40, 40)
    b = blurred(x)
    assert b.shape == x.shape
    assert b.std() < x.std() / 3  # the texture is gone
    assert abs(float(b.mean() - x.mean())) < 0.02  # the colours stay


@pytest.mark.parametrize("shape", [(1, 1, 40, 40), (2, 3, 33, 71), (1, 3, 96, 64)])
def test_blur_is_a_box_mean_of_an_eighth_of_the_short_side_twice(shape: tuple[int, ...]) -> None:
    """Oracle: scipy's box filter, edges replicated ("nearest"), applied twice over H and W."""
    from scipy.ndimage import uniform_filter

    x = torch.rand(*shape, generator=torch.Generator().manual_seed(0))
    k = max(3, (min(shape[-2:]) // 8) | 1)
    want = x.double().numpy()
    for _ in range(2):
        want = uniform_filter(want, size=(1, 1, k, k), mode="nearest")
    assert np.allclose(blurred(x).numpy(), want, atol=1e-5)
