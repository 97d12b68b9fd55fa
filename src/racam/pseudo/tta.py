"""Test-time augmentation of heat maps: the mean of the maps of rescaled and flipped inputs.

``tta_cam(cam, scales=(2.0,), flips=("h",))`` wraps a heat-map callable ``cam(images,
targets=...)``: for each scale it resizes the input (bilinear; scale 1 leaves it as it is) and
computes the map of that input and of each of its flips (``"h"``: left-right, ``"v"``:
top-bottom), each flipped back and resized back to the input size (bilinear); the result is the
mean of these ``len(scales) * (1 + len(flips))`` maps, so it stays in [0, 1]. The classifier is
fully convolutional, so any scale fits it. ``scales=(2.0,)`` alone is the map of the input
enlarged twice, which on KolektorSDD's defective training images marked the defects far better
than the map at the input size (docs/results.md, "pseudo-label levers on training images").

An input enlarged by ``s`` holds ``s**2`` times the pixels, and a heat map's memory grows with
them (RA-CAM on EfficientNet-Lite0, 4 inputs of 512 x 1280: 4.7 GB peak against 1.9 GB at
256 x 640). So at a scale above 1 the batch is split into passes of
:func:`images_per_pass` images, which hold at most the pixels of the whole batch at scale 1.
Each image's map is computed on its own in every method (no batch statistic), so the split
changes no value.
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


def images_per_pass(batch: int, scale: float) -> int:
    """Images of a ``batch`` whose input resized by ``scale`` holds at most the pixels of the
    whole batch at scale 1: ``floor(batch / scale**2)``, at least 1; ``batch`` for scales up
    to 1."""
    if scale <= 1.0:
        return batch
    return max(1, int(batch / scale ** 2))


def _part(targets: object, start: int, stop: int, batch: int) -> object:
    """The ``targets`` of images ``start:stop``: sliced when they hold one per image of the
    batch (a tensor or sequence of length ``batch``), else as they are (one class for all)."""
    if isinstance(targets, (Tensor, list, tuple)) and len(targets) == batch:
        return targets[start:stop]
    return targets


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

    def at_scale(images: Tensor, targets: object, s: float) -> Tensor:
        """The sum of the maps of ``images`` resized by ``s`` and of their flips, at the
        input size."""
        x = resized(images, s)
        maps = torch.stack([one(x, targets, flip) for flip in (None, *flips)]).sum(0)
        if s == 1.0:
            return maps
        return F.interpolate(maps[:, None], size=tuple(images.shape[-2:]), mode="bilinear",
                             align_corners=False)[:, 0]

    def averaged(images: Tensor, targets: object = 1) -> Tensor:
        n = images.shape[0]
        total: Tensor | None = None
        for s in scales:
            step = images_per_pass(n, s)
            maps = torch.cat([at_scale(images[i:i + step], _part(targets, i, i + step, n), s)
                              for i in range(0, n, step)])
            total = maps if total is None else total + maps
        assert total is not None  # scales is not empty (check_tta)
        return (total / (len(scales) * (1 + len(flips)))).clamp_(0.0, 1.0)

    return averaged


__all__ = ["FLIP_DIMS", "check_tta", "images_per_pass", "resized", "tta_cam"]
