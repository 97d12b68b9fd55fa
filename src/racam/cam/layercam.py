"""LayerCAM (Jiang et al. 2021)."""

from __future__ import annotations

from torch import Tensor

from racam.cam.base import GradientCAM
from racam.cam.layers import STAGES


class LayerCAM(GradientCAM):
    """LayerCAM: map ``ReLU(sum_k ReLU(dy/dA_k) * A_k)`` (element-wise weights) at each layer,
    default layers S1..S5, fused by ``fusion``."""

    name = "layercam"
    display_name = "LayerCAM"
    multi_layer = True
    default_layers = STAGES

    def layer_map(self, a: Tensor, g: Tensor) -> Tensor:
        return (g.clamp_min(0) * a).sum(dim=1)
