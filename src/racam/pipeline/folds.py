"""Build the train / validation / test datasets of one fold from a :class:`DataConfig`."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from torch.utils.data import Dataset, Subset

from racam.config import DataConfig
from racam.errors import ConfigError

DEFAULT_DATA = Path(__file__).resolve().parents[3].parent / "shared" / "data"
SAMPLE_ROOT = Path(__file__).resolve().parent.parent / "assets" / "ksdd_sample"


def resolve_root(cfg: DataConfig) -> Path:
    """The dataset folder: ``cfg.root``, else ``$RACAM_DATA/<KolektorSDD|KolektorSDD2>``.

    ``root: builtin:ksdd_sample`` names the KolektorSDD sample bundled with racam.
    """
    if cfg.root == "builtin:ksdd_sample":
        return SAMPLE_ROOT
    if cfg.root:
        return Path(cfg.root).expanduser()
    sub = {"ksdd": "KolektorSDD", "ksdd2": "KolektorSDD2"}.get(cfg.dataset)
    if sub is None:
        raise ConfigError(f"data.root is required for dataset {cfg.dataset!r}")
    return Path(os.environ.get("RACAM_DATA", DEFAULT_DATA)) / sub


class LabelledSubset(Subset):
    """A :class:`~torch.utils.data.Subset` that keeps ``labels`` and ``records`` of its items."""

    def __init__(self, dataset: Dataset, indices: list[int]) -> None:
        super().__init__(dataset, indices)
        self.labels = [dataset.labels[i] for i in indices]  # type: ignore[attr-defined]
        self.records = [dataset.records[i] for i in indices]  # type: ignore[attr-defined]

    def true_mask(self, index: int):
        """The item's mask at original size (see ``RecordDataset.true_mask``)."""
        return self.dataset.true_mask(self.indices[index])  # type: ignore[attr-defined]


@dataclass
class FoldData:
    """Datasets of one fold.

    ``train`` (augmented) and ``val`` split the fold's training images (classifier training and
    checkpoint selection); ``train_all`` is every training image without augmentation
    (pseudo-labels) and ``train_all_aug`` the same with flips (fully supervised baselines).
    """

    fold: int
    train: Dataset
    val: Dataset
    train_all: Dataset
    train_all_aug: Dataset
    test: Dataset


def _dataset(cfg: DataConfig, root: Path, fold: int, split: str, augment: bool, seed: int):
    from racam.data import FolderDataset, KolektorSDD, KolektorSDD2

    kw = dict(size=tuple(cfg.size), channels=cfg.channels, augment=augment)
    if cfg.dataset == "ksdd":
        return KolektorSDD(root, fold=fold, split=split, split_file=cfg.split_file, **kw)
    if cfg.dataset == "ksdd2":
        return KolektorSDD2(root, split=split, **kw)
    if cfg.dataset == "folder":
        return FolderDataset(root, split=split, test_fraction=cfg.test_fraction, seed=seed, **kw)
    raise ConfigError(f"data.dataset must be ksdd, ksdd2 or folder, got {cfg.dataset!r}")


def stratified_holdout(labels: list[int], fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Split indices into (keep, held_out), holding out ``fraction`` of each class (seeded).

    Each class keeps at least one sample and, when it has two or more, gives at least one.
    """
    rng = np.random.default_rng(seed)
    labels_arr = np.asarray(labels)
    held: list[int] = []
    for c in np.unique(labels_arr):
        idx = np.flatnonzero(labels_arr == c)
        rng.shuffle(idx)
        n = int(round(fraction * len(idx)))
        if fraction > 0 and len(idx) >= 2:
            n = min(max(n, 1), len(idx) - 1)
        held += idx[:n].tolist()
    held_set = set(held)
    keep = [i for i in range(len(labels)) if i not in held_set]
    return keep, sorted(held)


def fold_datasets(cfg: DataConfig, fold: int, seed: int) -> FoldData:
    """Datasets of ``fold``: augmented train part, validation part, all train images, test."""
    root = resolve_root(cfg)
    train_aug = _dataset(cfg, root, fold, "train", True, seed)
    train_all = _dataset(cfg, root, fold, "train", False, seed)
    test = _dataset(cfg, root, fold, "test", False, seed)
    keep, held = stratified_holdout(train_all.labels, cfg.val_fraction, seed + fold)
    return FoldData(fold, LabelledSubset(train_aug, keep), LabelledSubset(train_all, held),
                    train_all, train_aug,
                    test)


def fold_list(cfg: DataConfig) -> list[int]:
    """Folds to run: ``cfg.folds`` for KolektorSDD, ``[0]`` for the single-split datasets."""
    return list(cfg.folds) if cfg.dataset == "ksdd" else [0]
