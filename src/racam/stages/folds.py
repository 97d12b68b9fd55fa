"""Build the train / validation / test datasets of one fold from a :class:`DataConfig`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from torch.utils.data import Dataset, Subset

from racam.config import DataConfig
from racam.data import registry
from racam.data.io import RecordDataset
from racam.data.stratify import stratified_split

#: The KolektorSDD sample bundled with racam (``data.root: builtin:ksdd_sample``).
SAMPLE_ROOT = registry.BUILTIN_ROOTS["builtin:ksdd_sample"]


def resolve_root(cfg: DataConfig) -> Path:
    """The dataset folder: ``cfg.root`` (``builtin:ksdd_sample``: the sample bundled with
    racam), else ``$RACAM_DATA/<the dataset's folder>`` (:func:`racam.data.registry.resolve_root`;
    a :class:`~racam.errors.ConfigError` naming both when neither is set)."""
    return registry.resolve_root(cfg.dataset, cfg.root)


class LabelledSubset(Subset):
    """A :class:`~torch.utils.data.Subset` that keeps ``labels`` and ``records`` of its items."""

    def __init__(self, dataset: Dataset, indices: list[int]) -> None:
        super().__init__(dataset, indices)
        self.labels = [dataset.labels[i] for i in indices]  # type: ignore[attr-defined]  # racam datasets have .labels
        self.records = [dataset.records[i] for i in indices]  # type: ignore[attr-defined]  # racam datasets have .records

    def true_mask(self, index: int):
        """The item's mask at original size (see ``RecordDataset.true_mask``)."""
        return self.dataset.true_mask(self.indices[index])  # type: ignore[attr-defined]  # racam datasets have .true_mask


@dataclass
class FoldData:
    """Datasets of one fold.

    ``train`` (augmented) and ``val`` split the fold's training images (classifier training and
    checkpoint selection); ``train_all`` is every training image without augmentation
    (pseudo-labels) and ``train_all_aug`` the same with flips (fully supervised baselines).
    """

    fold: int
    train: LabelledSubset
    val: LabelledSubset
    train_all: RecordDataset
    train_all_aug: RecordDataset
    test: RecordDataset


def stratified_holdout(labels: list[int], fraction: float, seed: int
                       ) -> tuple[list[int], list[int]]:
    """Split indices into (keep, held_out), holding out ``fraction`` of each class (seeded;
    :func:`racam.data.stratify.stratified_split`, scikit-learn's StratifiedShuffleSplit).

    Each class keeps at least one sample and, when it has two or more, gives at least one.
    """
    return stratified_split(labels, fraction, seed)


def fold_datasets(cfg: DataConfig, fold: int, seed: int) -> FoldData:
    """Datasets of ``fold``: augmented train part, validation part, all train images, test."""
    spec = registry.get(cfg.dataset)
    root = resolve_root(cfg)

    def load(split: str, augment: bool) -> RecordDataset:
        return spec.load(cfg, root, fold=fold, split=split, augment=augment, seed=seed)

    train_aug, train_all, test = load("train", True), load("train", False), load("test", False)
    keep, held = stratified_holdout(train_all.labels, cfg.val_fraction, seed + fold)
    return FoldData(fold, LabelledSubset(train_aug, keep), LabelledSubset(train_all, held),
                    train_all, train_aug,
                    test)
