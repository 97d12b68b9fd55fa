"""Ablation-CAM (Desai & Ramaswamy 2020), batched over channels, suffix-only forward passes."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from racam.cam.base import BaseCAM, weighted_sum
from racam.cam.capture import target_scores
from racam.cam.layers import LayerSpec
from racam.cam.suffix import Suffix
from racam.errors import ConfigError, RacamError


class AblationCAM(BaseCAM):
    """Ablation-CAM: set channel ``k`` of the target layer to ``ablation_value`` (0, as in the
    paper), re-run the rest of the network, and weight the channel by the relative drop of the
    target logit::

        w_k = (y - y_k) / |y|,     map = ReLU(sum_k w_k A_k)     (default layer S5)

    Dividing by ``|y|`` (not ``y``) keeps the sign of the weights when the target logit is
    negative (grad-cam divides by ``y``, which flips every weight then). ``|y|`` is clamped
    below at 1e-12; a per-image positive factor does not change the normalised map.

    Only the part of the network after the target layer runs on the ablated activations
    (:class:`racam.cam.suffix.Suffix`), ``batch_size`` ablations at a time, across images.
    Channels that already equal ``ablation_value`` everywhere are not re-run (``y_k = y``).
    """

    name = "ablationcam"
    display_name = "Ablation-CAM"

    def __init__(self, model: nn.Module, target_layers: Sequence[LayerSpec] | LayerSpec | None
                 = None, *, batch_size: int = 256, ablation_value: float = 0.0,
                 fusion: str = "max", channels_last: bool | None = None,
                 reuse_freed_memory: bool | None = None) -> None:
        super().__init__(model, target_layers, fusion=fusion, channels_last=channels_last,
                         reuse_freed_memory=reuse_freed_memory)
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        self.batch_size = int(batch_size)
        self.ablation_value = float(ablation_value)
        self.last_traced: bool | None = None

    def _raw_maps(self, x: Tensor, targets: object) -> list[Tensor]:
        return [self._layer(x, targets, name) for name, _ in self.layers]

    @torch.no_grad()
    def _layer(self, x: Tensor, targets: object, name: str) -> Tensor:
        suffix = Suffix(self.model, name)
        logits, a = suffix.prepare(x)
        self.last_traced = suffix.traced
        if a.dim() != 4:
            raise RacamError(f"target layer output must be (B, C, h, w), got {tuple(a.shape)}")
        idx, y = target_scores(logits, targets)
        b, c = a.shape[:2]
        yk = y[:, None].repeat(1, c)
        todo = (a != self.ablation_value).flatten(2).any(dim=2).flatten().nonzero()[:, 0]
        for s in range(0, todo.numel(), self.batch_size):
            pair = todo[s:s + self.batch_size]
            bi, ki = pair // c, pair % c
            ablated = a[bi].clone()
            ablated[torch.arange(pair.numel(), device=a.device), ki] = self.ablation_value
            with torch.inference_mode():
                out = suffix(ablated, bi)
            yk.view(-1)[pair] = out.gather(1, idx[bi, None])[:, 0].to(yk.dtype)
        w = (y[:, None] - yk) / y.abs().clamp_min(1e-12)[:, None]
        return weighted_sum(w.to(a.dtype), a)
