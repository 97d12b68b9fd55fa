"""Target layers: resolve modules or ``named_modules`` paths, VGG16 stages S1..S5, stage finder."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from racam.errors import ConfigError
from racam.models.vgg import VGG16_STAGES

LayerSpec = nn.Module | str


def _names(model: nn.Module) -> dict[int, str]:
    return {id(m): n for n, m in model.named_modules()}


def stage_paths(model: nn.Module) -> dict[str, str] | None:
    """Known stage outputs ``{"S1": path, ...}`` of ``model``, or None.

    From the model's own ``stages`` dict, :func:`racam.models.classifier_target_layers` (VGG16
    and EfficientNet-Lite0 classifiers), or VGG16's paths when the model has VGG16's layout.
    """
    stages = getattr(model, "stages", None)
    if isinstance(stages, dict) and stages:
        return dict(stages)
    from racam.models.registry import classifier_target_layers

    try:
        return classifier_target_layers(model)
    except ConfigError:
        pass
    modules = dict(model.named_modules())
    if all(p in modules for p in VGG16_STAGES.values()):
        return dict(VGG16_STAGES)
    return None


def resolve_layer(model: nn.Module, layer: LayerSpec) -> tuple[str, nn.Module]:
    """``(name, module)`` for a module of ``model`` or a ``named_modules`` path.

    A stage alias ``"S1"``..``"S5"`` is accepted for models with known stages
    (:func:`stage_paths`).
    """
    if isinstance(layer, nn.Module):
        name = _names(model).get(id(layer))
        if name is None:
            raise ConfigError(f"target layer {type(layer).__name__} is not a module of "
                              f"{type(model).__name__}")
        return name, layer
    if not isinstance(layer, str):
        raise ConfigError(f"target layer must be an nn.Module or a module path, got {layer!r}")
    modules = dict(model.named_modules())
    path = layer
    if layer not in modules and layer.upper().startswith("S"):
        path = (stage_paths(model) or {}).get(layer.upper(), layer)
    if path in modules:
        return path, modules[path]
    some = ", ".join(list(modules)[1:9])
    raise ConfigError(f"{type(model).__name__} has no layer {layer!r} (named_modules paths "
                      f"look like: {some}, ...)")


def resolve_layers(model: nn.Module,
                   layers: Sequence[LayerSpec] | LayerSpec) -> list[tuple[str, nn.Module]]:
    """Resolve each of ``layers`` (modules, paths or S1..S5 aliases); rejects duplicates."""
    if isinstance(layers, (nn.Module, str)):
        layers = [layers]
    out = [resolve_layer(model, layer) for layer in layers]
    if not out:
        raise ConfigError("target_layers is empty")
    names = [n for n, _ in out]
    if len(set(names)) != len(names):
        raise ConfigError(f"target layers repeat a layer: {names}")
    return out


def vgg16_stage_layers(model: nn.Module) -> list[nn.Module]:
    """Modules of the five VGG16 stage outputs S1..S5 (last activation before each max-pool).

    Works for :class:`racam.models.vgg.VGG16LeakyReLU` and torchvision's ``vgg16``.
    """
    modules = dict(model.named_modules())
    stages = getattr(model, "stages", None) or VGG16_STAGES  # BatchNorm variant has its own
    missing = [p for p in stages.values() if p not in modules]
    if missing:
        raise ConfigError(f"{type(model).__name__} does not have VGG16's layout "
                          f"(no {', '.join(missing)})")
    return [modules[p] for p in stages.values()]


def stage_layers(model: nn.Module, example: torch.Tensor | None = None,
                 types: tuple[type[nn.Module], ...] = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.SiLU,
                                                       nn.GELU, nn.Hardswish)) -> list[str]:
    """Stage outputs of a CNN: per spatial resolution, the last activation module run at it.

    One probe forward (``example``, default a 1 x C x 224 x 224 zero image with C taken from the
    first ``Conv2d``) records, in execution order, every activation module whose output is a
    4-D map; modules called more than once per forward (shared activations) are skipped. A new
    stage starts whenever the spatial size changes. For VGG16 this gives S1..S5.
    """
    if example is None:
        conv = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
        if conv is None:
            raise ConfigError(f"{type(model).__name__} has no Conv2d: pass target_layers")
        p = next(model.parameters())
        example = torch.zeros(1, conv.in_channels, 224, 224, dtype=p.dtype, device=p.device)
    names = _names(model)
    calls: list[tuple[str, tuple[int, ...]]] = []

    def hook(module: nn.Module, args: object, out: object) -> None:
        if isinstance(out, torch.Tensor) and out.dim() == 4:
            calls.append((names[id(module)], tuple(out.shape[-2:])))

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, types)]
    training = {m: m.training for m in model.modules()}
    try:
        model.eval()
        with torch.no_grad():
            model(example)
    finally:
        for h in handles:
            h.remove()
        for m, t in training.items():
            m.training = t
    counts: dict[str, int] = {}
    for n, _ in calls:
        counts[n] = counts.get(n, 0) + 1
    stages: list[str] = []
    last_size: tuple[int, ...] | None = None
    for n, size in calls:
        if counts[n] != 1:
            continue
        if size != last_size:
            stages.append(n)
            last_size = size
        else:
            stages[-1] = n
    if not stages:
        raise ConfigError(f"found no stage activations in {type(model).__name__}: pass "
                          "target_layers")
    return stages


#: Stage names of :func:`racam.models.classifier_target_layers`, input side first.
STAGES: tuple[str, ...] = ("S1", "S2", "S3", "S4", "S5")


def _pick(paths: list[str], stages: tuple[str, ...]) -> list[str]:
    """``stages`` among ``paths`` (one path per stage, input side first): all of them for
    :data:`STAGES`, otherwise counted from the last stage (S5 = the last path)."""
    if stages == STAGES:
        return list(paths)
    from_end = dict(zip(STAGES[::-1], paths[::-1]))
    missing = [s for s in stages if s not in from_end]
    if missing:
        raise ConfigError(f"the model has no stage {', '.join(missing)}: pass target_layers")
    return [from_end[s] for s in stages]


def default_target_layers(model: nn.Module, stages: Sequence[str] | bool) -> list[str]:
    """Paths of the stages ``stages`` (e.g. ``("S5",)``, :data:`STAGES`) of ``model``.

    A bool is the older form: ``True`` = S1..S5, ``False`` = S5. Uses :func:`stage_paths` when
    it knows the model, :func:`stage_layers` otherwise (then S5 is the last stage found and
    S1..S5 means every stage found).
    """
    if isinstance(stages, bool):
        stages = STAGES if stages else ("S5",)
    stages = tuple(s.upper() for s in stages)
    known = stage_paths(model)
    if known and all(s in known for s in stages):
        return [known[s] for s in stages]
    return _pick(list(known.values()) if known else stage_layers(model), stages)
