"""The allowed names of config keys, read from the registries (:mod:`racam.registry`) when a
config is checked, and the device check: the choices :mod:`racam.config` checks fields against."""

from __future__ import annotations

__all__ = ["backbones", "datasets", "device", "fusions", "head_scopes", "keep_epochs", "mask_cuts",
           "methods",
           "networks", "plugin_methods", "weightings"]


def datasets() -> list[str]:
    from racam.data.registry import DATASETS

    return DATASETS.names()


def backbones() -> list[str]:
    from racam.models.registry import BACKBONES

    return BACKBONES.names()


def networks() -> list[str]:
    from racam.models.networks import NETWORKS

    return NETWORKS.names()


def keep_epochs() -> tuple[str, ...]:
    """``classifier.keep_epoch``: how a classifier's kept epoch is chosen."""
    from racam.classifier.epochs import KEEP_EPOCH

    return KEEP_EPOCH


def mask_cuts() -> list[str]:
    """``segmentation.mask_cut``: where a network's probability is cut into a mask."""
    from racam.segmentation.mask_cut import MASK_CUTS

    return MASK_CUTS.names()


def methods() -> list[str]:
    from racam.cam.registry import method_names

    return method_names()


def plugin_methods() -> list[str]:
    """Methods with a ``+fgbp`` variant (``reproduce.plugin_methods``)."""
    return [m.removesuffix("+fgbp") for m in methods() if m.endswith("+fgbp")]


def fusions() -> tuple[str, ...]:
    from racam.cam.maps import FUSIONS

    return FUSIONS


def weightings() -> tuple[str, ...]:
    from racam.cam.racam import WEIGHTINGS

    return WEIGHTINGS


def head_scopes() -> tuple[str, ...]:
    from racam.cam.percentile import HEAD_SCOPES

    return HEAD_SCOPES


def device(value: str) -> str | None:
    """``auto`` or a torch device string (``cpu``, ``cuda``, ``cuda:1``, ...)."""
    if value == "auto":
        return None
    import torch

    try:
        torch.device(value)
    except (RuntimeError, ValueError):
        return f"unknown device {value!r}; use auto, cpu, cuda or cuda:N"
    return None
