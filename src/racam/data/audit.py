"""Every problem of a folder dataset (``good/``, ``defect/``, ``masks/``), listed by file.

What a factory's folder holds: unreadable or corrupt images (and image files the listing could
not use: broken links, link loops, sub-folders, which are not searched), defective images whose
mask is missing or empty, masks of another size than their image, masks whose meaning is
doubtful (more than two values, colours, transparency, a "defect" covering most of the mask:
:mod:`racam.data.masks`, the same reading training and evaluation use), masks that contradict
their image's folder, masks without an image, images with the same content, file stems used
twice. Each mask's reading rule is counted (:attr:`FolderAudit.mask_rules`) and ``racam data
info`` prints it. :func:`audit_folder` lists every problem instead of stopping at the first;
``racam data info`` prints them as warnings, a run warns and goes on (the classifier trains on
every readable image; an image without a usable mask is left out of the pixel metrics), and
``data.strict: true`` makes each of them an error.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from racam.data.images import IMAGE_SUFFIXES, ImageReadError, open_image, pixel_digest
from racam.data.listing import ImageListing, list_images
from racam.data.masks import read_mask_reading
from racam.errors import DataError

CLASSES = (("good", 0), ("defect", 1))


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
    #: digest of the decoded pixels: identical images share it (the split keeps them together)
    content: str = ""


@dataclass
class FolderAudit:
    """Result of :func:`audit_folder`."""

    root: Path
    has_masks: bool
    images: list[AuditedImage] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    sizes: Counter = field(default_factory=Counter)
    #: how the masks were read (:attr:`racam.data.masks.MaskReading.rule`) -> how many masks
    mask_rules: Counter = field(default_factory=Counter)

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


def _listing(folder: Path) -> ImageListing:
    """The image files of ``folder`` by name (decoded later; see :func:`audit_folder`)."""
    return list_images(folder, check=False) if folder.is_dir() else ImageListing(folder)


def _check_mask(mask_path: Path, image: Image.Image, image_path: Path, label: int,
                audit: FolderAudit) -> bool:
    """Whether the mask can be scored against; problems are appended to ``audit``."""
    problems = audit.problems
    try:
        reading = read_mask_reading(mask_path, image.size, image_path=image_path)
    except ImageReadError as exc:
        kind = "mask size" if exc.reason.startswith("mask is ") else "unreadable mask"
        problems.append(Problem(mask_path, kind, exc.reason))
        return False
    audit.mask_rules[reading.rule] += 1
    problems.extend(Problem(mask_path, d.kind, d.message) for d in reading.doubts
                    if not (label == 0 and d.kind == "mask mostly defect"))
    defect = bool(reading.defect.any())
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


SUBFOLDERS = ("good", "defect", "masks")


def _state(root: Path, listings: dict[str, ImageListing]) -> tuple:
    """Names, sizes and modification times of every file the audit reads, and what the
    listings skipped (its cache key)."""
    entries: list[tuple] = []
    for sub in SUBFOLDERS:
        for p in listings[sub].images:
            st = p.stat()
            entries.append((str(p), st.st_size, st.st_mtime_ns))
        entries.extend((str(s.path), s.reason) for s in listings[sub].skipped)
    return (str(root.resolve()), tuple(entries))


def _audit_image(audit: FolderAudit, img_path: Path, label: int, masks: dict[str, Path],
                 seen_content: dict[str, Path]) -> None:
    """Decode one image of ``good/`` or ``defect/`` and check it and its mask."""
    try:
        img = open_image(img_path)
    except ImageReadError as exc:
        audit.problems.append(Problem(img_path, "unreadable image", f"{exc.reason}; left out"))
        return
    digest = pixel_digest(img)
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
                    f"{audit.root / 'masks'}/{img_path.stem}.png or another image type with "
                    "that stem)"))
                usable = False
        else:
            usable = _check_mask(mask, img, img_path, label, audit)
    audit.images.append(AuditedImage(img_path, label, mask if usable else None, usable,
                                     digest))


def audit_folder(root: Path) -> FolderAudit:
    """Check every file of the folder dataset at ``root`` (module docstring). The result is
    cached per process until a file changes."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: folder dataset not found")
    listings = {sub: _listing(root / sub) for sub in SUBFOLDERS}
    for cls, _ in CLASSES:
        if not (root / cls).is_dir():
            raise DataError(f"{root / cls}: folder not found (a folder dataset needs good/ and "
                            "defect/)")
        if not listings[cls].images:
            raise DataError(f"{root / cls}: folder holds no images "
                            f"({', '.join(IMAGE_SUFFIXES)})")
    key = _state(root, listings)
    if key in _CACHE:
        return _CACHE[key]
    audit = FolderAudit(root, has_masks=(root / "masks").is_dir())
    for sub in SUBFOLDERS:
        audit.problems.extend(Problem(s.path, "not read", s.reason) for s in listings[sub].skipped)
    masks: dict[str, Path] = {}
    for p in listings["masks"].images:
        if p.stem in masks:
            audit.problems.append(Problem(p, "duplicate mask", f"stem {p.stem!r} also used by "
                                          f"{masks[p.stem].name}; this one is ignored"))
        else:
            masks[p.stem] = p
    seen_stem: dict[str, Path] = {}
    seen_content: dict[str, Path] = {}
    for cls, label in CLASSES:
        for img_path in listings[cls].images:
            if img_path.stem in seen_stem:
                audit.problems.append(Problem(img_path, "duplicate stem", f"file stem "
                                              f"{img_path.stem!r} also used by "
                                              f"{seen_stem[img_path.stem]}; stems must be "
                                              "unique over good/ and defect/ (this one is "
                                              "left out)"))
                continue
            seen_stem[img_path.stem] = img_path
            _audit_image(audit, img_path, label, masks, seen_content)
    for stem, p in masks.items():
        if stem not in seen_stem:
            audit.problems.append(Problem(p, "mask without image",
                                          f"no image with stem {stem!r} in good/ or defect/"))
    _CACHE[key] = audit
    return audit
