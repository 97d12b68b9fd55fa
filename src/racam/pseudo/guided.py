"""Guided-filter refinement of heat maps (He, Sun and Tang, "Guided Image Filtering", 2010).

A heat map ``p`` is filtered with the image ``I`` (grey, scaled to [0, 1] per image) as guide.
In every ``(2r+1) x (2r+1)`` window ``w`` the output is a linear function of the guide,
``q = a_w I + b_w``, fitted to ``p`` by ridge regression::

    a_w = cov_w(I, p) / (var_w(I) + eps),    b_w = mean_w(p) - a_w mean_w(I)

and each pixel averages the coefficients of the windows that cover it:
``q = mean(a) I + mean(b)``. Where the image is flat (``var_w(I) << eps``) the map is only
smoothed; where the image has an edge (``var_w(I) >> eps``) the map follows it, so a blob around a
thin crack shrinks towards the crack. Windows are cut at the image border (the mean is over the
pixels inside the image).
"""

from __future__ import annotations

from collections.abc import Callable

import torch.nn.functional as F
from torch import Tensor


def box_mean(x: Tensor, radius: int) -> Tensor:
    """Mean of ``x`` ``(B, H, W)`` over each ``(2r+1) x (2r+1)`` window, cut at the border."""
    k = 2 * radius + 1
    return F.avg_pool2d(x[:, None], k, stride=1, padding=radius, count_include_pad=False)[:, 0]


def guide_from_images(images: Tensor) -> Tensor:
    """Grey guide ``(B, H, W)`` in [0, 1]: channel mean of ``images`` ``(B, C, H, W)``, min-max
    scaled per image (a constant image gives zeros)."""
    grey = images.float().mean(dim=1)
    lo = grey.amin(dim=(1, 2), keepdim=True)
    hi = grey.amax(dim=(1, 2), keepdim=True)
    return (grey - lo) / (hi - lo).clamp_min(1e-12)


def guided_filter(maps: Tensor, guide: Tensor, radius: int, eps: float) -> Tensor:
    """Guided filter of ``maps`` ``(B, H, W)`` by ``guide`` ``(B, H, W)`` (see module), clamped
    to [0, 1]."""
    if radius < 1 or eps <= 0:
        raise ValueError(f"guided filter needs radius >= 1 and eps > 0, got {radius}, {eps}")
    p, g = maps.float(), guide.float()
    mean_g, mean_p = box_mean(g, radius), box_mean(p, radius)
    cov = box_mean(g * p, radius) - mean_g * mean_p
    var = box_mean(g * g, radius) - mean_g * mean_g
    a = cov / (var + eps)
    b = mean_p - a * mean_g
    return (box_mean(a, radius) * g + box_mean(b, radius)).clamp_(0.0, 1.0)


def guided_refiner(radius: int, eps: float) -> Callable[[Tensor, Tensor], Tensor]:
    """``refine(maps, images)`` for :func:`racam.pseudo.heatmaps.iter_heatmaps`."""
    def refine(maps: Tensor, images: Tensor) -> Tensor:
        return guided_filter(maps, guide_from_images(images).to(maps.device), radius, eps)
    return refine


__all__ = ["box_mean", "guide_from_images", "guided_filter", "guided_refiner"]
