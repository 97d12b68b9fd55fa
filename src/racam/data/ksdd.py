"""KolektorSDD (Tabernik et al., JIM 2019): items ``kosNN/PartN.jpg`` + ``PartN_label.{bmp,png}``.

- Masks are ``PartN_label.bmp`` in the public release and ``PartN_label.png`` in re-encoded
  copies; both are accepted (BMP first when both exist).
- ``kos21/Part7`` duplicates ``kos21/Part6`` and is skipped, as in the authors' loader:
  399 images, 52 defective.
- Folds: the authors' unit-wise 3-fold split files ``splits/split_<NPOS>_<NSEG>.pyb`` (read
  with the restricted unpickler of :mod:`racam.data.splits`). A split names whole items; every
  image of a listed item belongs to that split.
- Labels: an image is defective when its mask has any nonzero pixel.
"""

from __future__ import annotations

import re
from pathlib import Path

from racam.data.io import IMAGE_SUFFIXES, Record, RecordDataset, mask_label
from racam.data.spec import DataFields, DatasetSpec, DataSummary, InfoOptions, count
from racam.data.splits import ksdd_folds
from racam.errors import ConfigError, DataError

SKIPPED = {("kos21", "Part7")}
MASK_SUFFIXES = (".bmp", ".png")
SPLITS = ("train", "test", "all")


def _natural_key(name: str) -> list:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def resolve_split_file(root: Path, split_file: str | Path) -> Path:
    """A bare name is looked up in ``root/splits``, then as a path; a path is used as given."""
    candidates = [root / "splits" / str(split_file), Path(split_file)]
    for c in candidates:
        if c.is_file():
            return c
    raise DataError(f"{split_file}: split file not found (looked for "
                    f"{' and '.join(str(c) for c in candidates)})")


def unit_records(root: Path, unit: str) -> list[Record]:
    """Records of one KolektorSDD item folder (images sorted naturally, kos21/Part7 skipped)."""
    folder = root / unit
    images = sorted((p for p in folder.iterdir()
                     if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
                     and not p.stem.endswith("_label")), key=lambda p: _natural_key(p.name))
    records = []
    for img in images:
        if (unit, img.stem) in SKIPPED:
            continue
        masks = [folder / f"{img.stem}_label{s}" for s in MASK_SUFFIXES]
        mask = next((m for m in masks if m.is_file()), None)
        if mask is None:
            raise DataError(f"{img}: mask file missing (expected {masks[0].name} or "
                            f"{masks[1].name} in {folder})")
        records.append(Record(id=f"{unit}/{img.stem}", image_path=img, mask_path=mask,
                              label=mask_label(mask, img), group=unit))
    if not records:
        raise DataError(f"{folder}: item folder holds no images")
    return records


def present_units(root: Path) -> list[str]:
    """Item folders under ``root`` (every sub-folder except ``splits``), sorted naturally."""
    if not root.is_dir():
        raise DataError(f"{root}: KolektorSDD folder not found")
    units = sorted((p.name for p in root.iterdir() if p.is_dir() and p.name != "splits"
                    and not p.name.startswith(".")), key=_natural_key)
    if not units:
        raise DataError(f"{root}: no item folders (kos01, kos02, ...) found")
    return units


class KolektorSDD(RecordDataset):
    """KolektorSDD images of one fold's ``split`` ("train", "test" or "all").

    Args:
        root: folder holding ``kos01 ... kos50`` (and ``splits/``).
        fold: fold index in the split file.
        split: ``"train"`` / ``"test"`` items of the fold, or ``"all"`` (train + test items;
            every item present when ``split_file`` is None).
        size: ``(width, height)`` to resize to; ``None`` keeps the original size.
        channels: 1 (grayscale) or 3 (RGB, the gray values repeated).
        augment: random horizontal and vertical flips of image and mask.
        split_file: a split file name (looked up in ``root/splits``) or path; ``None`` means
            every item folder present, with ``split="all"``.
    """

    def __init__(self, root: str | Path, fold: int = 0, split: str = "all",
                 size: tuple[int, int] | None = None, channels: int = 1, augment: bool = False,
                 split_file: str | Path | None = "split_33_0.pyb") -> None:
        self.root = Path(root)
        if split not in SPLITS:
            raise ConfigError(f"split must be one of {SPLITS}, got {split!r}")
        if split_file is None:
            if split != "all":
                raise ConfigError(f"split={split!r} needs a split file; without one "
                                  "only split='all' is possible")
            units = present_units(self.root)
            self.split_path: Path | None = None
        else:
            if not self.root.is_dir():
                raise DataError(f"{self.root}: KolektorSDD folder not found")
            self.split_path = resolve_split_file(self.root, split_file)
            train, test = ksdd_folds(self.split_path)
            if not 0 <= fold < len(train):
                raise ConfigError(f"fold {fold} out of range: {self.split_path} has "
                                  f"{len(train)} folds")
            units = {"train": train[fold], "test": test[fold],
                     "all": train[fold] + test[fold]}[split]
            for u in units:
                if not (self.root / u).is_dir():
                    raise DataError(f"{self.split_path}: names item {u!r} but folder "
                                    f"{self.root / u} does not exist")
        self.fold, self.split, self.units = fold, split, list(units)
        records = [r for u in self.units for r in unit_records(self.root, u)]
        super().__init__(records, size, channels, augment)

    @staticmethod
    def num_folds(root: str | Path, split_file: str | Path = "split_33_0.pyb") -> int:
        """Number of folds in a split file."""
        return len(ksdd_folds(resolve_split_file(Path(root), split_file))[0])


def default_split_file(root: str | Path) -> str | None:
    """Split file used when none is given: ``split_33_0.pyb`` if present, else the only
    ``*.pyb`` in ``root/splits``, else ``None`` (every item, no folds)."""
    splits = Path(root) / "splits"
    if (splits / "split_33_0.pyb").is_file():
        return "split_33_0.pyb"
    files = sorted(splits.glob("*.pyb")) if splits.is_dir() else []
    return files[0].name if len(files) == 1 else None


class KolektorSDDSpec(DatasetSpec):
    """``data.dataset: ksdd``: the authors' folds of ``data.split_file``, ``data.folds`` run."""

    name = "ksdd"
    description = "KolektorSDD: kosNN/PartN.jpg + PartN_label.bmp|png, folds from a split file"
    root_subdir = "KolektorSDD"
    info_options = ("split_file",)

    def load(self, cfg: DataFields, root: Path, *, fold: int, split: str, augment: bool,
             seed: int) -> KolektorSDD:
        return KolektorSDD(root, fold=fold, split=split, split_file=cfg.split_file,
                           size=cfg.size, channels=cfg.channels, augment=augment)

    def folds(self, cfg: DataFields) -> list[int]:
        return list(cfg.folds)

    def summarize(self, root: Path, options: InfoOptions) -> DataSummary:
        """``all`` (every item folder), then each fold's train and test of the split file
        (``options.split_file``, default :func:`default_split_file`; ``"none"``: no folds)."""
        split = default_split_file(root) if options.split_file is None else options.split_file
        if split is not None and split.lower() == "none":
            split = None
        from racam.data.masks import survey_masks

        every = KolektorSDD(root, split="all", split_file=None)
        rows = [count("all", every.labels)]
        survey = survey_masks([r.mask_path for r in every.records if r.mask_path is not None])
        if split is not None:
            for k in range(KolektorSDD.num_folds(root, split)):
                for part in ("train", "test"):
                    ds = KolektorSDD(root, fold=k, split=part, split_file=split)
                    rows.append(count(f"fold {k} / {part}", ds.labels))
        return DataSummary(rows, f"split file {split}" if split else "", survey.details(),
                           survey.warnings)
