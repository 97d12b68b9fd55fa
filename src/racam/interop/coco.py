"""COCO instance files (the format of https://cocodataset.org/#format-data; CVAT, Label Studio,
Roboflow, FiftyOne and detection libraries read it).

Export (:func:`write_coco`): one ``images`` entry per mask (``file_name``: the image's path
relative to the image folder, ``width``, ``height``), one annotation per 8-connected component
of the mask, category 1 ``defect``. ``segmentation`` is a list of polygons (``iscrowd`` 0;
holes filled) or, with ``rle``, a compressed RLE (``iscrowd`` 1, as COCO stores RLE; exact,
holes kept); ``area`` is the pixels the segmentation marks, ``bbox`` the component's box. An
image with an empty mask has no annotation but keeps its ``images`` entry, so an import gives it
an empty mask.

Import (:func:`read_coco`): each ``images`` entry becomes one mask, the union of its
annotations (polygons, compressed or uncompressed RLE; any category counts as defect).
"""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

from racam.errors import DataError
from racam.interop.masks import MaskSet, read_item
from racam.interop.records import AnnotatedImage, ExportOptions, ExportSummary
from racam.interop.shapes import Instance, instance_rle, instances, polygons, rasterize
from racam.io import atomic_write_json, read_json

#: The one category of racam's masks.
CATEGORY = {"id": 1, "name": "defect", "supercategory": "defect"}


def _annotation(inst: Instance, size: tuple[int, int], options: ExportOptions
                ) -> dict[str, Any]:
    width, height = size
    if options.rle:
        seg: Any = instance_rle(inst, height, width)
        area = inst.area
    else:
        seg = polygons(inst, options.tolerance)
        area = int(rasterize([seg], height, width, "polygons").sum())
    return {"segmentation": seg, "area": float(area), "bbox": [float(v) for v in inst.bbox],
            "iscrowd": int(options.rle), "category_id": CATEGORY["id"]}


def coco_document(masks: MaskSet, options: ExportOptions) -> tuple[dict[str, Any], ExportSummary]:
    """The COCO dictionary of ``masks`` and what it holds."""
    summary = ExportSummary()
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for image_id, item in enumerate(masks.items, start=1):
        mask, size = read_item(item)
        found = instances(mask)
        summary.add(found, polygons=not options.rle)
        images.append({"id": image_id, "file_name": item.name, "width": size[0],
                       "height": size[1]})
        for inst in found:
            annotations.append({"id": len(annotations) + 1, "image_id": image_id,
                                **_annotation(inst, size, options)})
    info = {"description": f"racam masks ({masks.source}); images under {masks.root}",
            "contributor": "racam", "version": "1.0",
            "date_created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")}
    return {"info": info, "licenses": [], "images": images, "annotations": annotations,
            "categories": [CATEGORY]}, summary


def write_coco(masks: MaskSet, out: Path, options: ExportOptions) -> ExportSummary:
    """Write ``masks`` as the COCO file ``out`` (atomically). An existing ``out`` is replaced
    only with ``options.overwrite`` (a tool's corrections are never lost by a second export)."""
    out = Path(out)
    if out.exists() and not options.overwrite:
        raise DataError(f"{out}: exists; choose another --out or pass --overwrite to replace it")
    document, summary = coco_document(masks, options)
    atomic_write_json(out, document)
    summary.files.append(str(out))
    return summary


def _load(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        data = read_json(path)
    except (ValueError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not a JSON file ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise DataError(f"{path}: not a COCO file (no 'images' list)")
    if not isinstance(data.get("annotations", []), list):
        raise DataError(f"{path}: 'annotations' must be a list")
    return data


def _images(path: Path, entries: list[Any]) -> dict[Any, tuple[str, int, int]]:
    """``id -> (file_name, width, height)`` of the ``images`` entries."""
    out: dict[Any, tuple[str, int, int]] = {}
    for i, e in enumerate(entries):
        where = f"{path}: images[{i}]"
        if not isinstance(e, dict) or not {"id", "file_name", "width", "height"} <= set(e):
            raise DataError(f"{where}: needs id, file_name, width and height")
        w, h, name = e["width"], e["height"], e["file_name"]
        if not (isinstance(w, int) and isinstance(h, int) and w > 0 and h > 0):
            raise DataError(f"{where}: width and height must be positive integers")
        if not isinstance(name, str) or not name:
            raise DataError(f"{where}: file_name must be a non-empty string")
        if e["id"] in out:
            raise DataError(f"{where}: id {e['id']!r} is used twice")
        out[e["id"]] = (name.replace("\\", "/"), w, h)
    return out


def read_coco(path: Path) -> list[AnnotatedImage]:
    """One :class:`AnnotatedImage` per ``images`` entry of the COCO file ``path`` (module
    docstring); a malformed entry is a :class:`DataError` naming it."""
    path = Path(path)
    data = _load(path)
    images = _images(path, data["images"])
    segs: dict[Any, list[tuple[int, Any]]] = {k: [] for k in images}
    for k, ann in enumerate(data.get("annotations", [])):
        if not isinstance(ann, dict) or ann.get("image_id") not in images:
            raise DataError(f"{path}: annotations[{k}]: image_id "
                            f"{ann.get('image_id') if isinstance(ann, dict) else None!r} is "
                            "not in 'images'")
        if "segmentation" not in ann:
            raise DataError(f"{path}: annotations[{k}]: no segmentation")
        segs[ann["image_id"]].append((k, ann["segmentation"]))
    out = []
    for image_id, (name, width, height) in images.items():
        mask = rasterize([], height, width, name)
        for k, seg in segs[image_id]:
            mask |= rasterize([seg], height, width, f"{path}: annotations[{k}] (image {name})")
        out.append(AnnotatedImage(name, mask, f"{path}: image {name}"))
    return out
