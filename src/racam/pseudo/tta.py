"""Test-time augmentation of heat maps: the mean of the maps of flipped and rescaled inputs.

``tta_cam(cam, flips=("h",), scales=(1.5,))`` wraps a heat-map callable ``cam(images,
targets=...)``: besides the plain map it computes the map of each flipped input (``"h"``: left
-right, ``"v"``: top-bottom), flipped back, and of the input resized by each scale (bilinear),
resized back to the input size (bilinear); the result is the mean of all these maps, so it
stays in [0, 1]. The classifier is fully convolutional, so any scale fits it. Measured on the
defective training images of KolektorSDD in docs/results.md ("pseudo-label levers on training
images").
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


def check_tta(flips: Sequence[str], scales: Sequence[float]) -> None:
    """Raise ``ValueError`` naming a flip that is not ``h``/``v`` or a scale that is not > 0."""
    bad = [f for f in flips if f not in FLIP_DIMS]
    if bad:
        raise ValueError(f"tta flips must be among {sorted(FLIP_DIMS)}, got {bad}")
    if any(not s > 0 for s in scales):
        raise ValueError(f"tta scales must be > 0, got {list(scales)}")


def tta_cam(cam: CamFn, flips: Sequence[str] = (), scales: Sequence[float] = ()) -> CamFn:
    """``cam`` averaged over the plain input, each flip in ``flips`` and each scale in
    ``scales`` (see the module docstring); ``cam`` itself when both are empty."""
    check_tta(flips, scales)
    if not flips and not scales:
        return cam
    flips, scales = tuple(flips), tuple(float(s) for s in scales)

    def averaged(images: Tensor, targets: object = 1) -> Tensor:
        height, width = images.shape[-2:]
        total = cam(images, targets=targets).detach().float()
        for name in flips:
            dim = FLIP_DIMS[name]
            flipped = cam(torch.flip(images, dims=(dim,)), targets=targets).detach().float()
            total = total + torch.flip(flipped, dims=(dim,))  # same axis of (B, H, W) maps
        for s in scales:
            size = (max(1, round(height * s)), max(1, round(width * s)))
            big = F.interpolate(images.float(), size=size, mode="bilinear", align_corners=False)
            maps = cam(big, targets=targets).detach().float()
            total = total + F.interpolate(maps[:, None], size=(height, width), mode="bilinear",
                                          align_corners=False)[:, 0]
        return (total / (1 + len(flips) + len(scales))).clamp_(0.0, 1.0)

    return averaged


__all__ = ["FLIP_DIMS", "check_tta", "tta_cam"]
