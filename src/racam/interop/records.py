"""The typed values the tool formats exchange: export options and counts in, masks read back
out."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from racam.interop.shapes import EXACT_TOLERANCE, Instance, hole_pixels


@dataclass(frozen=True)
class ExportOptions:
    """``rle``: COCO RLE (exact, holes kept) instead of polygons; ``tolerance``: polygon
    simplification in px (:func:`racam.interop.shapes.polygons`); ``overwrite``: replace an
    existing output file."""

    rle: bool = False
    tolerance: float = EXACT_TOLERANCE
    overwrite: bool = False


@dataclass
class ExportSummary:
    """What an export wrote: ``images`` (with an empty mask or not), ``instances`` (connected
    components), ``holes_filled``: pixels inside polygons that were not in the mask (polygons
    hold no holes), and the files written."""

    images: int = 0
    instances: int = 0
    holes_filled: int = 0
    files: list[str] = field(default_factory=list)

    def add(self, found: list[Instance], polygons: bool) -> None:
        """Count one image and its instances."""
        self.images += 1
        self.instances += len(found)
        if polygons:
            self.holes_filled += sum(hole_pixels(i) for i in found)


@dataclass(frozen=True)
class AnnotatedImage:
    """One image's mask as a tool file holds it: ``name`` is the image's path as the file
    gives it (``/``-separated), ``mask`` a bool array ``(height, width)`` (the union of every
    shape, whatever its label); ``where`` says where in which file it was read."""

    name: str
    mask: np.ndarray
    where: str
