"""Run only the part of a network after one layer (for Ablation-CAM).

:class:`Suffix` traces the model with ``torch.fx`` (the target layer kept as one call), keeps
the graph nodes that depend on the target layer's output, and turns them into a small module
``suffix(acts, *cached)`` (only the target layer's ancestors are traced into; every other
module stays one call). Values the suffix needs from before the layer (e.g. a skip
connection) are cached from one forward pass on the real images and indexed per sample.

When the model cannot be traced (data-dependent Python control flow), or the suffix needs a
cached value without a batch dimension, it falls back to running the whole model on the
images with a forward hook that replaces the layer's output: correct, but the prefix is then
recomputed for every batch of ablations (``Suffix.traced`` tells which path is used).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, fx, nn

from racam.cam.capture import forward_capture


class _Tracer(fx.Tracer):
    """Traces only into the target layer's ancestors: every other module is one call (fewer
    modules traced means fewer data-dependent branches to trip over)."""

    def __init__(self, leaf: str) -> None:
        super().__init__()
        parts = leaf.split(".")
        self.ancestors = {".".join(parts[:i]) for i in range(len(parts))}

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return qualname not in self.ancestors


def trace_suffix(model: nn.Module, layer: str
                 ) -> tuple[fx.GraphModule, fx.GraphModule, list[fx.Node]] | None:
    """``(full traced module, suffix module, external nodes)`` or None when not possible."""
    try:
        graph = _Tracer(layer).trace(model)
    except Exception:  # any tracing failure means: use the fallback
        return None
    full = fx.GraphModule(model, graph)
    nodes = list(graph.nodes)
    target = [n for n in nodes if n.op == "call_module" and n.target == layer]
    if len(target) != 1:
        return None
    tgt = target[0]
    down: set[fx.Node] = {tgt}
    from_input: set[fx.Node] = set()
    for n in nodes:
        if n.op == "placeholder" or any(a in from_input for a in n.all_input_nodes):
            from_input.add(n)
        if n is not tgt and any(a in down for a in n.all_input_nodes):
            down.add(n)
    out_node = nodes[-1]
    if out_node.op != "output" or not all(a in down for a in out_node.all_input_nodes):
        return None
    new = fx.Graph()
    env: dict[fx.Node, fx.Node] = {tgt: new.placeholder("acts")}
    externals: list[fx.Node] = []

    def ensure(a: fx.Node) -> fx.Node:
        if a not in env:
            if a in from_input:
                externals.append(a)
                env[a] = new.placeholder(f"cached_{len(externals)}")
            else:  # constant w.r.t. the input (get_attr etc.): copy it and its inputs
                for b in a.all_input_nodes:
                    ensure(b)
                env[a] = new.node_copy(a, lambda b: env[b])
        return env[a]

    for n in nodes:
        if n in down and n is not tgt:
            for a in n.all_input_nodes:
                ensure(a)
            env[n] = new.node_copy(n, lambda b: env[b])
    return full, fx.GraphModule(model, new), externals


class Suffix:
    """The model after ``layer`` (a ``named_modules`` path), see the module docstring."""

    def __init__(self, model: nn.Module, layer: str) -> None:
        self.model, self.layer = model, layer
        built = trace_suffix(model, layer)
        self.traced = built is not None
        self._full: fx.GraphModule | None
        self._suffix: fx.GraphModule | None
        self._full, self._suffix, self._ext_nodes = built if built else (None, None, [])
        self._cached: list[Tensor] = []
        self._x: Tensor | None = None

    def prepare(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """One forward pass on ``x`` (no graph): ``(logits, target layer output)``; caches what
        :meth:`__call__` needs."""
        self._x = x
        if self.traced:
            out = self._prepare_traced(x)
            if out is not None:
                return out
            self.traced = False
        module = dict(self.model.named_modules())[self.layer]
        logits, acts = forward_capture(self.model, x, [(self.layer, module)], grad="none")
        return logits, acts[0]

    def _prepare_traced(self, x: Tensor) -> tuple[Tensor, Tensor] | None:
        wanted: dict[fx.Node, Any] = {n: None for n in self._ext_nodes}
        acts: list[Tensor] = []
        tgt_name = self.layer

        class _Rec(fx.Interpreter):
            def run_node(self, n: fx.Node):
                v = super().run_node(n)
                if n.op == "call_module" and n.target == tgt_name:
                    acts.append(v)
                if n in wanted:
                    wanted[n] = v
                return v

        assert self._full is not None  # traced
        with torch.no_grad():
            logits = _Rec(self._full).run(x)
        cached = list(wanted.values())
        b = x.shape[0]
        if not all(isinstance(c, Tensor) and c.dim() > 0 and c.shape[0] == b for c in cached):
            return None
        if not isinstance(logits, Tensor) or len(acts) != 1:
            return None
        self._cached = cached
        return logits, acts[0]

    def __call__(self, acts: Tensor, sample: Tensor) -> Tensor:
        """Logits for layer outputs ``acts`` (N, ...) standing in for images ``sample`` (N,)."""
        with torch.no_grad():
            if self.traced:
                assert self._suffix is not None
                return self._suffix(acts, *[c[sample] for c in self._cached])
            assert self._x is not None
            module = dict(self.model.named_modules())[self.layer]
            handle = module.register_forward_hook(lambda m, a, o: acts)
            try:
                return self.model(self._x[sample])
            finally:
                handle.remove()
