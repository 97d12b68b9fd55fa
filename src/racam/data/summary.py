"""Image and defect counts of a dataset per split (or fold), as shown by ``racam data info``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from racam.errors import ConfigError

DATASETS = ("ksdd", "ksdd2", "folder")


@dataclass(frozen=True)
class SplitCount:
    """Counts of one split: ``name`` such as ``"fold 0 / test"``, ``"train"`` or ``"all"``."""

    name: str
    images: int
    defective: int

    @property
    def defect_free(self) -> int:
        return self.images - self.defective


def _count(name: str, labels: list[int]) -> SplitCount:
    return SplitCount(name, len(labels), int(sum(labels)))


def detect_dataset(root: str | Path) -> str:
    """Guess the dataset kind of ``root``: ``folder`` (good/ + defect/), ``ksdd2`` (train/ +
    test/), else ``ksdd``."""
    r = Path(root)
    if (r / "good").is_dir() and (r / "defect").is_dir():
        return "folder"
    if (r / "train").is_dir() and (r / "test").is_dir():
        return "ksdd2"
    return "ksdd"


def default_split_file(root: str | Path) -> str | None:
    """KolektorSDD split file used when none is given: ``split_33_0.pyb`` if present, else the
    only ``*.pyb`` in ``root/splits``, else ``None`` (every item, no folds)."""
    splits = Path(root) / "splits"
    if (splits / "split_33_0.pyb").is_file():
        return "split_33_0.pyb"
    files = sorted(splits.glob("*.pyb")) if splits.is_dir() else []
    return files[0].name if len(files) == 1 else None


def summarize(root: str | Path, dataset: str = "ksdd", *, split_file: str | Path | None = None,
              test_fraction: float = 0.3, seed: int = 0) -> list[SplitCount]:
    """Counts per split: ``all`` first, then each fold's train and test (KolektorSDD with a
    split file), the official train and test (KolektorSDD2), or the train/test split of a
    folder dataset."""
    from racam.data.folder import FolderDataset
    from racam.data.ksdd import KolektorSDD
    from racam.data.ksdd2 import KolektorSDD2

    if dataset == "ksdd":
        rows = [_count("all", KolektorSDD(root, split="all", split_file=None).labels)]
        if split_file is not None:
            for k in range(KolektorSDD.num_folds(root, split_file)):
                for part in ("train", "test"):
                    ds = KolektorSDD(root, fold=k, split=part, split_file=split_file)
                    rows.append(_count(f"fold {k} / {part}", ds.labels))
        return rows
    if dataset == "ksdd2":
        rows = [_count(p, KolektorSDD2(root, split=p).labels) for p in ("all", "train", "test")]
    elif dataset == "folder":
        kw = dict(test_fraction=test_fraction, seed=seed)
        rows = [_count(p, FolderDataset(root, split=p, **kw).labels)
                for p in ("all", "train", "test")]
    else:
        raise ConfigError(f"dataset must be one of {DATASETS}, got {dataset!r}")
    return rows
