"""Which image each mask file of a folder belongs to (:func:`collect`), and reading a mask at its
image's size (:func:`read_item`).

Three folders are understood:

- a pseudo-label folder of a run (``fold<k>/pseudo/<key>``, or its ``masks/``): its
  ``manifest.json`` names every image and its mask (:mod:`racam.pseudo.labels`);
- a folder holding ``masks/`` and no image of its own (``racam predict``'s output folder, a
  folder dataset's root): its ``masks/``;
- any other folder of masks: each mask ``<path>.<ext>`` belongs to the image with the same path
  (any image suffix) under the image folder, else to the only image there with the same file
  stem (a folder dataset's flat ``masks/<stem>.png``).

Image files named ``*_label.*`` or ``*_GT.*`` (KolektorSDD's masks) and files under the mask
folder are never images. A mask without an image, with two, or two masks of one image is a
:class:`~racam.errors.DataError` naming the mask.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from racam.cam.export import MASK_SUFFIXES as MASK_STEM_ENDINGS
from racam.data.io import IMAGE_SUFFIXES as SUFFIXES
from racam.data.io import image_size, read_mask
from racam.errors import DataError
from racam.pseudo.labels import MANIFEST as PSEUDO_MANIFEST


@dataclass(frozen=True)
class MaskItem:
    """One mask and its image. ``name`` is the image's path relative to the image folder,
    ``/``-separated: the COCO ``file_name``."""

    name: str
    image: Path
    mask: Path


@dataclass(frozen=True)
class MaskSet:
    """The masks of a folder, sorted by name; ``root``: the folder the names are relative to;
    ``source``: ``pseudo-labels`` or ``folder``."""

    root: Path
    items: list[MaskItem]
    source: str


def collect(mask_dir: Path, images: Path | None) -> MaskSet:
    """The masks of ``mask_dir`` and their images (module docstring). ``images`` is the image
    folder; it may be left out for a pseudo-label folder (default: the folder holding all of its
    images)."""
    mask_dir = Path(mask_dir)
    if not mask_dir.is_dir():
        raise DataError(f"{mask_dir}: mask folder not found")
    for folder in (mask_dir, mask_dir.parent if mask_dir.name == "masks" else None):
        if folder is not None and (folder / PSEUDO_MANIFEST).is_file():
            return _pseudo(folder, images)
    if images is None:
        raise DataError(f"{mask_dir}: not a pseudo-label folder (no {PSEUDO_MANIFEST}); "
                        "name the image folder with --images")
    if (mask_dir / "masks").is_dir() and not _files(mask_dir, recursive=False):
        mask_dir = mask_dir / "masks"
    return _folder(mask_dir, Path(images))


def read_item(item: MaskItem) -> tuple[np.ndarray, tuple[int, int]]:
    """``(bool mask (H, W), (width, height))``; a mask of another size than its image is a
    :class:`~racam.errors.DataError` naming both."""
    size = image_size(item.image)
    return read_mask(item.mask, size, image_path=item.image), size


def _files(folder: Path, recursive: bool = True) -> list[Path]:
    it = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(p for p in it if p.is_file() and p.suffix.lower() in SUFFIXES
                  and not p.name.startswith("."))


def _rel(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


def _without_suffix(rel: str) -> str:
    return rel.rsplit(".", 1)[0] if "." in rel.rsplit("/", 1)[-1] else rel


def _folder(mask_dir: Path, images: Path) -> MaskSet:
    if not images.is_dir():
        raise DataError(f"{images}: image folder not found")
    masks = _files(mask_dir)
    if not masks:
        raise DataError(f"{mask_dir}: no mask files ({', '.join(SUFFIXES)})")
    skip = mask_dir.resolve()
    found = [p for p in _files(images) if not p.stem.endswith(MASK_STEM_ENDINGS)
             and not p.resolve().is_relative_to(skip)]
    by_path: dict[str, list[Path]] = {}
    by_stem: dict[str, list[Path]] = {}
    for p in found:
        by_path.setdefault(_without_suffix(_rel(p, images)), []).append(p)
        by_stem.setdefault(p.stem, []).append(p)
    items: dict[Path, MaskItem] = {}
    for mask in masks:
        key = _without_suffix(_rel(mask, mask_dir))
        match = by_path.get(key) or by_stem.get(mask.stem, [])
        if not match:
            raise DataError(f"{mask}: no image {key}.* (nor one named {mask.stem}.*) under "
                            f"{images}")
        if len(match) > 1:
            raise DataError(f"{mask}: {len(match)} images match it ({match[0]}, {match[1]}); "
                            "rename one of them")
        if match[0] in items:
            raise DataError(f"{mask}: a second mask of {match[0]} (the first is "
                            f"{items[match[0]].mask})")
        items[match[0]] = MaskItem(_rel(match[0], images), match[0], mask)
    return MaskSet(images, sorted(items.values(), key=lambda i: i.name), "folder")


def _manifest_entries(folder: Path) -> list[tuple[Path, Path]]:
    """``(image, mask)`` of each image a pseudo-label manifest lists."""
    from racam.io import read_json

    path = folder / PSEUDO_MANIFEST
    try:
        entries = read_json(path)["images"]
        pairs = [(Path(e["image"]), folder / e["mask"]) for e in entries]
    except (ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{path}: not a pseudo-label manifest ({type(exc).__name__}: {exc})"
                        ) from None
    if not pairs:
        raise DataError(f"{path}: lists no images")
    return pairs


def _pseudo(folder: Path, images: Path | None) -> MaskSet:
    pairs = _manifest_entries(folder)
    root = Path(images) if images is not None else Path(
        os.path.commonpath([str(i.resolve().parent) for i, _ in pairs]))
    items = []
    for image, mask in pairs:
        if not image.is_file():
            raise DataError(f"{image}: image file not found (listed in "
                            f"{folder / PSEUDO_MANIFEST})")
        if not mask.is_file():
            raise DataError(f"{mask}: mask file not found (listed in "
                            f"{folder / PSEUDO_MANIFEST})")
        try:
            name = _rel(image.resolve(), root.resolve())
        except ValueError:
            raise DataError(f"{image}: not under the image folder {root}") from None
        items.append(MaskItem(name, image, mask))
    return MaskSet(root, sorted(items, key=lambda i: i.name), "pseudo-labels")
