"""Segmentation networks from segmentation-models-pytorch (DeepLabV3, DeepLabV3+, UNet).

The paper trains DeepLabV3 on pseudo-labels; DeepLabV3+ and UNet are the extra fully supervised
baselines. ``encoder_weights=None`` (the default) builds a randomly initialised encoder and
needs no network; ``"imagenet"`` lets smp download the encoder's weights. smp adapts the first
convolution to ``in_channels`` itself. Output: ``classes`` logits per pixel at the input size.
Input height and width must be multiples of :func:`input_divisor` (8 for DeepLabV3, 16 for
DeepLabV3+, 32 for UNet).
"""

from __future__ import annotations

import os
from typing import Any

from torch import nn

from racam.classifier.checkpoint import load_checkpoint, load_model_state
from racam.errors import CheckpointError, ConfigError, DataError

ARCHS: tuple[str, ...] = ("deeplabv3", "deeplabv3plus", "unet")


def build_segmentation(arch: str = "deeplabv3", encoder: str = "resnet18", in_channels: int = 1,
                       encoder_weights: str | None = None, classes: int = 2,
                       output_stride: int | None = None) -> nn.Module:
    """Build an smp segmentation network (see the module docstring).

    ``output_stride`` (8 or 16) sets a DeepLab encoder's output stride (``None``: smp's default).
    """
    import segmentation_models_pytorch as smp

    if arch not in ARCHS:
        raise ConfigError(f"unknown segmentation arch {arch!r}; choose one of {ARCHS}")
    kw = {}
    if output_stride is not None:
        if not arch.startswith("deeplab"):
            raise ConfigError(f"segmentation.output_stride applies to DeepLab, not {arch!r}")
        kw["encoder_output_stride"] = int(output_stride)
    try:
        return smp.create_model(arch, encoder_name=encoder, encoder_weights=encoder_weights,
                                in_channels=in_channels, classes=classes, **kw)
    except (KeyError, ValueError) as exc:
        raise ConfigError(f"segmentation encoder {encoder!r} with weights {encoder_weights!r}: "
                          f"{exc}") from exc


def input_divisor(model: nn.Module) -> int:
    """Height and width of the input must be multiples of this (UNet: 2**depth = 32)."""
    encoder = getattr(model, "encoder", None)
    return int(getattr(encoder, "output_stride", 32)) if encoder is not None else 1


def check_input_size(model: nn.Module, height: int, width: int, where: str) -> None:
    """:class:`DataError` naming ``where`` when ``(height, width)`` does not fit ``model``."""
    d = input_divisor(model)
    if height % d or width % d:
        raise DataError(f"{where}: size {width}x{height} (WxH) does not fit "
                        f"{type(model).__name__}: width and height must be multiples of {d}")


def load_segmentation(path: str | os.PathLike[str],
                      map_location: str = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild a segmentation network from a checkpoint written by
    :func:`racam.segmentation.train_segmentation`; returns ``(model, meta)`` in eval mode."""
    state = load_checkpoint(path, map_location="cpu")
    meta = state["meta"]
    try:
        model = build_segmentation(meta["arch"], meta["encoder"], int(meta["in_channels"]),
                                   None, int(meta["classes"]), meta.get("output_stride"))
    except KeyError as exc:
        raise CheckpointError(f"checkpoint {path}: meta lacks {exc} (not a segmentation "
                              "checkpoint?)") from exc
    load_model_state(model, state, path)
    return model.to(map_location).eval(), meta
