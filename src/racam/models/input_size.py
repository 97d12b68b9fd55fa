"""Whether a network accepts an input size, found by running it (on the ``meta`` device when the
caller builds it there: no memory, no arithmetic), so a too-small input is refused in one line
before any file is written instead of failing deep inside a pooling layer."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

#: Largest side tried when looking for the smallest accepted square input.
_MAX_SIDE = 4096


def input_problem(model: nn.Module, channels: int, size: tuple[int, int]) -> str | None:
    """Why ``model`` (in eval mode, one image) cannot take a ``(channels, height, width)`` input
    with ``size = (width, height)``, or ``None`` when it can. Uses the model's own device."""
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    width, height = size
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, channels, height, width, device=device))
    except (RuntimeError, ValueError) as exc:
        return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    finally:
        model.train(was_training)
    return None


def smallest_square(model: nn.Module, channels: int) -> int | None:
    """The smallest side ``s`` such that ``model`` takes an ``s x s`` input (``None`` when none up
    to 4096 does). Assumes a larger input is accepted whenever a smaller one is."""
    hi = 1
    while input_problem(model, channels, (hi, hi)) is not None:
        hi *= 2
        if hi > _MAX_SIDE:
            return None
    lo = hi // 2  # rejected (or 0)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if input_problem(model, channels, (mid, mid)) is None:
            hi = mid
        else:
            lo = mid
    return hi


def on_meta(build: Callable[[], nn.Module]) -> nn.Module:
    """``build()`` with its parameters on the ``meta`` device (for the checks above)."""
    with torch.device("meta"):
        return build()
