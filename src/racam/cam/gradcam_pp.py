"""Grad-CAM++ (Chattopadhay et al. 2018), in grad-cam's closed form (paper Eq. 19)."""

from __future__ import annotations

import torch
from torch import Tensor

from racam.cam.base import GradientCAM, weighted_sum

EPS = 1e-6


class GradCAMPlusPlus(GradientCAM):
    """Grad-CAM++ with ``g = dy/dA``::

        alpha = g^2 / (2 g^2 + sum_ij(A) g^3 + 1e-6)    (0 where g = 0)
        w_k   = sum_ij alpha * ReLU(g),   map = ReLU(sum_k w_k A_k)
    """

    name = "gradcam++"
    display_name = "Grad-CAM++"

    def layer_map(self, a: Tensor, g: Tensor) -> Tensor:
        g2 = g * g
        sum_a = a.sum(dim=(2, 3), keepdim=True)
        alpha = g2 / (2 * g2 + sum_a * g2 * g + EPS)
        alpha = torch.where(g != 0, alpha, torch.zeros((), dtype=g.dtype, device=g.device))
        return weighted_sum((alpha * g.clamp_min(0)).sum(dim=(2, 3)), a)
