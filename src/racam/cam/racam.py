"""Region-Aware CAM (paper Eqs. 6-7) with filtering-guided backpropagation."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from torch import Tensor, nn

from racam.cam.base import GradientCAM, weighted_sum
from racam.cam.layers import STAGES, LayerSpec
from racam.cam.percentile import check_percentile, percentile_filter
from racam.errors import ConfigError

#: Readings of Eq. 7 (``weighting``): element-wise weights or one weight per channel.
WEIGHTINGS: tuple[str, ...] = ("element", "channel")


class RACAM(GradientCAM):
    """RA-CAM. With ``g = dy/dA_l`` computed under FGBP (same ``delta``) at each target layer::

        W = 1[g >= t] * g        t = delta-th percentile of the positive g of each map

    and Eq. 7 read one of two ways (``weighting``):

    - ``"element"`` (default): ``M_l = ReLU(sum_k W_k * A_k)``, the filtered gradient used
      element-wise as a weight (LayerCAM-style);
    - ``"channel"``: ``R_k = mean_ij W_k,ij`` (one weight per channel, Grad-CAM-style),
      ``M_l = ReLU(sum_k R_k A_k)``;

    then the per-layer maps (default S1..S5) are resized, min-max normalised and fused
    (``fusion``, default max). ``filter_backward=False`` keeps the filter on ``W`` but uses the
    plain backward pass (an ablation, not the paper's method). ``scope`` / ``fgbp_head``: map
    scopes of the percentile rule (see :func:`racam.cam.percentile.map_dims_for`).
    """

    name = "racam"
    display_name = "RA-CAM"
    multi_layer = True
    default_layers = STAGES
    uses_delta = True
    options: ClassVar[tuple[str, ...]] = ("weighting",)

    def __init__(self, model: nn.Module, target_layers: Sequence[LayerSpec] | LayerSpec | None
                 = None, *, delta: float = 50.0, fusion: str = "max",
                 weighting: str = "element", filter_backward: bool = True,
                 scope: str = "channel", fgbp_head: str = "sample",
                 channels_last: bool | None = None, reuse_freed_memory: bool | None = None
                 ) -> None:
        self.delta = check_percentile(delta)
        if weighting not in WEIGHTINGS:
            raise ConfigError(f"RA-CAM weighting must be one of {', '.join(WEIGHTINGS)}, "
                              f"got {weighting!r}")
        super().__init__(model, target_layers, fusion=fusion, channels_last=channels_last,
                         reuse_freed_memory=reuse_freed_memory,
                         fgbp_delta=self.delta if filter_backward else None, fgbp_scope=scope,
                         fgbp_head=fgbp_head)
        self.scope = scope
        self.weighting = weighting

    def layer_map(self, a: Tensor, g: Tensor) -> Tensor:
        w = percentile_filter(g, self.delta, self.scope)
        if self.weighting == "channel":
            return weighted_sum(w.mean(dim=(2, 3)), a)
        return (w * a).sum(dim=1)
