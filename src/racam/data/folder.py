"""A user's own images: ``good/`` and ``defect/`` sub-folders give the image-level labels.

Layout::

    root/
      good/    *.png|jpg|bmp|tif   defect-free images (label 0)
      defect/  ...                 defective images (label 1)
      masks/   <stem>.<ext>        optional pixel masks, same file stem as the image
      split.yaml | split.json      optional: {"train": [stems], "test": [stems]}

- Masks are optional and used for evaluation only. Without ``masks/`` every sample's mask is
  ``None``. With ``masks/``, every image in ``defect/`` must have a mask (a missing one is an
  error naming the image); an image in ``good/`` without a mask file gets an empty mask (its
  record's ``mask_path`` stays ``None``; ``dataset.true_mask(i)`` returns the empty
  array). A mask that contradicts its folder (defect pixels in the mask of a ``good/`` image,
  an empty mask for a ``defect/`` image) is an error.
- File stems must be unique over ``good/`` and ``defect/`` (they key the masks and the split).
- Split: when ``split.yaml`` or ``split.json`` exists it decides (stems listed under ``train``
  and ``test``; an image listed in neither is in ``"all"`` only). Otherwise a seeded
  stratified split (:mod:`racam.data.stratify`, scikit-learn's StratifiedShuffleSplit) puts
  ``round(test_fraction * n)`` images of each class (at least one, and at least one left for
  training, when the class has two or more) in ``test``.
"""

from __future__ import annotations

import json
from pathlib import Path

from racam.data.io import IMAGE_SUFFIXES, Record, RecordDataset, image_size, mask_label
from racam.data.spec import DataFields, DatasetSpec
from racam.data.stratify import stratified_split
from racam.errors import ConfigError, DataError

SPLITS = ("train", "test", "all")
SPLIT_FILES = ("split.yaml", "split.yml", "split.json")
CLASSES = (("good", 0), ("defect", 1))


def _images(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise DataError(f"{folder}: folder not found (a folder dataset needs good/ and defect/)")
    files = sorted(p for p in folder.iterdir()
                   if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DataError(f"{folder}: folder holds no images ({', '.join(IMAGE_SUFFIXES)})")
    return files


def _mask_index(folder: Path) -> dict[str, Path]:
    index: dict[str, Path] = {}
    for p in sorted(folder.iterdir()):
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES:
            if p.stem in index:
                raise DataError(f"{p}: two masks share the stem {p.stem!r} ({index[p.stem].name})")
            index[p.stem] = p
    return index


def folder_records(root: Path) -> list[Record]:
    """Records of every image under ``root/good`` and ``root/defect`` (sorted by class, name)."""
    if not root.is_dir():
        raise DataError(f"{root}: folder dataset not found")
    masks_dir = root / "masks"
    masks = _mask_index(masks_dir) if masks_dir.is_dir() else None
    records: list[Record] = []
    seen: dict[str, Path] = {}
    for cls, label in CLASSES:
        for img in _images(root / cls):
            if img.stem in seen:
                raise DataError(f"{img}: file stem {img.stem!r} also used by {seen[img.stem]}; "
                                "stems must be unique over good/ and defect/")
            seen[img.stem] = img
            mask = None if masks is None else masks.get(img.stem)
            if masks is not None and mask is None and label == 1:
                raise DataError(f"{img}: mask file missing (expected {masks_dir}/{img.stem}.png "
                                "or another image type with that stem)")
            if mask is None:
                image_size(img)  # header check: an unreadable file fails here, named
            elif mask_label(mask, img) != label:
                what = ("of defect-free image {} has defect pixels", "of defective image {} "
                        "is empty")[label].format(img)
                raise DataError(f"{mask}: mask {what}")
            records.append(Record(id=f"{cls}/{img.stem}", image_path=img, mask_path=mask,
                                  label=label, group=img.stem))
    return records


def stratified_assignment(labels: list[int], test_fraction: float, seed: int) -> list[str]:
    """Seeded stratified assignment of each index to ``"train"`` or ``"test"``
    (:func:`racam.data.stratify.stratified_split` picks the test images)."""
    if not 0.0 < test_fraction < 1.0:
        raise ConfigError(f"test_fraction must be in (0, 1), got {test_fraction}")
    _, test = stratified_split(labels, test_fraction, seed)
    out = ["train"] * len(labels)
    for i in test:
        out[i] = "test"
    return out


def read_user_split(path: Path, stems: list[str]) -> list[str | None]:
    """Assignment from a user's ``split.yaml``/``split.json`` (``None``: in neither list)."""
    try:
        text = path.read_text()
        if path.suffix == ".json":
            data = json.loads(text)
        else:
            import yaml

            data = yaml.safe_load(text)
    except Exception as exc:  # parse errors of either format
        raise DataError(f"{path}: cannot read split file ({exc})") from None
    if not isinstance(data, dict) or not set(data) <= {"train", "test"}:
        raise DataError(f"{path}: split file must map 'train' and 'test' to lists of file stems")
    known = set(stems)
    where: dict[str, str] = {}
    for part in ("train", "test"):
        items = data.get(part) or []
        if not isinstance(items, list):
            raise DataError(f"{path}: '{part}' must be a list of file stems")
        for s in map(str, items):
            if s not in known:
                raise DataError(f"{path}: '{part}' names {s!r}, which is not an image stem in "
                                "good/ or defect/")
            if s in where:
                raise DataError(f"{path}: {s!r} is listed twice ({where[s]} and {part})")
            where[s] = part
    return [where.get(s) for s in stems]


class FolderDataset(RecordDataset):
    """Images of a ``good/`` + ``defect/`` folder, split into ``"train"``/``"test"``/``"all"``.

    ``size=(width, height)`` (``None`` keeps the original size), ``channels`` 1 or 3,
    ``augment`` random flips; ``test_fraction`` and ``seed`` drive the stratified split used
    when the folder has no ``split.yaml``/``split.json``.
    """

    def __init__(self, root: str | Path, split: str = "all",
                 size: tuple[int, int] | None = None, channels: int = 1, augment: bool = False,
                 test_fraction: float = 0.3, seed: int = 0) -> None:
        self.root = Path(root)
        if split not in SPLITS:
            raise ConfigError(f"split must be one of {SPLITS}, got {split!r}")
        records = folder_records(self.root)
        self.split_path = next((self.root / n for n in SPLIT_FILES
                                if (self.root / n).is_file()), None)
        if split != "all":
            parts: list[str | None] | list[str]
            if self.split_path is not None:
                parts = read_user_split(self.split_path, [r.group for r in records])
            else:
                parts = stratified_assignment([r.label for r in records], test_fraction, seed)
            records = [r for r, p in zip(records, parts) if p == split]
        self.split = split
        super().__init__(records, size, channels, augment,
                         has_masks=(self.root / "masks").is_dir())


class FolderSpec(DatasetSpec):
    """``data.dataset: folder``: a user's ``good/`` + ``defect/`` folder at ``data.root``."""

    name = "folder"
    description = "your images: good/ and defect/ (optional masks/, split.yaml)"
    info_options = ("test_fraction", "seed")

    def load(self, cfg: DataFields, root: Path, *, fold: int, split: str, augment: bool,
             seed: int) -> FolderDataset:
        return FolderDataset(root, split=split, size=cfg.size, channels=cfg.channels,
                             augment=augment, test_fraction=cfg.test_fraction, seed=seed)

    def detect(self, root: Path) -> bool:
        return (root / "good").is_dir() and (root / "defect").is_dir()
