"""Shared core of every heat-map method: input checks, eval mode, FGBP plug-in, map assembly.

Call contract (all methods)::

    cam = Method(model, target_layers=None, fusion="max")
    maps = cam(images, targets=None)   # (B, H, W) float in [0, 1] on images.device
    cam.layer_maps                     # per-layer (B, H, W) maps before fusion

The model runs in eval mode during the call (as grad-cam) and is left exactly as it was: every
module's ``training`` flag is restored, hooks are removed, and nothing else is touched
(parameters, their ``requires_grad`` and ``.grad``, ``inplace`` flags, the module tree).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from racam import heap
from racam.cam.capture import forward_capture, target_scores
from racam.cam.fgbp import fgbp
from racam.cam.layers import LayerSpec, default_target_layers, resolve_layers
from racam.cam.maps import check_fusion, fuse_maps, normalize_maps, resize_maps
from racam.cam.percentile import HEAD_SCOPES, SCOPES, check_percentile
from racam.cam.registry import register
from racam.errors import ConfigError, RacamError


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Put ``model`` in eval mode for the block, then restore every module's ``training``."""
    flags = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for m, t in flags:
            m.training = t


def model_device(model: nn.Module, default: torch.device) -> torch.device:
    """Device of the model's first parameter or buffer (``default`` when it has neither)."""
    for t in model.parameters():
        return t.device
    for b in model.buffers():
        return b.device
    return default


class BaseCAM:
    """Base class: subclasses implement :meth:`_raw_maps`.

    Args:
        model: classifier returning logits ``(B, classes)``.
        target_layers: modules of ``model``, ``named_modules`` paths, or ``"S1"``..``"S5"``
            aliases; ``None`` uses the class's ``default_layers`` (the protocol's: S5, or
            S1..S5 for multi-layer methods; see :func:`racam.cam.layers.default_target_layers`).
        fusion: ``"max"`` or ``"mean"`` of the per-layer maps (then min-max again).
        channels_last: run the network on a channels-last copy of the input (faster with
            oneDNN on CPU); ``None``: on CPU only.
        reuse_freed_memory: on CPU, run each call inside
            :func:`racam.heap.reuse_freed_memory` (glibc malloc tuning; same numbers);
            ``None``: only if the environment sets ``RACAM_MALLOC_TUNING=1`` (default off).
    """

    # What the rest of racam reads about a method (racam.cam.registry). A subclass that sets
    # ``name`` is registered under it when its class statement runs.
    #: registry name (``cam.method``, ``racam cam --method``); "" = not a method (a base class)
    name: ClassVar[str] = ""
    #: name in reports and figures (default: the class name)
    display_name: ClassVar[str] = ""
    #: fuses several layers: the config's ``cam.layers`` and ``cam.fusion`` apply to it
    multi_layer: ClassVar[bool] = False
    #: stage names (S1..S5 of :func:`racam.models.classifier_target_layers`) used when no
    #: ``target_layers`` are given; ``()``: the method picks its own layers
    default_layers: ClassVar[tuple[str, ...]] = ("S5",)
    #: back-propagates (a gradient method without ``uses_delta`` also gets a ``+fgbp`` variant)
    uses_gradients: ClassVar[bool] = False
    #: takes a ``delta`` percentile of its own (RA-CAM)
    uses_delta: ClassVar[bool] = False
    #: further config options (``cam.<option>``) the class takes as keyword arguments, e.g.
    #: RA-CAM's ``("weighting",)``; the pipeline passes them (and keys its cache on them) only
    #: for classes that list them
    options: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("name"):
            register(cls)

    def __init__(self, model: nn.Module, target_layers: Sequence[LayerSpec] | LayerSpec | None
                 = None, *, fusion: str = "max", channels_last: bool | None = None,
                 reuse_freed_memory: bool | None = None) -> None:
        if not isinstance(model, nn.Module):
            raise ConfigError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        self.model = model
        if target_layers is None:
            target_layers = default_target_layers(model, self.default_layers)
        self.layers: list[tuple[str, nn.Module]] = resolve_layers(model, target_layers)
        self.fusion = check_fusion(fusion)
        self.channels_last = channels_last
        self.reuse_freed_memory = reuse_freed_memory
        self.layer_maps: list[Tensor] = []

    @property
    def target_layer_names(self) -> list[str]:
        """``named_modules`` paths of the target layers."""
        return [n for n, _ in self.layers]

    def _backprop_context(self) -> contextlib.AbstractContextManager:
        return contextlib.nullcontext()

    def _heap(self, x: Tensor) -> contextlib.AbstractContextManager:
        """On CPU, if asked, freed tensors are kept for reuse in the call (:mod:`racam.heap`)."""
        if x.device.type != "cpu":
            return contextlib.nullcontext()
        return heap.maybe_reuse_freed_memory(self.reuse_freed_memory)

    def _prepare(self, images: Tensor) -> Tensor:
        if not isinstance(images, Tensor) or images.dim() != 4 or not images.is_floating_point():
            raise RacamError("images must be a float tensor of shape (B, C, H, W), got "
                             f"{getattr(images, 'dtype', type(images).__name__)} "
                             f"{tuple(getattr(images, 'shape', ()))}")
        if images.shape[0] == 0:
            raise RacamError("images is an empty batch")
        x = images.detach().to(model_device(self.model, images.device))
        cl = self.channels_last if self.channels_last is not None else x.device.type == "cpu"
        return x.contiguous(memory_format=torch.channels_last) if cl else x

    def __call__(self, images: Tensor, targets: object = None) -> Tensor:
        """Heat maps ``(B, H, W)`` in [0, 1] for ``targets`` (None: each image's argmax class,
        an int: that class for all images, a sequence: one class per image).

        A constant image (every pixel and channel equal) gets an all-zero map: it holds nothing
        to locate, and min-max would only stretch the network's border effects to [0, 1]."""
        x = self._prepare(images)
        with self._heap(x):
            with eval_mode(self.model), self._backprop_context():
                raw = self._raw_maps(x, targets)
            with torch.no_grad():
                self.layer_maps, fused = self._combine(raw, (x.shape[-2], x.shape[-1]))
                flat = x.reshape(x.shape[0], -1)
                blank = (flat.amax(dim=1) == flat.amin(dim=1))[:, None, None]
                if bool(blank.any()):
                    self.layer_maps = [m.masked_fill(blank, 0.0) for m in self.layer_maps]
                    fused = fused.masked_fill(blank, 0.0)
        self.layer_maps = [m.to(images.device) for m in self.layer_maps]
        return fused.to(images.device)

    def _raw_maps(self, x: Tensor, targets: object) -> list[Tensor]:
        """Per-layer maps ``(B, h, w)`` at feature resolution (before the method's ReLU)."""
        raise NotImplementedError

    def _combine(self, raw: list[Tensor], size: tuple[int, int]) -> tuple[list[Tensor], Tensor]:
        """ReLU, bilinear resize, per-image min-max, then fusion."""
        layer_maps = [normalize_maps(resize_maps(m.float().clamp_min(0), size)) for m in raw]
        return layer_maps, fuse_maps(layer_maps, self.fusion)


class GradientCAM(BaseCAM):
    """Base of the gradient methods: one forward, one backward to the target layers only.

    ``fgbp_delta`` (not None) runs the backward pass under :func:`racam.cam.fgbp.fgbp` with
    that delta (the "+FGBP" plug-in of the paper's Table IV); ``fgbp_scope`` is its map scope
    of ``(B, C, h, w)`` activations, ``fgbp_head`` that of the fully connected head's ``(B, N)``
    activations (``"sample"``: one map per sample; ``"unit"``: one per unit).
    """

    uses_gradients = True

    def __init__(self, model: nn.Module, target_layers: Sequence[LayerSpec] | LayerSpec | None
                 = None, *, fusion: str = "max", channels_last: bool | None = None,
                 reuse_freed_memory: bool | None = None, fgbp_delta: float | None = None,
                 fgbp_scope: str = "channel", fgbp_head: str = "sample") -> None:
        super().__init__(model, target_layers, fusion=fusion, channels_last=channels_last,
                         reuse_freed_memory=reuse_freed_memory)
        if fgbp_scope not in SCOPES:
            raise ConfigError(f"fgbp_scope must be 'channel' or 'sample', got {fgbp_scope!r}")
        if fgbp_head not in HEAD_SCOPES:
            raise ConfigError(f"fgbp_head must be 'sample' or 'unit', got {fgbp_head!r}")
        self.fgbp_delta = None if fgbp_delta is None else check_percentile(fgbp_delta)
        self.fgbp_scope = fgbp_scope
        self.fgbp_head = fgbp_head

    def _backprop_context(self) -> contextlib.AbstractContextManager:
        if self.fgbp_delta is None:
            return contextlib.nullcontext()
        return fgbp(self.model, self.fgbp_delta, self.fgbp_scope, self.fgbp_head)

    def _activations_and_grads(self, x: Tensor, targets: object
                               ) -> tuple[list[Tensor], list[Tensor]]:
        logits, acts = forward_capture(self.model, x, self.layers, grad="layers")
        _, scores = target_scores(logits, targets)
        grads = torch.autograd.grad(scores.sum(), acts, allow_unused=True)
        for (name, _), g in zip(self.layers, grads):
            if g is None:
                raise RacamError(f"the model output does not depend on target layer {name!r}")
        for a in acts:
            if a.dim() != 4:
                raise RacamError(f"target layer output must be (B, C, h, w), got "
                                 f"{tuple(a.shape)}")
        return [a.detach() for a in acts], list(grads)

    def _raw_maps(self, x: Tensor, targets: object) -> list[Tensor]:
        acts, grads = self._activations_and_grads(x, targets)
        with torch.no_grad():
            return [self.layer_map(a, g) for a, g in zip(acts, grads)]

    def layer_map(self, a: Tensor, g: Tensor) -> Tensor:
        """Map ``(B, h, w)`` of one layer from activations ``a`` and gradients ``g`` (B,C,h,w)."""
        raise NotImplementedError


def weighted_sum(weights: Tensor, a: Tensor) -> Tensor:
    """``sum_k w_k A_k``: ``(B, C)`` channel weights times ``(B, C, h, w)`` activations."""
    return (weights[:, :, None, None] * a).sum(dim=1)
