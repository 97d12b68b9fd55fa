"""A heat-map callable built from a run config's ``cam`` section (training and ``predict``)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from racam.cam.registry import cam_options, get_method
from racam.config import RunConfig

__all__ = ["build_run_cam"]


def build_run_cam(cfg: RunConfig, model: nn.Module, method: str, delta: float | None = None,
                  layers: list[str] | None = None, *, weighting: str | None = None,
                  fgbp_head: str | None = None, scales: list[float] | None = None
                  ) -> Callable[..., torch.Tensor]:
    """A heat-map callable ``cam(images, targets=1)`` for ``method`` on ``model`` with the
    config's ``cam`` options (``delta``, ``weighting``, ``fgbp_head``: the config's when
    ``None``; ``layers``: the method's protocol layers when ``None``), averaged over the
    config's ``cam.scales`` (or ``scales``) and ``cam.flips`` (:func:`racam.pseudo.tta.tta_cam`;
    the method's own callable at ``[1.0]`` and ``[]``)."""
    from racam.cam import build_cam
    from racam.models import classifier_target_layers
    from racam.pseudo.tta import tta_cam

    spec = get_method(method)
    if layers is None and spec.default_layers:  # () = the method picks its own (FullGrad)
        if spec.multi_layer and cfg.cam.layers is not None:
            layers = cfg.cam.layers
        else:
            stages = classifier_target_layers(model)
            layers = [stages[s] for s in spec.default_layers]
    c = cfg.cam
    kw = cam_options(method, delta=c.delta if delta is None else delta, fusion=c.fusion,
                     weighting=weighting or c.weighting, fgbp_head=fgbp_head or c.fgbp_head)
    if spec.base == "scorecam" and c.scorecam_batch is not None:
        kw["batch_size"] = c.scorecam_batch
    return tta_cam(build_cam(method, model, target_layers=layers, **kw),
                   c.scales if scales is None else scales, c.flips)
