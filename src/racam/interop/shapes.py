"""A binary mask as instances (8-connected components, :func:`instances`), an instance as
polygons (:func:`polygons`) or COCO RLE (:func:`instance_rle`), and polygons or RLE back to a
mask (:func:`rasterize`, pycocotools' rasterizer, so every tool that uses it reads the same
pixels).

Coordinates follow COCO (and LabelMe's and CVAT's canvases): ``x`` to the right, ``y`` down,
pixel ``(col, row)`` is the unit square ``[col, col + 1) x [row, row + 1)``.

Polygons trace pixel edges: the component's mask, upsampled 2x, is contoured at 0.5
(``skimage.measure.find_contours``), which passes along pixel edges and cuts each pixel corner by
0.25 px; rounding the vertices to integers puts them back on the pixel corners (the exact
outline), then Douglas-Peucker (:func:`simplify`) drops the vertices within ``tolerance`` px of
a simpler outline. Every pixel centre is at least 0.5 px from the exact
outline and pycocotools moves a vertex by at most 0.1 px (it rounds to a 0.2 px grid), so with the
default tolerance (0.4 px; it turns one-pixel staircases into straight slanted edges) the
polygons rasterize back to exactly the component (tests/test_interop.py checks this on random
shapes); a larger tolerance gives fewer vertices to edit and an outline up to ``tolerance`` px
from the original. A polygon has no holes: a component's holes are filled
(:func:`hole_pixels` counts them); RLE keeps them.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from racam.errors import DataError

#: Default polygon tolerance (px): the most that keeps every pixel (module docstring).
EXACT_TOLERANCE = 0.4


@dataclass(frozen=True)
class Instance:
    """One 8-connected component of a mask: its bounding box's corner ``(x, y)`` and the
    bool crop ``(h, w)`` of the box."""

    x: int
    y: int
    crop: np.ndarray

    @property
    def bbox(self) -> list[int]:
        """COCO ``[x, y, width, height]``."""
        return [self.x, self.y, int(self.crop.shape[1]), int(self.crop.shape[0])]

    @property
    def area(self) -> int:
        return int(self.crop.sum())

    def full(self, height: int, width: int) -> np.ndarray:
        """The instance as a bool mask ``(height, width)``."""
        out = np.zeros((height, width), dtype=bool)
        h, w = self.crop.shape
        out[self.y:self.y + h, self.x:self.x + w] = self.crop
        return out


def instances(mask: np.ndarray) -> list[Instance]:
    """The 8-connected components of a bool mask, in scan order (as ``racam predict``'s boxes)."""
    from skimage.measure import label, regionprops

    out = []
    for region in regionprops(label(mask, connectivity=2)):
        r0, c0, _, _ = region.bbox
        out.append(Instance(int(c0), int(r0), np.asarray(region.image, dtype=bool)))
    return out


def _filled(crop: np.ndarray) -> np.ndarray:
    """The crop with its holes filled: background not 4-connected to the outside."""
    from skimage.measure import label

    background = label(~np.pad(crop, 1), connectivity=1)
    return np.asarray(background[1:-1, 1:-1] != background[0, 0])


def hole_pixels(inst: Instance) -> int:
    """Pixels inside the instance's outline that are not in it (filled in polygon form)."""
    return int(_filled(inst.crop).sum()) - inst.area


def _corners(xy: np.ndarray) -> np.ndarray:
    """A closed integer outline (first point repeated last) without repeated points and
    without the points inside straight runs."""
    xy = xy[np.r_[True, np.any(np.diff(xy, axis=0) != 0, axis=1)]]
    if not np.array_equal(xy[0], xy[-1]):
        xy = np.vstack([xy, xy[:1]])
    ring = xy[:-1]
    step = np.sign(np.diff(np.vstack([ring[-1:], ring, ring[:1]]), axis=0))
    turns = ring[np.any(step[1:] != step[:-1], axis=1)]
    return np.vstack([turns, turns[:1]]) if len(turns) >= 3 else xy


def simplify(ring: np.ndarray, tolerance: float) -> np.ndarray:
    """Douglas-Peucker on a closed outline ``ring`` (``(n, 2)``, first point not repeated): the
    vertices kept, in order; every dropped vertex is within ``tolerance`` of the line through
    the two kept vertices around it."""
    n = len(ring)
    pts = np.vstack([ring, ring[:1]])
    far = int(np.argmax(((ring - ring[0]) ** 2).sum(axis=1)))
    keep = np.zeros(n + 1, dtype=bool)
    keep[[0, far, n]] = True
    stack = [(0, far), (far, n)]
    while stack:
        a, b = stack.pop()
        if b - a < 2:
            continue
        d, inner = pts[b] - pts[a], pts[a + 1:b] - pts[a]
        length = float(np.hypot(*d))
        dist = (np.abs(d[0] * inner[:, 1] - d[1] * inner[:, 0]) / length if length > 0
                else np.hypot(inner[:, 0], inner[:, 1]))
        i = int(np.argmax(dist))
        if dist[i] > tolerance:
            keep[a + 1 + i] = True
            stack += [(a, a + 1 + i), (a + 1 + i, b)]
    return ring[keep[:n]]


def polygons(inst: Instance, tolerance: float = EXACT_TOLERANCE) -> list[list[int]]:
    """The instance's outline as COCO polygons ``[x1, y1, x2, y2, ...]`` (one per outer
    contour: pixels touching only at a corner give separate polygons); holes filled."""
    from skimage.measure import find_contours

    up = np.pad(np.kron(_filled(inst.crop), np.ones((2, 2), dtype=np.float32)), 1)
    out = []
    for contour in find_contours(up, 0.5):
        xy = np.round(np.stack([(contour[:, 1] - 0.5) / 2 + inst.x,
                                (contour[:, 0] - 0.5) / 2 + inst.y], axis=1))
        xy = _corners(xy)
        ring = xy[:-1]  # closed: last == first
        simple = simplify(ring, tolerance) if tolerance > 0 else ring
        if len(simple) < 3:  # collapsed to a line: keep the exact outline
            simple = ring
        out.append([int(v) for v in simple.ravel()])
    return out


def encode_rle(mask: np.ndarray) -> dict[str, Any]:
    """COCO compressed RLE ``{"size": [h, w], "counts": str}`` of a bool mask."""
    from pycocotools import mask as coco_mask

    rle = coco_mask.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}


def instance_rle(inst: Instance, height: int, width: int) -> dict[str, Any]:
    """COCO RLE of the instance in an image ``(height, width)`` (holes kept)."""
    return encode_rle(inst.full(height, width))


def _polygon_rles(polys: Any, height: int, width: int, where: str) -> list[Any]:
    from pycocotools import mask as coco_mask

    if not all(isinstance(p, list) and len(p) >= 6 and len(p) % 2 == 0
               and all(isinstance(v, int | float) and np.isfinite(v) for v in p) for p in polys):
        raise DataError(f"{where}: a polygon must be a list of at least 3 finite x, y pairs")
    return list(coco_mask.frPyObjects([[float(v) for v in p] for p in polys], height, width))


def _rle(seg: dict[str, Any], height: int, width: int, where: str) -> Any:
    from pycocotools import mask as coco_mask

    size, counts = seg.get("size"), seg.get("counts")
    if size != [height, width]:
        raise DataError(f"{where}: RLE size {size} is not the image's [height, width] "
                        f"[{height}, {width}]")
    if isinstance(counts, list):  # uncompressed RLE (CVAT writes these)
        return coco_mask.frPyObjects(seg, height, width)
    if isinstance(counts, str):
        return {"size": [height, width], "counts": counts.encode("ascii")}
    raise DataError(f"{where}: RLE counts must be a string or a list of integers")


def rasterize(segmentations: list[Any], height: int, width: int, where: str) -> np.ndarray:
    """Bool mask ``(height, width)``: the union of COCO segmentations (each a list of polygons
    or an RLE dict). Malformed input is a :class:`~racam.errors.DataError` naming ``where``."""
    from pycocotools import mask as coco_mask

    rles: list[Any] = []
    for seg in segmentations:
        if isinstance(seg, list):
            rles += _polygon_rles(seg, height, width, where) if seg else []
        elif isinstance(seg, dict):
            rles.append(_rle(seg, height, width, where))
        else:
            raise DataError(f"{where}: segmentation must be a list of polygons or an RLE dict, "
                            f"got {type(seg).__name__}")
    if not rles:
        return np.zeros((height, width), dtype=bool)
    try:
        merged = coco_mask.merge(rles)
        with warnings.catch_warnings():  # pycocotools 2.0 under numpy 2: a copy= deprecation
            warnings.simplefilter("ignore", DeprecationWarning)
            return np.asarray(coco_mask.decode(merged), dtype=bool)
    except (ValueError, TypeError) as exc:
        raise DataError(f"{where}: cannot decode segmentation ({exc})") from None
