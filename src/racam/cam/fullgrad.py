"""FullGrad (Srinivas & Fleuret 2019), as implemented by grad-cam."""

from __future__ import annotations

from typing import cast

import torch
from torch import Tensor, nn

from racam.cam.base import GradientCAM
from racam.cam.capture import forward_capture, target_scores
from racam.cam.maps import normalize_maps, resize_maps
from racam.errors import ConfigError

EPS = 1e-7


def bias_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """``(name, module)`` of every ``Conv2d`` / ``BatchNorm2d`` with a bias (FullGrad's sources)."""
    return [(n, m) for n, m in model.named_modules()
            if isinstance(m, (nn.Conv2d, nn.BatchNorm2d)) and m.bias is not None]


def effective_bias(m: nn.Module) -> Tensor:
    """The bias a layer adds: ``b`` for a conv; ``b - mean * w / sqrt(var + eps)`` for an
    eval-mode BatchNorm (as FullGrad's reference code)."""
    if (isinstance(m, nn.BatchNorm2d) and m.running_mean is not None
            and m.running_var is not None):  # running_var is set with running_mean
        w = m.weight if m.weight is not None else torch.ones_like(m.running_mean)
        return cast(Tensor, m.bias) - m.running_mean * w / torch.sqrt(m.running_var + m.eps)
    return cast(Tensor, m.bias)  # bias_layers keeps layers with a bias only


def channel_scale(v: Tensor) -> Tensor:
    """Per (sample, channel) ``(v - min) / (max - min + 1e-7)`` of ``(B, C, h, w)``, then the sum
    over channels ``(B, h, w)`` (grad-cam's per-channel scaling, eps included)."""
    flat = v.flatten(2)
    lo = flat.amin(dim=2)[:, :, None, None]
    hi = flat.amax(dim=2)[:, :, None, None]
    return ((v - lo) / (hi - lo + EPS)).sum(dim=1)


class FullGrad(GradientCAM):
    """FullGrad: with ``x`` the input and ``b_l`` the bias of each conv / BatchNorm layer::

        map = sum_c s(|x * dy/dx|_c) + sum_l sum_c s(|b_l,c * dy/dz_l,c|)

    where ``z_l`` is the layer's output and ``s`` is the per-(sample, channel) scaling of
    :func:`channel_scale`; every term is resized to the input size (bilinear) before the sum,
    and the sum is min-max normalised. ``target_layers`` must be None: every bias layer is
    used. ``layer_maps`` holds the resized terms (input term first), unnormalised.
    """

    name = "fullgrad"
    display_name = "FullGrad"
    default_layers = ()  # every Conv2d / BatchNorm2d bias, not target layers

    def __init__(self, model: nn.Module, target_layers: None = None, *,
                 channels_last: bool | None = None, reuse_freed_memory: bool | None = None,
                 fgbp_delta: float | None = None, fgbp_scope: str = "channel",
                 fgbp_head: str = "sample") -> None:
        if target_layers is not None:
            raise ConfigError("FullGrad uses every Conv2d / BatchNorm2d bias of the model: "
                              "do not pass target_layers")
        layers = bias_layers(model)
        if not layers:
            raise ConfigError(f"FullGrad: {type(model).__name__} has no Conv2d / BatchNorm2d "
                              "with a bias")
        super().__init__(model, [m for _, m in layers], channels_last=channels_last,
                         reuse_freed_memory=reuse_freed_memory,
                         fgbp_delta=fgbp_delta, fgbp_scope=fgbp_scope, fgbp_head=fgbp_head)

    def _raw_maps(self, x: Tensor, targets: object) -> list[Tensor]:
        x = x.detach().requires_grad_()
        logits, outs = forward_capture(self.model, x, self.layers, grad="input")
        _, scores = target_scores(logits, targets)
        grads = torch.autograd.grad(scores.sum(), [x, *outs], allow_unused=True)
        with torch.no_grad():
            gx = grads[0] if grads[0] is not None else torch.zeros_like(x)
            maps = [channel_scale((x * gx).abs())]
            for (_, m), g in zip(self.layers, grads[1:]):
                if g is None or g.dim() != 4:
                    continue
                bias = effective_bias(m).detach().to(g.dtype)
                maps.append(channel_scale((bias[None, :, None, None] * g).abs()))
            return maps

    def _combine(self, raw: list[Tensor], size: tuple[int, int]) -> tuple[list[Tensor], Tensor]:
        terms = [resize_maps(m.float(), size) for m in raw]
        return terms, normalize_maps(torch.stack(terms).sum(dim=0))
