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
  by validation loss. Without a validation set the best epoch is the last one.
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
from torch.utils.data import Dataset, Subset
from tqdm import tqdm

from racam import distributed
from racam.accel import configure_backends, to_format
from racam.checkpoint import (
    capture_rng_states,
    load_model_state,
    mark_diverged,
    save_checkpoint,
)
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
    make_loader,
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


def _predict_logits_sharded(model: nn.Module, dataset: Dataset, batch_size: int,
                            device: torch.device, num_workers: int = 0
                            ) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`_predict_logits` with the images split across ranks (every rank gets all)."""
    if not distributed.is_distributed():
        return _predict_logits(model, dataset, batch_size, device, num_workers)

    def part(indices: list[int]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        logits, labels = _predict_logits(model, Subset(dataset, indices), batch_size, device,
                                         num_workers)
        return list(zip(logits, labels))

    rows = distributed.sharded_map(part, range(len(dataset)), block=batch_size)  # type: ignore[arg-type]  # torch's Dataset type has no __len__
    if not rows:
        return torch.empty(0, 2), torch.empty(0, dtype=torch.long)
    return torch.stack([r[0] for r in rows]), torch.stack([r[1] for r in rows])


@torch.inference_mode()
def _predict_logits(model: nn.Module, dataset: Dataset, batch_size: int,
                    device: torch.device, num_workers: int = 0,
                    progress: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits ``(N, K)`` (float32, CPU) and labels ``(N,)`` in dataset order."""
    was_training = model.training
    model.eval()
    logits, labels = [], []
    loader = make_loader(dataset, batch_size, None, None, num_workers, device)
    for batch in tqdm(loader, desc="predict", leave=False, disable=not progress):
        out = model(batch.images.to(device, non_blocking=True))
        logits.append(out.float().cpu())
        labels.append(batch.labels)
    model.train(was_training)
    if not logits:
        return torch.empty(0, 2), torch.empty(0, dtype=torch.long)
    return torch.cat(logits), torch.cat(labels)


def predict_proba(model: nn.Module, dataset: Dataset, batch_size: int = 8,
                  device: str | torch.device = "auto") -> torch.Tensor:
    """Defect probabilities ``softmax(logits)[:, 1]`` of every sample, shape ``(N,)``, CPU."""
    dev = resolve_device(device)
    model.to(dev)
    logits, _ = _predict_logits(model, dataset, batch_size, dev)
    return logits.softmax(dim=1)[:, 1]


@torch.inference_mode()
def _predict_cached(model: nn.Module, cache: DeviceCache, batch_size: int
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`_predict_logits` of a device cache (every rank computes every image)."""
    was_training = model.training
    model.eval()
    logits = [model(b.images).float() for b in cache.in_order(batch_size)]
    model.train(was_training)
    return torch.cat(logits).cpu(), cache.labels.cpu()


def _validate(model: nn.Module, val_ds: Dataset | None, cfg: ClassifierConfig,
              device: torch.device, cache: DeviceCache | None = None
              ) -> dict[str, float | None]:
    from sklearn.metrics import average_precision_score, roc_auc_score

    if val_ds is None or len(val_ds) == 0:  # type: ignore[arg-type]  # torch's Dataset type has no __len__
        return {"val_loss": None, "val_auroc": None, "val_ap": None}
    if cache is not None:
        logits, labels = _predict_cached(model, cache, cfg.batch_size)
    else:
        logits, labels = _predict_logits_sharded(model, val_ds, cfg.batch_size, device,
                                                 cfg.num_workers)
    val_loss = float(F.cross_entropy(logits, labels))
    prob = logits.softmax(dim=1)[:, 1].numpy()
    y = labels.numpy()
    if len(np.unique(y)) < 2 or not np.all(np.isfinite(prob)):
        return {"val_loss": val_loss, "val_auroc": None, "val_ap": None}
    return {"val_loss": val_loss, "val_auroc": float(roc_auc_score(y, prob)),
            "val_ap": float(average_precision_score(y, prob))}


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

    state, history, start = resume_state(last_path, expected)
    diverged = None if state is None else state["meta"].get("diverged_at")
    if state is not None and (start >= cfg.epochs or diverged):  # finished: nothing to do
        return ClassifierResult(best_path, last_path, history, best_epoch_of(history),
                                diverged_at=diverged)

    check_global_batches(cfg.samples_per_epoch or len(labels), cfg.batch_size, False,
                         "classifier")
    torch.manual_seed(int(seed))
    model = build_classifier(cfg.backbone, num_classes=2, in_channels=in_channels,
                             width=cfg.width, weights=None if state else cfg.weights,
                             batch_norm=bool(cfg.batch_norm))
    if state is not None:
        load_model_state(model, state, last_path)
    model = wrap_ddp(to_format(model.to(dev), cfg.channels_last), dev)
    optimizer, scaler = optimizer_and_scaler(model, cfg, precision, state, last_path)
    schedule = StepSchedule(optimizer, cfg.lr, cfg.schedule, cfg.epochs, cfg.warmup_epochs)
    main = distributed.is_main()
    st = TrainStep(CompiledForward(model, cfg.compile, "classifier"), optimizer, scaler, weights,
               dev, precision, bool(cfg.channels_last))
    cache = val_cache = None
    if cfg.device_cache:
        cache = DeviceCache.build(train_ds, dev, num_workers=cfg.num_workers)
        if val_ds is not None and len(val_ds):  # type: ignore[arg-type]  # torch's Dataset type has no __len__
            val_cache = DeviceCache.build(val_ds, dev, num_workers=cfg.num_workers)

    bar = tqdm(range(start, cfg.epochs), initial=start, total=cfg.epochs, desc="classifier",
               disable=not progress)
    for epoch in bar:
        t0 = time.perf_counter()
        batches, steps = epoch_batches(cfg, train_ds, cache, labels, seed, epoch, dev)
        schedule.begin_epoch(epoch, steps)
        try:
            loss = train_epoch(model, batches, st, epoch + 1, progress)
        except TrainingDiverged:
            if not history:  # nothing to keep
                raise
            schedule.remove()
            if main:  # last.pt says so: a rerun returns at once instead of diverging again
                mark_diverged(last_path, epoch + 1)
            distributed.barrier()
            return ClassifierResult(best_path, last_path, history, best_epoch_of(history),
                                    diverged_at=epoch + 1)
        record: dict[str, Any] = {"epoch": epoch + 1, "loss": loss,
                                  **_validate(unwrap(model), val_ds, cfg, dev, val_cache),
                                  "lr": optimizer.param_groups[0]["lr"]}
        record["seconds"] = time.perf_counter() - t0
        history.append(record)
        best = best_epoch_of(history)
        meta = {**expected, "history": history, "best_epoch": best}
        if main and best == epoch + 1:
            save_checkpoint(best_path, unwrap(model), None, None, epoch + 1, meta)
        if main:
            save_checkpoint(last_path, unwrap(model), optimizer, None, epoch + 1, meta,
                            capture_rng_states(), scaler=scaler if precision.uses_scaler else None)
        bar.set_postfix(loss=f"{loss:.4f}", val_auroc=record["val_auroc"])
        if stop_after is not None and epoch + 1 >= stop_after and epoch + 1 < cfg.epochs:
            schedule.remove()
            distributed.barrier()  # rank 0's checkpoints are written
            return ClassifierResult(best_path, last_path, history, best, finished=False)
    schedule.remove()
    distributed.barrier()
    return ClassifierResult(best_path, last_path, history, best_epoch_of(history))
