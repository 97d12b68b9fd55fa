"""Filtering-guided backpropagation (FGBP, paper Eq. 5; docs/protocol.md, "Heat maps").

In the backward pass through every ReLU-family activation module (``nn.ReLU`` including
``inplace=True``, ``nn.ReLU6``, ``nn.LeakyReLU``), the incoming gradient ``g`` (w.r.t. the
activation's output) is filtered before the activation's own derivative is applied:

    g_in = act'(x) * 1[g >= t] * g

where ``t`` is the delta-th percentile of the positive values of ``g`` in that map (see
:mod:`racam.cam.percentile`: per sample and channel for ``(B, C, ...)`` activations; for
fully-connected ``(B, N)`` activations per sample over the vector, ``head="sample"``, the
default, or per sample and unit, ``head="unit"``). A map with no positive value
passes nothing; ``delta = 0`` is guided backpropagation. ``act'`` is the module's own autograd
derivative (1 / 0 for ReLU, 1 / ``negative_slope`` for LeakyReLU, 1 on (0, 6) for ReLU6).

Mechanism: a forward hook (run before any other forward hook) wraps each activation's output in
an identity autograd function whose backward applies the filter; autograd then applies
``act'``. Nothing in the model is replaced or modified, and the hooks are removed on exit.
Activations called functionally (``F.relu``, ``torch.relu``, ``Tensor.relu``, ``F.leaky_relu``,
``F.relu6``) cannot be hooked: while gradients are being recorded, such a call raises a
:class:`~racam.errors.RacamError` instead of silently going unfiltered.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.overrides import TorchFunctionMode

from racam.cam.percentile import check_percentile, check_scope, percentile_filter
from racam.errors import RacamError

#: Module types whose backward FGBP filters.
ACTIVATIONS: tuple[type[nn.Module], ...] = (nn.ReLU, nn.ReLU6, nn.LeakyReLU)

_FUNCTIONAL = {F.relu, F.relu_, F.leaky_relu, F.leaky_relu_, F.relu6, torch.relu, torch.relu_,
               Tensor.relu, Tensor.relu_}

_ACTIVE: weakref.WeakSet[nn.Module] = weakref.WeakSet()


class _Filter(torch.autograd.Function):
    """Identity forward; backward returns ``percentile_filter(grad, delta, scope, head)``."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, delta: float, scope: str, head: str) -> Tensor:
        ctx.delta, ctx.scope, ctx.head = delta, scope, head
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, g: Tensor) -> tuple[Tensor, None, None, None]:
        return percentile_filter(g, ctx.delta, ctx.scope, ctx.head), None, None, None


class _FunctionalGuard(TorchFunctionMode):
    """Raises on ReLU-family functional calls made outside a hooked activation module."""

    def __init__(self) -> None:
        super().__init__()
        self.depth = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func in _FUNCTIONAL and self.depth == 0 and torch.is_grad_enabled():
            name = getattr(func, "__qualname__", getattr(func, "__name__", str(func)))
            raise RacamError(
                f"FGBP: the model calls {name}() directly; a functional activation cannot be "
                "hooked, so its gradient would pass unfiltered. Use nn.ReLU / nn.ReLU6 / "
                "nn.LeakyReLU modules in the model instead.")
        return func(*args, **(kwargs or {}))


def activation_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """``(name, module)`` of every ReLU-family module of ``model`` (the ones FGBP filters)."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, ACTIVATIONS)]


@torch.no_grad()
def head_activations(model: nn.Module, x: Tensor) -> int:
    """How many calls of ``model``'s ReLU-family modules output a fully connected ``(B, N)``
    activation on the input ``x``: the only ones whose filter ``head`` ("sample" or "unit")
    sets. With none, both head scopes give the same maps."""
    seen: list[bool] = []
    handles = [m.register_forward_hook(lambda _m, _a, out: seen.append(out.ndim == 2))
               for _, m in activation_modules(model)]
    try:
        model(x)
    finally:
        for h in handles:
            h.remove()
    return sum(seen)


@contextlib.contextmanager
def fgbp(model: nn.Module, delta: float = 50.0, scope: str = "channel", head: str = "sample"
         ) -> Iterator[nn.Module]:
    """Run backward passes of ``model`` with filtering-guided backpropagation inside the block.

    Args:
        model: a network whose ReLU-family activations are ``nn.Module`` s.
        delta: percentile in [0, 100] of the positive gradient values kept per map
            (0 = guided backpropagation).
        scope: ``"channel"`` (protocol: per sample and channel) or ``"sample"`` (one map per
            sample over channels and space).
        head: map scope of fully connected ``(B, N)`` activations: ``"sample"`` (one map per
            sample over its N units, the default) or ``"unit"`` (one map per sample and unit:
            a single value, so the unit's gradient passes when positive, whatever ``delta``,
            i.e. guided backpropagation in the head).

    Raises:
        RacamError: the model has no ReLU-family module, FGBP is already active on it, or (when
            the model runs) it calls a ReLU-family function directly.
    """
    delta = check_percentile(delta)
    check_scope(scope, head)
    acts = activation_modules(model)
    if not acts:
        raise RacamError(
            f"FGBP: {type(model).__name__} has no nn.ReLU / nn.ReLU6 / nn.LeakyReLU module to "
            "hook (functional activations such as F.relu cannot be filtered)")
    if model in _ACTIVE:
        raise RacamError(f"FGBP is already active on this {type(model).__name__}")
    guard = _FunctionalGuard()
    entered: list[bool] = []

    def act_pre(module: nn.Module, args: Any) -> None:
        guard.depth += 1

    def act_post(module: nn.Module, args: Any, out: Any) -> Any:
        guard.depth -= 1
        if isinstance(out, Tensor) and out.requires_grad:
            return _Filter.apply(out, delta, scope, head)
        return None

    def model_pre(module: nn.Module, args: Any) -> None:
        while entered:  # a previous forward raised before model_post ran
            entered.pop()
            guard.__exit__(None, None, None)
        guard.depth = 0
        guard.__enter__()
        entered.append(True)

    def model_post(module: nn.Module, args: Any, out: Any) -> None:
        if entered:
            entered.pop()
            guard.__exit__(None, None, None)

    handles = []
    try:
        for _, m in acts:
            handles.append(m.register_forward_pre_hook(act_pre, prepend=True))
            handles.append(m.register_forward_hook(act_post, prepend=True))
        handles.append(model.register_forward_pre_hook(model_pre, prepend=True))
        handles.append(model.register_forward_hook(model_post))
        _ACTIVE.add(model)
        yield model
    finally:
        while entered:  # a forward that raised left the guard on the mode stack
            entered.pop()
            with contextlib.suppress(Exception):
                guard.__exit__(None, None, None)
        for h in handles:
            h.remove()
        _ACTIVE.discard(model)


def is_fgbp_active(model: nn.Module) -> bool:
    """Whether ``model`` is inside an :func:`fgbp` block."""
    return model in _ACTIVE
