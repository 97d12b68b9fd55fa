"""What ``racam list`` prints and CLI help reads: the names (and one line each) of the four
registries, heat-map methods, classifier backbones, segmentation networks and datasets.

Each kind is read from its :class:`racam.registry.Registry` when asked (the registries import
torch, so nothing is imported before then); heat-map methods include their ``+fgbp`` variants.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from racam.registry import choices_error

#: The kinds of ``racam list KIND``, in the order ``racam list`` prints them.
KINDS: tuple[str, ...] = ("methods", "backbones", "networks", "datasets")


@dataclass(frozen=True)
class Listed:
    """One registered name and a line about it."""

    name: str
    summary: str


class _Names(Protocol):
    """What is read of a registry here (any :class:`racam.registry.Registry`)."""

    def names(self) -> list[str]: ...

    def describe(self, name: str) -> str: ...


def _registry(kind: str) -> _Names:
    if kind == "backbones":
        from racam.models.registry import BACKBONES

        return BACKBONES
    if kind == "networks":
        from racam.models.networks import NETWORKS

        return NETWORKS
    from racam.data.registry import DATASETS

    return DATASETS


def listing(kind: str) -> list[Listed]:
    """Every registered name of ``kind`` (one of :data:`KINDS`) with its one-line summary, in
    registration order; an unknown kind is a ConfigError naming the kinds."""
    if kind not in KINDS:
        raise choices_error("racam list kind", kind, KINDS)
    if kind == "methods":
        from racam.cam import registry

        return [Listed(s.name, registry.describe(s)) for s in registry.method_specs()]
    reg = _registry(kind)
    return [Listed(name, reg.describe(name)) for name in reg.names()]


def names(kind: str) -> list[str]:
    """The registered names of ``kind`` (see :func:`listing`)."""
    if kind == "methods":
        from racam.cam.registry import method_names

        return method_names()
    if kind not in KINDS:
        raise choices_error("racam list kind", kind, KINDS)
    return _registry(kind).names()
