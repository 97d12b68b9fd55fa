"""A finished ``racam run`` folder: its config and the checkpoints ``racam predict`` and
``racam export`` apply, and the digests that identify them (:func:`run_digests`).

Layout read here (written by ``racam run``)::

    RUN_DIR/config.json                                      the run's config
    RUN_DIR/fold<k>/classifier/best.pt                       classifier (selected epoch; of
                                                             restart<n>/ if result.json chose it)
    RUN_DIR/fold<k>/segmentation/<arch>-<pseudo key>/last.pt segmentation network

Checkpoints are loaded with ``torch.load(weights_only=True)`` (:mod:`racam.checkpoint`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from racam.config import RunConfig, config_from_dict
from racam.errors import CheckpointError, ConfigError, DataError
from racam.io import read_json

__all__ = ["RunDigests", "TrainedRun", "file_sha256", "open_run", "run_digests",
           "training_dataset", "training_scale"]


@dataclass(frozen=True)
class TrainedRun:
    """The parts of a run folder that prediction needs."""

    root: Path
    cfg: RunConfig
    fold: int
    classifier_path: Path
    segmentation_path: Path

    @property
    def size(self) -> tuple[int, int]:
        """Network input size ``(width, height)``."""
        return (int(self.cfg.data.size[0]), int(self.cfg.data.size[1]))

    @property
    def channels(self) -> int:
        """1 (grayscale) or 3 (RGB) input channels."""
        return int(self.cfg.data.channels)

    @property
    def threshold(self) -> float:
        """The run's decision threshold on the defect probability: the one its classifier chose
        on validation images (``classifier.threshold_rule: val_f1``, stored in the fold's
        ``classifier/result.json``), else ``classifier.threshold``."""
        fixed = float(self.cfg.classifier.threshold)
        if self.cfg.classifier.threshold_rule == "fixed":
            return fixed
        path = self.root / f"fold{self.fold}" / "classifier" / "result.json"
        if not path.is_file():
            raise CheckpointError(f"{path}: missing; it holds the run's decision threshold "
                                  "(classifier.threshold_rule: val_f1)")
        from racam.stages.classifier import ClassifierStageResult

        return ClassifierStageResult.from_json(read_json(path)).decision_threshold(fixed)


def open_run(run_dir: Path, fold: int | None = None) -> TrainedRun:
    """Read ``run_dir``'s config and find its checkpoints (``fold``: the config's first fold when
    ``None``). Raises a racam error naming the missing or bad file."""
    from racam.classifier.restarts import chosen_checkpoint
    from racam.layout import fold_list, segmentation_tag

    root = Path(run_dir)
    if not root.is_dir():
        raise DataError(f"{root}: run folder not found")
    cfg_path = root / "config.json"
    if not cfg_path.is_file():
        raise DataError(f"{cfg_path}: missing; {root} is not a racam run folder")
    try:
        cfg = config_from_dict(read_json(cfg_path))
    except ValueError as exc:  # JSON errors and ConfigError
        raise ConfigError(f"{cfg_path}: not a valid run config ({exc})") from None
    folds = fold_list(cfg.data)
    k = folds[0] if fold is None else fold
    if k not in folds:
        raise ConfigError(f"--fold {k}: the run {root} has folds {folds}")
    fold_dir = root / f"fold{k}"
    clf = chosen_checkpoint(fold_dir / "classifier")  # a restart's, when the first failed
    if not clf.is_file():
        raise CheckpointError(f"{clf}: classifier checkpoint missing (did the run finish?)")
    seg = fold_dir / "segmentation" / segmentation_tag(cfg) / "last.pt"
    if not seg.is_file():
        found = sorted((fold_dir / "segmentation").glob("*/last.pt"))
        if len(found) != 1:
            raise CheckpointError(f"{seg}: segmentation checkpoint missing (did the run finish?)")
        seg = found[0]
    return TrainedRun(root, cfg, k, clf, seg)


@dataclass(frozen=True)
class RunDigests:
    """SHA-256 of a run's config (its JSON, keys sorted) and of the two checkpoints a
    prediction uses: what ``racam export`` records and ``predict --onnx`` compares."""

    config: str
    classifier: str
    segmentation: str


def file_sha256(path: Path) -> str:
    """SHA-256 (hex) of a file's bytes, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with Path(path).open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def run_digests(run: TrainedRun) -> RunDigests:
    """The digests of ``run`` (:class:`RunDigests`)."""
    cfg = json.dumps(read_json(run.root / "config.json"), sort_keys=True).encode()
    return RunDigests(hashlib.sha256(cfg).hexdigest(), file_sha256(run.classifier_path),
                      file_sha256(run.segmentation_path))


def training_dataset(run: TrainedRun):  # -> racam.data.io.RecordDataset
    """The run's fold's training images, read by the run's own dataset code at its input size
    and channels, without augmentation (the preprocessing prediction uses). Raises the
    dataset's racam error when its folder cannot be read."""
    from racam.data.registry import get, resolve_root

    d = run.cfg.data
    return get(d.dataset).load(d, resolve_root(d.dataset, d.root), fold=run.fold,
                               split="train", augment=False, seed=run.cfg.seed)


def training_scale(run: TrainedRun, most: int = 64) -> tuple[float, float] | None:
    """Network input pixels per image pixel ``(x, y)`` of the run: its input size over the
    median size of (up to ``most``, evenly spaced) training images, read from their headers;
    ``None`` when the run's images cannot be listed or read (the data moved)."""
    from racam.data.io import image_size
    from racam.errors import RacamError

    try:
        records = training_dataset(run).records
        step = max(1, len(records) // most)
        sizes = [image_size(r.image_path) for r in records[::step]]
    except (RacamError, OSError):
        return None
    if not sizes:
        return None
    ws, hs = sorted(w for w, _ in sizes), sorted(h for _, h in sizes)
    return (run.size[0] / ws[len(ws) // 2], run.size[1] / hs[len(hs) // 2])
