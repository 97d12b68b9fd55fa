"""XGrad-CAM (Fu et al. 2020)."""

from __future__ import annotations

from torch import Tensor

from racam.cam.base import GradientCAM, weighted_sum

EPS = 1e-7


class XGradCAM(GradientCAM):
    """XGrad-CAM: ``w_k = sum_ij g * A_k / (sum_ij A_k + 1e-7)``, map ``ReLU(sum_k w_k A_k)``."""

    name = "xgradcam"
    display_name = "XGrad-CAM"

    def layer_map(self, a: Tensor, g: Tensor) -> Tensor:
        w = (g * a).sum(dim=(2, 3)) / (a.sum(dim=(2, 3)) + EPS)
        return weighted_sum(w, a)
