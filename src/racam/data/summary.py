"""Image and defect counts of a dataset per split (or fold), as shown by ``racam data info``.

Each dataset's :meth:`~racam.data.spec.DatasetSpec.summarize` makes the rows; this module reads
them through the registry (:mod:`racam.data.registry`).
"""

from __future__ import annotations

from pathlib import Path

from racam.data.spec import InfoOptions, SplitCount

__all__ = ["SplitCount", "detect_dataset", "summarize"]


def detect_dataset(root: str | Path) -> str:
    """Guess the dataset of ``root`` from its layout (``folder``: good/ + defect/, ``ksdd2``:
    train/ + test/, else ``ksdd``); see :func:`racam.data.registry.detect`."""
    from racam.data import registry

    return registry.detect(root)


def summarize(root: str | Path, dataset: str = "ksdd", *, split_file: str | Path | None = None,
              test_fraction: float = 0.3, seed: int = 0) -> list[SplitCount]:
    """Counts per split: ``all`` first, then each fold's train and test (KolektorSDD with a
    split file; ``None``: no folds), the official train and test (KolektorSDD2), or the
    train/test split of a folder dataset."""
    from racam.data import registry

    options = InfoOptions(split_file="none" if split_file is None else str(split_file),
                          test_fraction=test_fraction, seed=seed)
    return registry.get(dataset).summarize(Path(root), options).rows
