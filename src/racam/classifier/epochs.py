"""Keeping a classifier epoch by its pseudo-labels' area (``classifier.keep_epoch: pseudo_area``).

By default a classifier keeps the epoch with the best validation AUROC
(:func:`racam.classifier.train.best_epoch_of`). AUROC says whether the classifier tells good from
defective images, not where it looks: epochs of equal AUROC can give heat maps of very different
width. With ``keep_epoch: pseudo_area`` training also stores each epoch's weights that may still
be kept (``epochs/epoch<k>.pt``: validation AUROC within ``keep_tolerance`` of the best so far),
and afterwards, of the epochs whose validation AUROC is within ``keep_tolerance`` of the best,
the one whose pseudo-labels mark the smallest share of the defective training images
(:func:`racam.pseudo.area.pseudo_label_area`, label-free; ties: the earlier epoch) is kept: the
classifier stage records it (``epoch_choice`` in its ``result.json``) and uses its epoch file;
``best.pt`` stays the epoch of the best validation AUROC. Epoch files that can no longer be kept
are removed (they are racam's own).

The same score chooses among ``classifier.candidates``; the evidence for both is in
``docs/results.md`` ("choosing the classifier's epoch by pseudo-label area").
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from racam import distributed

#: the values of ``classifier.keep_epoch``
KEEP_EPOCH: tuple[str, ...] = ("val_auroc", "pseudo_area")
#: folder (inside a classifier's ``out_dir``) of the per-epoch weights
EPOCHS_DIR = "epochs"


def epoch_path(out_dir: str | Path, epoch: int) -> Path:
    """Where the weights of (1-based) ``epoch`` are stored."""
    return Path(out_dir) / EPOCHS_DIR / f"epoch{epoch}.pt"


def eligible_epochs(history: Sequence[dict[str, Any]], tolerance: float) -> list[int]:
    """Epochs whose validation AUROC is at least the best one minus ``tolerance``; all epochs
    when no epoch has an AUROC (no validation images, or one class in them)."""
    aurocs = {h["epoch"]: h.get("val_auroc") for h in history}
    known = [a for a in aurocs.values() if a is not None]
    if not known:
        return list(aurocs)
    floor = max(known) - tolerance - 1e-12
    return [e for e, a in aurocs.items() if a is not None and a >= floor]


def may_keep(history: Sequence[dict[str, Any]], tolerance: float) -> bool:
    """Whether the latest epoch of ``history`` may still be kept (training stores its
    weights then): its AUROC is within ``tolerance`` of the best so far."""
    return bool(history) and history[-1]["epoch"] in eligible_epochs(history, tolerance)


@dataclasses.dataclass(frozen=True)
class EpochChoice:
    """The epoch kept by area and its weights, the epoch validation AUROC keeps, and the area
    (0-1) of each scored epoch."""

    epoch: int
    out_dir: Path
    file: str  # the kept weights, relative to ``out_dir`` (a moved run folder still works)
    by_auroc: int
    tolerance: float
    areas: dict[int, float]

    @property
    def path(self) -> Path:
        return self.out_dir / self.file

    def to_json(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "file": self.file, "by_auroc": self.by_auroc,
                "tolerance": self.tolerance,
                "areas": {str(e): a for e, a in self.areas.items()}}


def keep_smallest_area(out_dir: str | Path, history: Sequence[dict[str, Any]], best_epoch: int,
                       tolerance: float, area: Callable[[Path], float]) -> EpochChoice:
    """Score the eligible epochs whose weights are stored with ``area(checkpoint)`` and keep
    the smallest; ``best.pt`` stands for ``best_epoch`` if its epoch file is missing (a run
    resumed after the key was switched on). Epoch files that cannot be kept are removed (by
    rank 0 under ``torchrun``)."""
    out_dir = Path(out_dir)
    paths = {e: epoch_path(out_dir, e) for e in eligible_epochs(history, tolerance)}
    paths = {e: p for e, p in paths.items() if p.is_file()}
    paths.setdefault(best_epoch, out_dir / "best.pt")
    areas = {e: area(p) for e, p in sorted(paths.items())}
    epoch = min(areas, key=lambda e: (areas[e], e))
    folder = out_dir / EPOCHS_DIR
    for p in folder.glob("epoch*.pt") if folder.is_dir() and distributed.is_main() else ():
        if p not in paths.values():
            p.unlink()
    return EpochChoice(epoch, out_dir, paths[epoch].relative_to(out_dir).as_posix(), best_epoch,
                       tolerance, areas)
