"""Region-Aware CAM (paper Eqs. 6-7) with filtering-guided backpropagation."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from racam.cam.base import GradientCAM
from racam.cam.layers import STAGES, LayerSpec
from racam.cam.percentile import check_percentile, percentile_filter


class RACAM(GradientCAM):
    """RA-CAM. With ``g = dy/dA_l`` computed under FGBP (same ``delta``) at each target layer::

        W = 1[g >= t] * g        t = delta-th percentile of the positive g of each map
        M_l = ReLU(sum_k W_k * A_k)

    then the per-layer maps (default S1..S5) are resized, min-max normalised and fused
    (``fusion``, default max). ``filter_backward=False`` keeps the filter on ``W`` but uses the
    plain backward pass (an ablation, not the paper's method).
    """

    name = "racam"
    display_name = "RA-CAM"
    multi_layer = True
    default_layers = STAGES
    uses_delta = True

    def __init__(self, model: nn.Module, target_layers: Sequence[LayerSpec] | LayerSpec | None
                 = None, *, delta: float = 50.0, fusion: str = "max",
                 filter_backward: bool = True, scope: str = "channel",
                 channels_last: bool | None = None, reuse_freed_memory: bool | None = None
                 ) -> None:
        self.delta = check_percentile(delta)
        super().__init__(model, target_layers, fusion=fusion, channels_last=channels_last,
                         reuse_freed_memory=reuse_freed_memory,
                         fgbp_delta=self.delta if filter_backward else None, fgbp_scope=scope)
        self.scope = scope

    def layer_map(self, a: Tensor, g: Tensor) -> Tensor:  # noqa: D102
        return (percentile_filter(g, self.delta, self.scope) * a).sum(dim=1)
