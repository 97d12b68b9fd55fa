"""KolektorSDD2 (Bozic et al., Computers in Industry 2021): official ``train/`` and ``test/``.

Layout: ``<root>/<split>/NNNNN.png`` (RGB image) with ``NNNNN_GT.png`` (mask) beside it. An
image is defective when its mask has any nonzero pixel. Ids are the file stems (``"10000"``),
unique over train and test.
"""

from __future__ import annotations

import re
from pathlib import Path

from racam.data.io import IMAGE_SUFFIXES, Record, RecordDataset, mask_label
from racam.data.spec import DataFields, DatasetSpec
from racam.errors import ConfigError, DataError

SPLITS = ("train", "test", "all")


def _key(p: Path) -> list:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", p.name)]


def split_records(root: Path, split: str) -> list[Record]:
    """Records of one official split folder."""
    folder = root / split
    if not folder.is_dir():
        raise DataError(f"{folder}: KolektorSDD2 split folder not found")
    images = sorted((p for p in folder.iterdir() if p.is_file()
                     and p.suffix.lower() in IMAGE_SUFFIXES and not p.stem.endswith("_GT")),
                    key=_key)
    if not images:
        raise DataError(f"{folder}: no images (NNNNN.png) found")
    records = []
    for img in images:
        mask = img.with_name(f"{img.stem}_GT.png")
        if not mask.is_file():
            raise DataError(f"{img}: mask file missing (expected {mask})")
        records.append(Record(id=img.stem, image_path=img, mask_path=mask,
                              label=mask_label(mask, img), group=img.stem))
    return records


class KolektorSDD2(RecordDataset):
    """KolektorSDD2 images of the official ``split`` (``"train"``, ``"test"`` or ``"all"``).

    ``size=(width, height)`` (``None`` keeps the original size); ``channels`` 3 (RGB, default)
    or 1; ``augment`` adds random horizontal and vertical flips.
    """

    def __init__(self, root: str | Path, split: str = "train",
                 size: tuple[int, int] | None = None, channels: int = 3,
                 augment: bool = False) -> None:
        self.root = Path(root)
        if split not in SPLITS:
            raise ConfigError(f"split must be one of {SPLITS}, got {split!r}")
        if not self.root.is_dir():
            raise DataError(f"{self.root}: KolektorSDD2 folder not found")
        self.split = split
        parts = ("train", "test") if split == "all" else (split,)
        records = [r for s in parts for r in split_records(self.root, s)]
        super().__init__(records, size, channels, augment)


class KolektorSDD2Spec(DatasetSpec):
    """``data.dataset: ksdd2``: the official train/test split, one fold."""

    name = "ksdd2"
    description = "KolektorSDD2: train/ and test/ with NNNNN.png + NNNNN_GT.png"
    root_subdir = "KolektorSDD2"

    def load(self, cfg: DataFields, root: Path, *, fold: int, split: str, augment: bool,
             seed: int) -> KolektorSDD2:
        return KolektorSDD2(root, split=split, size=cfg.size, channels=cfg.channels,
                            augment=augment)

    def detect(self, root: Path) -> bool:
        return (root / "train").is_dir() and (root / "test").is_dir()
