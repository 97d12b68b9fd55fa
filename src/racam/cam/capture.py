"""One forward pass that captures target-layer outputs, ready for ``torch.autograd.grad``.

Modes (``grad``):

- ``"layers"``: the part of the network before the first target layer runs without recording
  a graph; that layer's output becomes a leaf that requires grad, so a backward pass stops at
  the target layers and computes no parameter gradient.
- ``"input"``: the whole forward records a graph (the caller made the input require grad).
- ``"none"``: no graph at all (gradient-free methods).

The captured tensors are the layers' outputs themselves (no copy). If an operation after a
target layer modifies its output in place (e.g. a conv followed by ``ReLU(inplace=True)``),
that is detected (autograd's leaf check or the tensor's version counter) and the forward is
run again with each captured output cloned before the rest of the network sees it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import torch
from torch import Tensor, nn

from racam.errors import RacamError


class _Retry(Exception):
    pass


def _run(model: nn.Module, x: Tensor, layers: Sequence[tuple[str, nn.Module]], grad: str,
         clone: bool) -> tuple[Tensor, list[Tensor]]:
    outs: list[Tensor | None] = [None] * len(layers)
    versions = [0] * len(layers)

    def make_hook(i: int, name: str):
        def hook(module: nn.Module, args: object, out: object) -> Tensor | None:
            if not isinstance(out, Tensor):
                raise RacamError(f"target layer {name!r} returns {type(out).__name__}, "
                                 "not a tensor")
            if outs[i] is not None:
                raise RacamError(f"target layer {name!r} runs more than once per forward pass "
                                 "(a shared module): choose a layer that runs once")
            a = out
            if grad == "layers" and not out.requires_grad:
                torch.set_grad_enabled(True)
                a = out.detach().requires_grad_()
            outs[i], versions[i] = a, a._version
            if clone:
                return a.clone()
            return a if a is not out else None
        return hook

    handles = [m.register_forward_hook(make_hook(i, n)) for i, (n, m) in enumerate(layers)]
    ctx = torch.enable_grad() if grad == "input" else torch.no_grad()
    try:
        with ctx:
            logits = model(x)
    except RuntimeError as exc:
        if not clone and "in-place" in str(exc):
            raise _Retry from exc
        raise
    finally:
        for h in handles:
            h.remove()
    for (name, _), a, v in zip(layers, outs, versions):
        if a is None:
            raise RacamError(f"target layer {name!r} did not run in the forward pass")
        if a._version != v:
            if clone:
                raise RacamError(f"target layer {name!r}: its output is modified in place")
            raise _Retry
    if not isinstance(logits, Tensor) or logits.dim() != 2:
        raise RacamError(f"{type(model).__name__} must return logits of shape (B, classes), got "
                         f"{getattr(logits, 'shape', type(logits).__name__)}")
    return logits, cast(list[Tensor], outs)  # every entry checked above


def forward_capture(model: nn.Module, x: Tensor, layers: Sequence[tuple[str, nn.Module]],
                    grad: str = "layers") -> tuple[Tensor, list[Tensor]]:
    """``(logits, outputs)``: ``model(x)`` and the outputs of ``layers`` (``(name, module)``).

    ``grad`` is ``"layers"``, ``"input"`` or ``"none"`` (see the module docstring).
    """
    if grad not in ("layers", "input", "none"):
        raise ValueError(grad)
    try:
        return _run(model, x, layers, grad, clone=False)
    except _Retry:
        return _run(model, x, layers, grad, clone=True)


def target_scores(logits: Tensor, targets: object) -> tuple[Tensor, Tensor]:
    """``(class indices (B,), scores (B,))`` for ``targets``: ``None`` (each image's argmax, as
    grad-cam), one class index for all images, or a sequence / 1-D tensor with one per image.
    The score is the pre-softmax logit of the class."""
    b, k = logits.shape
    if targets is None:
        idx = logits.detach().argmax(dim=1)
    else:
        if isinstance(targets, Tensor):
            t = targets.detach().to("cpu").reshape(-1).tolist()
        elif isinstance(targets, (int, bool)) or hasattr(targets, "__index__"):
            t = [int(targets)] * b
        elif isinstance(targets, Sequence) and not isinstance(targets, str):
            t = list(targets)
        else:
            raise RacamError(f"targets must be None, a class index or one index per image, "
                             f"got {targets!r}")
        if len(t) == 1 and b > 1:
            t = t * b
        if len(t) != b:
            raise RacamError(f"got {len(t)} targets for {b} images")
        bad = [c for c in t if not (isinstance(c, int) or hasattr(c, "__index__"))
               or not 0 <= int(c) < k]
        if bad:
            raise RacamError(f"target class {bad[0]!r} is not a class index in [0, {k})")
        idx = torch.tensor([int(c) for c in t], dtype=torch.long, device=logits.device)
    return idx, logits.gather(1, idx[:, None])[:, 0]
