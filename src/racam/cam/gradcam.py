"""Grad-CAM (Selvaraju et al. 2017)."""

from __future__ import annotations

from torch import Tensor

from racam.cam.base import GradientCAM, weighted_sum


class GradCAM(GradientCAM):
    """Grad-CAM: ``w_k = mean_ij dy/dA_k(i, j)``, map ``ReLU(sum_k w_k A_k)`` (default layer S5)."""

    name = "gradcam"
    display_name = "Grad-CAM"

    def layer_map(self, a: Tensor, g: Tensor) -> Tensor:
        return weighted_sum(g.mean(dim=(2, 3)), a)
