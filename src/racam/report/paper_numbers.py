"""The paper's published KolektorSDD numbers (Tables I, III, IV), in percent, and display names.

A heat-map method's display name is its class's ``display_name`` (:mod:`racam.cam.registry`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

#: The paper's own method: the reference of every bootstrap comparison of Table I.
REFERENCE = "racam"

#: Table I (KSDD): IoU, precision, recall, F1 of each heat-map method.
TABLE_I: dict[str, tuple[float, float, float, float]] = {
    "gradcam": (17.50, 19.27, 65.56, 29.79),
    "gradcam++": (17.22, 18.97, 65.14, 29.38),
    "xgradcam": (17.06, 18.86, 64.10, 29.15),
    "ablationcam": (17.96, 19.97, 64.08, 30.46),
    "scorecam": (17.63, 19.50, 64.76, 29.98),
    "layercam": (16.25, 17.76, 65.61, 27.95),
    "fullgrad": (13.19, 13.58, 82.21, 23.31),
    "racam": (25.20, 30.74, 58.29, 40.25),
}

#: Table IV (KSDD): IoU with and without FGBP.
TABLE_IV: dict[str, float] = {
    "layercam": 16.25, "layercam+fgbp": 18.65, "fullgrad": 13.19, "fullgrad+fgbp": 16.73,
}

#: Table III (KSDD): defect IoU and mIoU of segmentation networks.
TABLE_III: dict[str, tuple[float, float]] = {
    "unet-true": (54.56, 77.28),
    "deeplabv3-true": (53.89, 76.95),
    "deeplabv3plus-true": (55.59, 77.80),
    "deeplabv3-pseudo": (37.86, 68.93),
}

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
