"""Test-time augmentation of heat maps: the mean of the maps of rescaled and flipped inputs.

``tta_cam(cam, scales=(2.0,), flips=("h",))`` wraps a heat-map callable ``cam(images,
targets=...)``: for each scale it resizes the input (bilinear; scale 1 leaves it as it is) and
computes the map of that input and of each of its flips (``"h"``: left-right, ``"v"``:
top-bottom), each flipped back and resized back to the input size (bilinear); the result is the
mean of these ``len(scales) * (1 + len(flips))`` maps, so it stays in [0, 1]. The classifier is
fully convolutional, so any scale fits it. ``scales=(2.0,)`` alone is the map of the input
enlarged twice, which on KolektorSDD's defective training images marked the defects far better
than the map at the input size (docs/results.md, "pseudo-label levers on training images").
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from racam.pseudo.heatmaps import CamFn

#: flip names and the dimension each one reverses, of ``(B, C, H, W)`` images and of
#: ``(B, H, W)`` maps alike
FLIP_DIMS = {"h": -1, "v": -2}


def check_tta(scales: Sequence[float], flips: Sequence[str]) -> None:
    """Raise ``ValueError`` naming a scale that is not > 0, an empty ``scales`` or a flip that
    is not ``h``/``v``."""
    bad = [f for f in flips if f not in FLIP_DIMS]
    if bad:
        raise ValueError(f"tta flips must be among {sorted(FLIP_DIMS)}, got {bad}")
    if not scales or any(not s > 0 for s in scales):
        raise ValueError(f"tta scales must be > 0, got {list(scales)}")


def resized(images: Tensor, scale: float) -> Tensor:
    """``images`` (B, C, H, W) resized by ``scale`` as every heat map of an enlarged input sees
    them (bilinear, sides rounded); themselves at scale 1."""
    if scale == 1.0:
        return images
    height, width = images.shape[-2:]
    size = (max(1, round(height * scale)), max(1, round(width * scale)))
    return F.interpolate(images.float(), size=size, mode="bilinear", align_corners=False)


def tta_cam(cam: CamFn, scales: Sequence[float] = (1.0,), flips: Sequence[str] = ()) -> CamFn:
    """``cam`` averaged over the inputs resized by each of ``scales`` and, at each scale, the
    plain input and each flip of ``flips`` (see the module docstring); ``cam`` itself for
    ``scales=(1.0,), flips=()``."""
    check_tta(scales, flips)
    scales, flips = tuple(float(s) for s in scales), tuple(flips)
    if scales == (1.0,) and not flips:
        return cam

    def one(images: Tensor, targets: object, flip: str | None) -> Tensor:
        if flip is None:
            return cam(images, targets=targets).detach().float()
        dim = FLIP_DIMS[flip]  # the same axis of (B, C, H, W) images and (B, H, W) maps
        return torch.flip(cam(torch.flip(images, dims=(dim,)), targets=targets).detach().float(),
                          dims=(dim,))

    def averaged(images: Tensor, targets: object = 1) -> Tensor:
        height, width = images.shape[-2:]
        total: Tensor | None = None
        for s in scales:
            x = resized(images, s)
            for flip in (None, *flips):
                maps = one(x, targets, flip)
                if s != 1.0:
                    maps = F.interpolate(maps[:, None], size=(height, width), mode="bilinear",
                                         align_corners=False)[:, 0]
                total = maps if total is None else total + maps
        assert total is not None  # scales is not empty (check_tta)
        return (total / (len(scales) * (1 + len(flips)))).clamp_(0.0, 1.0)

    return averaged


__all__ = ["FLIP_DIMS", "check_tta", "resized", "tta_cam"]
