"""Every problem of a folder dataset (``good/``, ``defect/``, ``masks/``), listed by file.

What a factory's folder holds: unreadable or corrupt images, defective images whose mask is
missing or empty, masks of another size than their image or not binary (more than two
values), masks that contradict their image's folder, masks without an image, images with the
same content, file stems used twice. :func:`audit_folder` lists them all instead of stopping at
the first; ``racam data info`` prints them as warnings, a run warns and goes on (the classifier
trains on every readable image; an image without a usable mask is left out of the pixel
metrics), and ``data.strict: true`` makes each of them an error.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from racam.data.io import IMAGE_SUFFIXES
from racam.errors import DataError

CLASSES = (("good", 0), ("defect", 1))
_READ_ERRORS = (UnidentifiedImageError, OSError, ValueError, SyntaxError)


@dataclass(frozen=True)
class Problem:
    """One problem of one file: ``kind`` is a short tag (``missing mask``, ``empty mask``,
    ...), ``message`` says what is wrong."""

    path: Path
    kind: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.kind}: {self.message}"


@dataclass(frozen=True)
class AuditedImage:
    """A readable image: its label, its mask file (``None``: none or not usable) and whether
    its mask can be scored against (``False`` leaves it out of pixel metrics)."""

    path: Path
    label: int
    mask_path: Path | None
    mask_usable: bool


@dataclass
class FolderAudit:
    """Result of :func:`audit_folder`."""

    root: Path
    has_masks: bool
    images: list[AuditedImage] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    sizes: Counter = field(default_factory=Counter)

    @property
    def class_counts(self) -> dict[str, int]:
        """Readable images per folder (``good``, ``defect``)."""
        return {cls: sum(i.label == lab for i in self.images) for cls, lab in CLASSES}

    @property
    def without_usable_mask(self) -> list[Path]:
        """Readable images left out of pixel metrics (only when the folder has ``masks/``)."""
        return [i.path for i in self.images if self.has_masks and not i.mask_usable]

    def raise_first(self) -> None:
        """``data.strict``: a :class:`DataError` for the first problem (naming how many)."""
        if self.problems:
            more = len(self.problems) - 1
            tail = f" (and {more} more; racam data info {self.root} lists them)" if more else ""
            raise DataError(f"{self.problems[0]}{tail}")


def _files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _decode(path: Path) -> Image.Image:
    img = Image.open(path)
    img.load()
    return img


def _check_mask(mask_path: Path, image: Image.Image, image_path: Path, label: int,
                problems: list[Problem]) -> bool:
    """Whether the mask can be scored against; problems are appended."""
    try:
        m = _decode(mask_path)
    except _READ_ERRORS as exc:
        problems.append(Problem(mask_path, "unreadable mask", f"cannot read mask file ({exc})"))
        return False
    if m.size != image.size:
        problems.append(Problem(mask_path, "mask size", f"mask is {m.size[0]}x{m.size[1]} "
                                f"(width x height) but its image {image_path} is "
                                f"{image.size[0]}x{image.size[1]}"))
        return False
    arr = np.asarray(m)
    values = np.unique(arr.reshape(-1, arr.shape[-1]) if arr.ndim == 3 else arr, axis=0)
    if len(values) > 2:
        problems.append(Problem(mask_path, "mask not binary", f"{len(values)} different values "
                                "(nonzero is taken as defect)"))
    defect = bool(arr.any())
    if label == 1 and not defect:
        problems.append(Problem(mask_path, "empty mask",
                                f"mask of defective image {image_path} is empty"))
        return False
    if label == 0 and defect:
        problems.append(Problem(mask_path, "mask contradicts folder",
                                f"mask of defect-free image {image_path} has defect pixels"))
        return False
    return True


_CACHE: dict[tuple, FolderAudit] = {}


def _state(root: Path) -> tuple:
    """Names, sizes and modification times of every file the audit reads (its cache key)."""
    entries = []
    for sub in ("good", "defect", "masks"):
        for p in _files(root / sub):
            st = p.stat()
            entries.append((str(p), st.st_size, st.st_mtime_ns))
    return (str(root.resolve()), tuple(entries))


def audit_folder(root: Path) -> FolderAudit:
    """Check every file of the folder dataset at ``root`` (module docstring). The result is
    cached per process until a file changes."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: folder dataset not found")
    for cls, _ in CLASSES:
        if not (root / cls).is_dir():
            raise DataError(f"{root / cls}: folder not found (a folder dataset needs good/ and "
                            "defect/)")
        if not _files(root / cls):
            raise DataError(f"{root / cls}: folder holds no images "
                            f"({', '.join(IMAGE_SUFFIXES)})")
    key = _state(root)
    if key in _CACHE:
        return _CACHE[key]
    masks_dir = root / "masks"
    audit = FolderAudit(root, has_masks=masks_dir.is_dir())
    masks: dict[str, Path] = {}
    for p in _files(masks_dir):
        if p.stem in masks:
            audit.problems.append(Problem(p, "duplicate mask", f"stem {p.stem!r} also used by "
                                          f"{masks[p.stem].name}; this one is ignored"))
        else:
            masks[p.stem] = p
    seen_stem: dict[str, Path] = {}
    seen_content: dict[str, Path] = {}
    for cls, label in CLASSES:
        for img_path in _files(root / cls):
            if img_path.stem in seen_stem:
                audit.problems.append(Problem(img_path, "duplicate stem", f"file stem "
                                              f"{img_path.stem!r} also used by "
                                              f"{seen_stem[img_path.stem]}; stems must be "
                                              "unique over good/ and defect/ (this one is "
                                              "left out)"))
                continue
            seen_stem[img_path.stem] = img_path
            try:
                img = _decode(img_path)
            except _READ_ERRORS as exc:
                audit.problems.append(Problem(img_path, "unreadable image",
                                              f"cannot read image file ({exc}); left out"))
                continue
            digest = hashlib.sha256(f"{img.mode}{img.size}".encode() + img.tobytes()).hexdigest()
            if digest in seen_content:
                audit.problems.append(Problem(img_path, "duplicate image", "same content as "
                                              f"{seen_content[digest]}"))
            else:
                seen_content[digest] = img_path
            audit.sizes[img.size] += 1
            mask = masks.get(img_path.stem)
            usable = True
            if audit.has_masks:
                if mask is None:
                    if label == 1:
                        audit.problems.append(Problem(
                            img_path, "missing mask", f"mask file missing (expected "
                            f"{masks_dir}/{img_path.stem}.png or another image type with that "
                            "stem)"))
                        usable = False
                else:
                    usable = _check_mask(mask, img, img_path, label, audit.problems)
            audit.images.append(AuditedImage(img_path, label, mask if usable else None, usable))
    for stem, p in masks.items():
        if stem not in seen_stem:
            audit.problems.append(Problem(p, "mask without image",
                                          f"no image with stem {stem!r} in good/ or defect/"))
    _CACHE[key] = audit
    return audit
