"""The segmentation networks by name (``segmentation.arch``): plain data, one :class:`Network`
entry each, in :data:`NETWORKS` (a :class:`racam.registry.Registry`).

:func:`racam.segmentation.build_segmentation` is the one factory (it builds an entry with
segmentation-models-pytorch); ``racam list networks`` prints them. The entries live here, apart
from the training code, so that config checks read them without importing it.
"""

from __future__ import annotations

from dataclasses import dataclass

from racam.registry import Registry


@dataclass(frozen=True)
class Network:
    """One segmentation network: ``name`` (``segmentation.arch``), ``smp_arch`` (the
    architecture name of ``smp.create_model``), a one-line ``description``, and whether
    ``segmentation.output_stride`` applies (the DeepLabs)."""

    name: str
    smp_arch: str
    description: str
    output_stride: bool = False


#: The segmentation networks by ``segmentation.arch`` name. The paper trains DeepLabV3 on
#: pseudo-labels; DeepLabV3+ and UNet are its extra fully supervised baselines.
NETWORKS: Registry[Network] = Registry("segmentation arch")
for _net in (
    Network("deeplabv3", "deeplabv3", "DeepLabV3 (the paper's network on pseudo-labels); "
            "input sides multiple of 8", output_stride=True),
    Network("deeplabv3plus", "deeplabv3plus", "DeepLabV3+ (fully supervised baseline); input "
            "sides multiple of 16", output_stride=True),
    Network("unet", "unet", "UNet (fully supervised baseline); input sides multiple of 32"),
):
    NETWORKS.add(_net.name, _net)


def output_stride_networks() -> list[str]:
    """The networks that take ``segmentation.output_stride``."""
    return [name for name, net in NETWORKS.items() if net.output_stride]
