"""Image-level classifier training: SGD, class balancing, validation, resumable checkpoints.

Choices the paper leaves open (docs/protocol.md, "Classifier"), made here:

- Class imbalance (``cfg.balance``): ``"sampler"`` draws each image with probability
  ``1 / (2 n_c)`` for its class ``c`` (``WeightedRandomSampler`` with replacement,
  ``cfg.samples_per_epoch`` or ``len(train_ds)`` draws per epoch), so both classes are drawn
  equally often on average; ``"loss"`` weights the cross-entropy by ``w_c = N / (2 n_c)`` and
  shuffles without replacement; ``"none"`` shuffles only.
- Random horizontal/vertical flips come from the dataset (built with ``augment=True``).
- Learning rate (:class:`racam.schedule.StepSchedule`): ``cfg.lr`` throughout by default; with
  ``cfg.warmup_epochs`` it rises linearly over the first steps, and ``cfg.schedule`` (``cosine``,
  ``poly``) decays it per step afterwards. The rate is a function of the step alone, so resuming
  continues it exactly.
- Each epoch the validation set gives the cross-entropy ``val_loss``, AUROC and average
  precision of the softmax defect probability (scikit-learn). With a single class in the
  validation set AUROC/AP are undefined and recorded as ``None``.
- ``best.pt`` is the epoch with the highest validation AUROC, ties broken by the lower
  validation loss; epochs without an AUROC rank below any epoch with one and among themselves
  by validation loss. Without a validation set the best epoch is the last one. With
  ``cfg.keep_epoch: pseudo_area`` every epoch that may still be kept is also stored as
  ``epochs/epoch<k>.pt`` (:mod:`racam.classifier.epochs` chooses among them after training).
- Divergence: an epoch whose mean loss is not finite ends training; the best of the epochs
  before it is kept (``ClassifierResult.diverged_at``, also written into ``last.pt`` so a rerun
  does not train that epoch again). Diverging in the first epoch is a
  :class:`racam.errors.TrainingDiverged` error.
- Reproducibility and resuming: at the start of epoch ``e`` every RNG (torch CPU/CUDA, numpy,
  ``random``) and the sampler's generator are seeded from ``(seed, e)``, so an epoch's
  randomness never depends on how the run got there. ``last.pt`` (model, optimizer, AMP scaler,
  history, RNG states) is written atomically after every epoch; starting again with the same
  ``out_dir`` resumes from it, and a run killed after epoch ``k`` and resumed reaches the same
  weights as an uninterrupted run (bit-exact on CPU with ``num_workers=0``).
- Under ``torchrun`` (:mod:`racam.distributed`) the model trains under DistributedDataParallel:
  ``cfg.batch_size`` is the global batch, each rank takes its part of every batch of the
  single-process draws and the loss is the mean over the global batch, so one step equals the
  single-process step (up to float rounding; flips, dropout and, on CPU, BatchNorm statistics
  are per rank). Validation images are split across ranks; only rank 0 writes checkpoints.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import Dataset
from tqdm import tqdm

from racam import distributed
from racam.accel import configure_backends, to_format
from racam.checkpoint import (
    capture_rng_states,
    load_model_state,
    mark_diverged,
    save_checkpoint,
)
from racam.classifier.epochs import epoch_path, may_keep
from racam.classifier.scoring import validate
from racam.compiled import CompiledForward
from racam.config import ClassifierConfig, check_config
from racam.data.device_cache import DeviceBatch, DeviceCache, device_generator
from racam.data.sample import Batch
from racam.errors import DataError, TrainingDiverged
from racam.models.registry import build_classifier, effective_width
from racam.precision import Precision, resolve_precision
from racam.schedule import StepSchedule
from racam.training import (
    EpochLoss,
    check_first_sample,
    check_global_batches,
    dataset_labels,
    epoch_sampler,
    global_batch_loss,
    loader_base_seed,
    optimizer_and_scaler,
    optimizer_step,
    resolve_device,
    resume_state,
    seed_epoch,
    train_loader,
    unwrap,
    wrap_ddp,
)


@dataclass
class ClassifierResult:
    """Outcome of :func:`train_classifier`.

    ``history`` holds one dict per epoch: ``epoch`` (1-based), ``loss`` (mean training
    cross-entropy), ``val_loss``, ``val_auroc``, ``val_ap`` (``None`` when undefined), ``lr``,
    ``seconds``. ``finished`` is False when the call stopped early (``stop_after``).
    ``diverged_at``: see below.
    """

    best_path: Path
    last_path: Path
    history: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int = 0
    finished: bool = True
    #: the epoch whose mean loss was not finite; training stopped there and kept the best of the
    #: epochs before it (``None``: it did not diverge)
    diverged_at: int | None = None


def _check_labels(labels: list[int]) -> None:
    bad = sorted(set(labels) - {0, 1})
    if bad:
        raise DataError(f"classifier labels must be 0 (defect-free) or 1 (defective), got {bad}")


def class_weights(labels: list[int], cfg: ClassifierConfig) -> torch.Tensor | None:
    if cfg.balance != "loss":
        return None
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=2).astype(np.float64)
    w = np.where(counts > 0, len(labels) / (2.0 * np.maximum(counts, 1)), 1.0)
    return torch.tensor(w, dtype=torch.float32)


def _check_cfg(cfg: ClassifierConfig, train_ds: Dataset) -> ClassifierConfig:
    """``cfg`` checked as :func:`racam.config.load_config` does (for configs built in code),
    and a non-empty training set."""
    cfg = check_config(cfg, "classifier")
    if len(train_ds) == 0:  # type: ignore[arg-type]  # torch's Dataset type has no __len__
        raise DataError("classifier training set is empty")
    return cfg


def best_epoch_of(history: list[dict[str, Any]]) -> int:
    """Epoch (1-based) with the highest ``val_auroc``, ties -> lower ``val_loss`` (see module)."""
    def key(rec: dict[str, Any]) -> tuple[float, float, int]:
        auroc = rec.get("val_auroc")
        loss = rec.get("val_loss")
        if auroc is None and loss is None:  # no validation set: the latest epoch
            return (-math.inf, -math.inf, rec["epoch"])
        return (-math.inf if auroc is None else auroc,
                -math.inf if loss is None or not math.isfinite(loss) else -loss, -rec["epoch"])
    return max(history, key=key)["epoch"] if history else 0


@dataclass
class TrainStep:
    """What one optimisation step needs besides the batch."""

    forward: CompiledForward
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    class_weights: torch.Tensor | None
    device: torch.device
    precision: Precision
    channels_last: bool


def train_epoch(model: nn.Module, loader: Iterable[Batch | DeviceBatch], st: TrainStep,
                 epoch: int, progress: bool) -> float:
    """One epoch; the mean loss is summed on the device and read once at the end (no host
    sync per batch outside DDP); a non-finite mean is a :class:`RacamError`."""
    model.train()
    meter = EpochLoss("classifier", epoch)
    for batch in tqdm(loader, desc=f"epoch {epoch}", leave=False, disable=not progress):
        x = to_format(batch.images.to(st.device, non_blocking=True), st.channels_last)
        y = batch.labels.to(st.device, non_blocking=True)
        with st.precision.autocast():
            logits = st.forward(x)
        w = st.class_weights
        if distributed.is_distributed():  # a share of the global batch's mean
            weight = float(len(y) if w is None else w[y].sum())
            loss, value, n = global_batch_loss(F.cross_entropy(
                logits.float(), y, weight=w, reduction="sum"), weight, len(y))
            meter.add(value, n)
        else:
            loss = F.cross_entropy(logits.float(), y, weight=w)
            meter.add(loss, len(y))
        optimizer_step(loss, st.optimizer, st.scaler)
    return meter.mean()


def epoch_batches(cfg: ClassifierConfig, train_ds: Dataset, cache: DeviceCache | None,
                   labels: list[int], seed: int, epoch: int, dev: torch.device
                   ) -> tuple[Iterable[Batch | DeviceBatch], int]:
    """One epoch's batches and their number (optimiser steps): from the device cache (same
    sampler draws, flips on the device) or from a DataLoader."""
    gen = seed_epoch(seed, epoch)
    sampler = epoch_sampler(labels, cfg, gen, train_ds)
    steps = math.ceil(len(sampler) / cfg.batch_size)  # type: ignore[arg-type]  # racam's samplers have __len__
    if cache is not None:
        # the draw a DataLoader takes before iterating its sampler, then the sampler's draws
        flips = device_generator(dev, loader_base_seed(gen))
        return cache.epoch_batches(list(sampler), cfg.batch_size, False, flips), steps
    return train_loader(train_ds, cfg.batch_size, sampler, gen, cfg.num_workers, dev,
                        seed=seed, epoch=epoch), steps


@dataclass
class _Setup:
    """What a classifier run fixes before it builds its model."""

    cfg: ClassifierConfig
    best_path: Path
    last_path: Path
    device: torch.device
    precision: Precision
    labels: list[int]
    class_weights: torch.Tensor | None
    #: the checkpoint metadata a resumed run must match (:func:`racam.training.resume_state`)
    expected: dict[str, Any]
    seed: int
    in_channels: int
    progress: bool


@dataclass
class _Training:
    """The model being trained and what trains it."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    schedule: StepSchedule
    step: TrainStep
    cache: DeviceCache | None
    val_cache: DeviceCache | None


def _setup(cfg: ClassifierConfig, train_ds: Dataset, out_dir: str | Path, seed: int,
           device: str | torch.device, in_channels: int, progress: bool) -> _Setup:
    """Check the config and the labels, make ``out_dir`` and fix the device and precision."""
    cfg = _check_cfg(cfg, train_ds)
    progress = progress and distributed.is_main()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    last_path, best_path = out_dir / "last.pt", out_dir / "best.pt"
    dev = resolve_device(device)
    configure_backends(dev)
    precision = resolve_precision(cfg.precision, dev)
    labels = dataset_labels(train_ds)
    _check_labels(labels)
    weights = class_weights(labels, cfg)
    weights = None if weights is None else weights.to(dev)
    cfg_dict = dataclasses.asdict(cfg)
    expected = {"kind": "classifier", "backbone": cfg.backbone,
                "width": effective_width(cfg.backbone, cfg.width), "in_channels": in_channels,
                "batch_norm": bool(cfg.batch_norm),
                "num_classes": 2, "seed": int(seed), "config": cfg_dict,
                "input_shape": check_first_sample(train_ds, in_channels, "classifier")}
    return _Setup(cfg, best_path, last_path, dev, precision, labels, weights, expected,
                  int(seed), in_channels, progress)


def _start(s: _Setup, state: dict[str, Any] | None, train_ds: Dataset,
           val_ds: Dataset | None) -> _Training:
    """The seeded model (resumed from ``state`` when given), its optimiser, schedule and, with
    ``cfg.device_cache``, the images on the device."""
    cfg, dev = s.cfg, s.device
    check_global_batches(cfg.samples_per_epoch or len(s.labels), cfg.batch_size, False,
                         "classifier")
    torch.manual_seed(s.seed)
    model = build_classifier(cfg.backbone, num_classes=2, in_channels=s.in_channels,
                             width=cfg.width, weights=None if state else cfg.weights,
                             batch_norm=bool(cfg.batch_norm))
    if state is not None:
        load_model_state(model, state, s.last_path)
    model = wrap_ddp(to_format(model.to(dev), cfg.channels_last), dev)
    optimizer, scaler = optimizer_and_scaler(model, cfg, s.precision, state, s.last_path)
    schedule = StepSchedule(optimizer, cfg.lr, cfg.schedule, cfg.epochs, cfg.warmup_epochs)
    st = TrainStep(CompiledForward(model, cfg.compile, "classifier"), optimizer, scaler,
               s.class_weights, dev, s.precision, bool(cfg.channels_last))
    cache = val_cache = None
    if cfg.device_cache:
        cache = DeviceCache.build(train_ds, dev, num_workers=cfg.num_workers)
        if val_ds is not None and len(val_ds):  # type: ignore[arg-type]  # torch's Dataset type has no __len__
            val_cache = DeviceCache.build(val_ds, dev, num_workers=cfg.num_workers)
    return _Training(model, optimizer, scaler, schedule, st, cache, val_cache)


def _end_epoch(s: _Setup, t: _Training, val_ds: Dataset | None, history: list[dict[str, Any]],
               epoch: int, loss: float, t0: float) -> dict[str, Any]:
    """Validate, record and checkpoint the (1-based) ``epoch``; returns its record."""
    record: dict[str, Any] = {"epoch": epoch, "loss": loss,
                              **validate(unwrap(t.model), val_ds, s.cfg, s.device, t.val_cache),
                              "lr": t.optimizer.param_groups[0]["lr"]}
    record["seconds"] = time.perf_counter() - t0
    history.append(record)
    best = best_epoch_of(history)
    meta = {**s.expected, "history": history, "best_epoch": best}
    main = distributed.is_main()
    if main and best == epoch:
        save_checkpoint(s.best_path, unwrap(t.model), None, None, epoch, meta)
    if main and s.cfg.keep_epoch == "pseudo_area" and may_keep(history, s.cfg.keep_tolerance):
        save_checkpoint(epoch_path(s.best_path.parent, epoch), unwrap(t.model), None, None,
                        epoch, meta)
    if main:
        save_checkpoint(s.last_path, unwrap(t.model), t.optimizer, None, epoch, meta,
                        capture_rng_states(),
                        scaler=t.scaler if s.precision.uses_scaler else None)
    return record


def _train_epochs(s: _Setup, t: _Training, train_ds: Dataset, val_ds: Dataset | None,
                  history: list[dict[str, Any]], start: int,
                  stop_after: int | None) -> ClassifierResult:
    """Epochs ``start + 1 ..`` up to ``cfg.epochs`` (or ``stop_after``, or divergence)."""
    cfg = s.cfg
    bar = tqdm(range(start, cfg.epochs), initial=start, total=cfg.epochs, desc="classifier",
               disable=not s.progress)
    for epoch in bar:
        t0 = time.perf_counter()
        batches, steps = epoch_batches(cfg, train_ds, t.cache, s.labels, s.seed, epoch,
                                        s.device)
        t.schedule.begin_epoch(epoch, steps)
        try:
            loss = train_epoch(t.model, batches, t.step, epoch + 1, s.progress)
        except TrainingDiverged:
            if not history:  # nothing to keep
                raise
            t.schedule.remove()
            if distributed.is_main():  # last.pt says so: a rerun returns at once
                mark_diverged(s.last_path, epoch + 1)
            distributed.barrier()
            return ClassifierResult(s.best_path, s.last_path, history, best_epoch_of(history),
                                    diverged_at=epoch + 1)
        record = _end_epoch(s, t, val_ds, history, epoch + 1, loss, t0)
        bar.set_postfix(loss=f"{loss:.4f}", val_auroc=record["val_auroc"])
        if stop_after is not None and epoch + 1 >= stop_after and epoch + 1 < cfg.epochs:
            t.schedule.remove()
            distributed.barrier()  # rank 0's checkpoints are written
            return ClassifierResult(s.best_path, s.last_path, history, best_epoch_of(history),
                                    finished=False)
    t.schedule.remove()
    distributed.barrier()
    return ClassifierResult(s.best_path, s.last_path, history, best_epoch_of(history))


def train_classifier(cfg: ClassifierConfig, train_ds: Dataset, val_ds: Dataset | None,
                     out_dir: str | Path, *, seed: int, device: str | torch.device = "auto",
                     in_channels: int = 1, progress: bool = True,
                     stop_after: int | None = None) -> ClassifierResult:
    """Train (or resume, or just return) a 2-class classifier; see the module docstring.

    Args:
        cfg: backbone, width, weights, epochs, batch size, SGD settings, balance, AMP, workers.
        train_ds: dataset of :class:`racam.data.Sample` (with flip augmentation).
        val_ds: dataset of samples for checkpoint selection (no augmentation), or ``None``.
        out_dir: folder for ``best.pt`` and ``last.pt``.
        seed: seeds initialisation and every epoch's randomness.
        device: ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``, ...
        in_channels: image channels (1 grayscale, 3 RGB).
        progress: show tqdm progress bars.
        stop_after: return after this (1-based) epoch even if ``cfg.epochs`` is larger, as if
            the run were killed there (checkpoints are written); a later call resumes.
    """
    s = _setup(cfg, train_ds, out_dir, seed, device, in_channels, progress)
    state, history, start = resume_state(s.last_path, s.expected)
    diverged = None if state is None else state["meta"].get("diverged_at")
    if state is not None and (start >= s.cfg.epochs or diverged):  # finished: nothing to do
        return ClassifierResult(s.best_path, s.last_path, history, best_epoch_of(history),
                                diverged_at=diverged)
    t = _start(s, state, train_ds, val_ds)
    return _train_epochs(s, t, train_ds, val_ds, history, start, stop_after)
