"""The labelling-tool formats ``racam masks`` writes and reads, by name (``--format``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from racam.errors import ConfigError, DataError
from racam.interop import coco, labelme
from racam.interop.masks import MaskSet
from racam.interop.records import AnnotatedImage, ExportOptions, ExportSummary


@dataclass(frozen=True)
class ToolFormat:
    """``write(masks, out, options)``: export; ``read(path)``: the masks a file (or folder)
    holds; ``out``: what ``--out`` names on export."""

    name: str
    write: Callable[[MaskSet, Path, ExportOptions], ExportSummary]
    read: Callable[[Path], list[AnnotatedImage]]
    out: str


FORMATS = {f.name: f for f in (
    ToolFormat("coco", coco.write_coco, coco.read_coco, "a .json file"),
    ToolFormat("labelme", labelme.write_labelme, labelme.read_labelme, "a folder"),
)}


def get(name: str) -> ToolFormat:
    """The format called ``name``, or a :class:`ConfigError` listing them."""
    try:
        return FORMATS[name]
    except KeyError:
        raise ConfigError(f"--format must be one of {', '.join(FORMATS)}, got {name!r}") \
            from None


def guess(path: Path) -> ToolFormat:
    """The format of a file to import: a folder holds LabelMe files; a JSON file with an
    ``images`` list is COCO, one with ``shapes`` LabelMe."""
    import json

    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: file not found")
    if path.is_dir():
        return FORMATS["labelme"]
    try:
        head = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot tell its format ({exc}); pass --format") from None
    if isinstance(head, dict) and "images" in head:
        return FORMATS["coco"]
    if isinstance(head, dict) and "shapes" in head:
        return FORMATS["labelme"]
    raise ConfigError(f"{path}: neither a COCO file (images) nor a LabelMe file (shapes); pass "
                      "--format")
