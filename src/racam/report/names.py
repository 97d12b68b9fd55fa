"""Display names in reports and figures: each heat-map method's (its class's ``display_name``,
:mod:`racam.cam.registry`) and each segmentation network's."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

#: Display names of the segmentation networks.
ARCH_DISPLAY: dict[str, str] = {"unet": "UNet", "deeplabv3": "DeepLabV3",
                                "deeplabv3plus": "DeepLabV3+"}


class _Display(Mapping[str, str]):
    """Read-only display names: each heat-map method's (the ``display_name`` of its class, read
    from :mod:`racam.cam.registry` at lookup time) and the segmentation networks'."""

    @staticmethod
    def _names() -> dict[str, str]:
        from racam.cam.registry import method_specs

        return {**{s.name: s.display_name for s in method_specs()}, **ARCH_DISPLAY}

    def __getitem__(self, key: str) -> str:
        return self._names()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())

    def __len__(self) -> int:
        return len(self._names())


#: Name in tables and figures of a method (``"layercam+fgbp"`` -> ``"LayerCAM+FGBP"``) or a
#: segmentation network; ``DISPLAY.get(key, key)``.
DISPLAY: Mapping[str, str] = _Display()


def display_name(key: str) -> str:
    """Name of a heat-map method or segmentation network in reports (``key`` if unknown)."""
    return DISPLAY.get(key, key)
