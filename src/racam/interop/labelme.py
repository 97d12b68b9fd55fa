"""LabelMe files (https://github.com/wkentaro/labelme, now labelmeai/labelme): one JSON file per
image, read and written by LabelMe itself and by X-AnyLabeling, Label Studio's and Supervisely's
converters.

Why LabelMe as the second format: it is a desktop tool installed with ``pip install labelme``
that needs no server or account (a factory PC without internet runs it), and its per-image
files are the most common polygon format after COCO. (CVAT and Label Studio read COCO already.)

Export (:func:`write_labelme`): ``OUT/<image stem>.json`` per image, the layout LabelMe looks
for with ``labelme IMAGE_FOLDER --output OUT`` (it finds an image's file by the image's base
name), so image stems must be unique. Keys as LabelMe's ``LabelFile`` writes them (labelme
``label_file.py``): ``version``, ``flags``, ``shapes``, ``imagePath`` (relative to the JSON
file), ``imageData`` (``null``: LabelMe then loads ``imagePath``), ``imageHeight``,
``imageWidth``; each shape has ``label`` (``defect``), ``points`` (``[[x, y], ...]``, the COCO
polygons' coordinates: pixel ``(col, row)`` is the square ``[col, col + 1) x [row, row + 1)``,
as LabelMe's canvas draws it), ``group_id`` (the instance's number: the polygons of one
component share it), ``description``, ``shape_type`` (``polygon``), ``flags`` and ``mask``
(``null``).

Import (:func:`read_labelme`): a folder of such files (or one file); each image's mask is the
union of its ``polygon``, ``rectangle`` and ``circle`` shapes (any label), rasterized as COCO
polygons are (:func:`racam.interop.shapes.rasterize`), not by LabelMe's own
``labelme_json_to_dataset`` (PIL's polygon fill draws the outline too, about half a pixel wider).
Other shape types (lines, points, masks) are a :class:`DataError` naming the file and shape.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from racam.errors import DataError
from racam.interop.masks import MaskSet, read_item
from racam.interop.records import AnnotatedImage, ExportOptions, ExportSummary
from racam.interop.shapes import instances, polygons, rasterize
from racam.io import atomic_write_text, read_json

#: The LabelMe file format version written (the keys of LabelMe 5.x).
VERSION = "5.5.0"
#: The label of every exported shape.
LABEL = "defect"
#: Vertices of the polygon a LabelMe circle is read as.
CIRCLE_VERTICES = 64


def _shape(flat: list[int], group: int) -> dict[str, Any]:
    points = [[flat[i], flat[i + 1]] for i in range(0, len(flat), 2)]
    return {"label": LABEL, "points": points, "group_id": group, "description": "",
            "shape_type": "polygon", "flags": {}, "mask": None}


def labelme_document(image: Path, json_dir: Path, size: tuple[int, int],
                     shapes: list[dict[str, Any]]) -> dict[str, Any]:
    """One LabelMe file's dictionary (keys in LabelMe's order)."""
    rel = Path(os.path.relpath(Path(image).resolve(), Path(json_dir).resolve())).as_posix()
    return {"version": VERSION, "flags": {}, "shapes": shapes, "imagePath": rel,
            "imageData": None, "imageHeight": size[1], "imageWidth": size[0]}


def _targets(masks: MaskSet, out: Path, overwrite: bool) -> list[Path]:
    by_stem: dict[str, str] = {}
    for item in masks.items:
        stem = Path(item.name).stem
        if stem in by_stem:
            raise DataError(f"{item.image}: same file stem as {by_stem[stem]}; LabelMe finds "
                            "label files by stem, so stems must be unique (use --format coco)")
        by_stem[stem] = item.name
    targets = [out / f"{Path(i.name).stem}.json" for i in masks.items]
    taken = [t for t in targets if t.exists()]
    if taken and not overwrite:
        raise DataError(f"{taken[0]}: exists ({len(taken)} of the files to write do); choose "
                        "another --out or pass --overwrite to replace them")
    return targets


def write_labelme(masks: MaskSet, out: Path, options: ExportOptions) -> ExportSummary:
    """Write one LabelMe file per mask into the folder ``out`` (a new folder appears only
    when complete; in an existing one each file is written atomically); existing files are
    replaced only with ``options.overwrite``. ``options.rle`` is refused (LabelMe
    files hold polygons)."""
    from racam.errors import ConfigError

    if options.rle:
        raise ConfigError("--rle applies to --format coco only (LabelMe files hold polygons)")
    out = Path(out)
    targets = _targets(masks, out, options.overwrite)
    # a new folder appears whole: written as <out>.partial, then renamed
    work = out if out.exists() else out.with_name(out.name + ".partial")
    if work != out and work.exists():  # left by an interrupted export
        import shutil

        shutil.rmtree(work)
    summary = ExportSummary()
    for item, target in zip(masks.items, targets, strict=True):
        mask, size = read_item(item)
        found = instances(mask)
        summary.add(found, polygons=True)
        shapes = [_shape(p, group) for group, inst in enumerate(found, start=1)
                  for p in polygons(inst, options.tolerance)]
        doc = labelme_document(item.image, out, size, shapes)
        atomic_write_text(work / target.name, _dumps(doc))
        summary.files.append(str(target))
    if work != out:
        work.rename(out)
    return summary


def _dumps(doc: dict[str, Any]) -> str:
    import json

    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def _points(shape: dict[str, Any], where: str) -> list[list[float]]:
    pts = shape.get("points")
    if not isinstance(pts, list) or not all(
            isinstance(p, list) and len(p) == 2 and all(isinstance(v, int | float) for v in p)
            for p in pts):
        raise DataError(f"{where}: points must be a list of [x, y] pairs")
    return [[float(p[0]), float(p[1])] for p in pts]


def shape_polygon(shape: Any, where: str) -> list[float]:
    """A LabelMe shape that marks an area as one flat COCO polygon ``[x1, y1, ...]``."""
    if not isinstance(shape, dict):
        raise DataError(f"{where}: a shape must be an object")
    kind = shape.get("shape_type") or "polygon"  # LabelMe's default
    pts = _points(shape, where)
    if kind == "rectangle" and len(pts) == 2:
        (x0, y0), (x1, y1) = pts
        pts = [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]
    elif kind == "circle" and len(pts) == 2:
        (cx, cy), (px, py) = pts
        r = math.hypot(px - cx, py - cy)
        pts = [[cx + r * math.cos(a), cy + r * math.sin(a)]
               for a in (2 * math.pi * k / CIRCLE_VERTICES for k in range(CIRCLE_VERTICES))]
    elif kind != "polygon":
        raise DataError(f"{where}: shape_type {kind!r} does not mark an area; draw a polygon, "
                        "rectangle or circle")
    if len(pts) < 3:
        raise DataError(f"{where}: a {kind} needs at least 3 points, has {len(pts)}")
    return [v for p in pts for v in p]


def read_labelme_file(path: Path) -> AnnotatedImage:
    """The mask of one LabelMe file (module docstring)."""
    try:
        data = read_json(path)
    except (ValueError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not a JSON file ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("shapes"), list):
        raise DataError(f"{path}: not a LabelMe file (no 'shapes' list)")
    w, h, image = data.get("imageWidth"), data.get("imageHeight"), data.get("imagePath")
    if not (isinstance(w, int) and isinstance(h, int) and w > 0 and h > 0):
        raise DataError(f"{path}: imageWidth and imageHeight must be positive integers")
    if not isinstance(image, str) or not image:
        raise DataError(f"{path}: imagePath must be a non-empty string")
    polys = [shape_polygon(s, f"{path}: shapes[{k}]") for k, s in enumerate(data["shapes"])]
    mask = rasterize([polys] if polys else [], h, w, str(path))
    return AnnotatedImage(Path(image.replace("\\", "/")).name, mask, str(path))


def read_labelme(path: Path) -> list[AnnotatedImage]:
    """The masks of a LabelMe file or of every ``*.json`` file of a folder (not recursive)."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.glob("*.json") if not p.name.startswith("."))
        if not files:
            raise DataError(f"{path}: no LabelMe files (*.json)")
        return [read_labelme_file(p) for p in files]
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    return [read_labelme_file(path)]
