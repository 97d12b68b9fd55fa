"""Segmentation training on pixel masks (pseudo-labels or true masks) and mask prediction.

The paper's recipe: batch ``cfg.batch_size`` (4), SGD (lr 5e-4, momentum 0.9, weight decay
``cfg.weight_decay``), pixel-wise cross-entropy against ``Sample.mask`` (defect = 1), same input
size as the classifier. Batches are shuffled (``cfg.samples_per_epoch`` draws per epoch, default
the dataset size) and the last incomplete batch is dropped, because DeepLabV3's image-pooling
branch applies BatchNorm to a 1x1 map and needs more than one image per batch in training.
There is no validation split at this stage (pseudo-labels are all the supervision there is), so
the last epoch is the model: ``last.pt``. Checkpointing, seeding and resuming follow
:mod:`racam.training` (same helpers): a resumed run reaches the same weights as an
uninterrupted one on CPU. Under ``torchrun`` the network trains under DistributedDataParallel
as the classifier does (:mod:`racam.classifier.train`): each rank takes its part of every
global batch of ``cfg.batch_size`` draws (crops or sampled images) and the loss is weighted so
that DDP's gradient average is the global batch mean of the per-image losses (exact for the
cross-entropy; the soft Dice terms are computed over each rank's part); rank 0 writes
``last.pt``.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset
from tqdm import tqdm

from racam import distributed
from racam.accel import configure_backends, to_format
from racam.checkpoint import (
    capture_rng_states,
    load_model_state,
    save_checkpoint,
)
from racam.compiled import CompiledForward
from racam.config import SegmentationConfig
from racam.data.device_cache import DeviceBatch, DeviceCache, device_generator
from racam.data.sample import Batch
from racam.errors import ConfigError, DataError
from racam.precision import Precision, resolve_precision
from racam.schedule import StepSchedule
from racam.segmentation.crops import DefectCropDataset
from racam.segmentation.device_crops import DeviceCropSampler
from racam.segmentation.losses import IGNORE_INDEX, LossFn, segmentation_loss
from racam.segmentation.networks import build_segmentation, check_input_size
from racam.segmentation.probability import defect_probability
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
class SegmentationResult:
    """Outcome of :func:`train_segmentation`: ``last_path`` is the trained model;
    ``history`` has one dict per epoch (``epoch``, ``loss``, ``lr``, ``seconds``)."""

    last_path: Path
    history: list[dict[str, Any]] = field(default_factory=list)
    finished: bool = True


def _check(cfg: SegmentationConfig, train_ds: Dataset, device: torch.device) -> None:
    for name in ("epochs", "batch_size"):
        if int(getattr(cfg, name)) < 1:
            raise ConfigError(f"segmentation.{name} must be >= 1, got {getattr(cfg, name)}")
    if cfg.arch.startswith("deeplab") and cfg.batch_size < 2:
        raise ConfigError(f"segmentation.batch_size must be >= 2 for {cfg.arch} (BatchNorm on "
                          "its 1x1 image-pooling branch), got 1")
    n = cfg.samples_per_epoch or len(train_ds)  # type: ignore[arg-type]  # torch's Dataset type has no __len__
    if n < cfg.batch_size:
        raise DataError(f"segmentation training set has {n} images per epoch, fewer than one "
                        f"batch of {cfg.batch_size} (incomplete batches are dropped)")
    check_global_batches(n, cfg.batch_size, True, "segmentation")
    ranks = distributed.world_size()
    deeplab_cpu = device.type == "cpu" and cfg.arch.startswith("deeplab")
    if ranks > 1 and deeplab_cpu and cfg.batch_size < 2 * ranks:
        raise ConfigError(f"segmentation.batch_size {cfg.batch_size} gives some of the {ranks} "
                          f"ranks a single image per step; {cfg.arch}'s image-pooling BatchNorm "
                          "needs two per rank on CPU (no SyncBatchNorm there): use a batch of "
                          f"at least {2 * ranks}")


@dataclass
class TrainStep:
    """What one optimisation step needs besides the batch."""

    forward: CompiledForward
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    device: torch.device
    precision: Precision
    channels_last: bool
    loss_fn: LossFn


def train_epoch(model: nn.Module, loader: Iterable[Batch | DeviceBatch], st: TrainStep, epoch: int,
                 progress: bool) -> float:
    """One epoch; the mean loss is summed on the device and read once at the end (no host
    sync per batch outside DDP); a non-finite mean is a :class:`RacamError`."""
    model.train()
    meter = EpochLoss("segmentation", epoch)
    bar = tqdm(loader, desc=f"seg epoch {epoch}", leave=False, disable=not progress)
    for batch in bar:
        if batch.masks is None:
            assert isinstance(batch, Batch)
            missing = [i for i, p in zip(batch.ids, batch.mask_paths) if p is None]
            raise DataError(f"segmentation training needs a mask for every image; missing for "
                            f"{missing or batch.ids}")
        x = to_format(batch.images.to(st.device, non_blocking=True), st.channels_last)
        y = batch.masks.to(st.device, non_blocking=True).long()
        if batch.ignore is not None:  # torch.where: boolean indexing would sync
            y = torch.where(batch.ignore.to(st.device), IGNORE_INDEX, y)
        with st.precision.autocast():
            logits = st.forward(x)
        loss = st.loss_fn(logits.float(), y)
        if distributed.is_distributed():  # a share of the global batch's mean
            loss, value, n = global_batch_loss(loss * len(x), len(x), len(x))
            meter.add(value, n)
        else:
            meter.add(loss, len(x))
        optimizer_step(loss, st.optimizer, st.scaler)
    return meter.mean()


def _epoch_loader(cfg: SegmentationConfig, train_ds: Dataset, crops: DefectCropDataset | None,
                  labels: list[int], seed: int, epoch: int, dev: torch.device) -> Any:
    """One epoch's loader: the crop draws of ``epoch``, or whole images from the sampler
    (this rank's part of every batch under DDP)."""
    gen = seed_epoch(seed, epoch)
    if crops is not None:
        crops.set_epoch(epoch)
        return train_loader(crops, cfg.batch_size, None, gen, cfg.num_workers, dev,
                            drop_last=True, seed=seed, epoch=epoch)
    sampler = epoch_sampler(labels, cfg, gen, train_ds)
    return train_loader(train_ds, cfg.batch_size, sampler, gen, cfg.num_workers, dev,
                        drop_last=True, seed=seed, epoch=epoch)


def _epoch_device_batches(cfg: SegmentationConfig, train_ds: Dataset,
                          source: DeviceCache | DeviceCropSampler, labels: list[int],
                          seed: int, epoch: int) -> Iterator[DeviceBatch]:
    """:func:`_epoch_loader` from the device cache: the crop sampler's draws of ``epoch``, or
    the epoch sampler's order (the loader's) with flips on the device."""
    gen = seed_epoch(seed, epoch)
    if isinstance(source, DeviceCropSampler):
        return source.epoch_batches(epoch, cfg.batch_size)
    sampler = epoch_sampler(labels, cfg, gen, train_ds)
    flips = device_generator(source.device, loader_base_seed(gen))
    return source.epoch_batches(list(sampler), cfg.batch_size, True, flips)


@dataclass
class _Setup:
    """What a segmentation run fixes before it builds its network."""

    cfg: SegmentationConfig
    last_path: Path
    device: torch.device
    precision: Precision
    #: the first sample's ``[C, H, W]``
    shape: list[int]
    #: the checkpoint metadata a resumed run must match (:func:`racam.training.resume_state`)
    expected: dict[str, Any]
    seed: int
    in_channels: int
    progress: bool


@dataclass
class _Draws:
    """Where an epoch's batches come from: a crop dataset, the device cache (or its crop
    sampler), or (both ``None``) whole images through the balanced sampler."""

    labels: list[int]
    crops: DefectCropDataset | None
    on_device: DeviceCache | DeviceCropSampler | None
    #: optimiser steps per epoch (incomplete batches are dropped)
    steps: int


def _setup(cfg: SegmentationConfig, train_ds: Dataset, out_dir: str | Path, seed: int,
           device: str | torch.device, in_channels: int, progress: bool) -> _Setup:
    """Check the config, make ``out_dir`` and fix the device, precision and input shape."""
    dev = resolve_device(device)
    _check(cfg, train_ds, dev)
    progress = progress and distributed.is_main()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    last_path = out_dir / "last.pt"
    configure_backends(dev)
    precision = resolve_precision(cfg.precision, dev)
    shape = check_first_sample(train_ds, in_channels, "segmentation network")
    expected = {"kind": "segmentation", "arch": cfg.arch, "encoder": cfg.encoder,
                "output_stride": cfg.output_stride,
                "in_channels": in_channels, "classes": 2, "seed": int(seed),
                "config": dataclasses.asdict(cfg), "input_shape": shape}
    return _Setup(cfg, last_path, dev, precision, shape, expected, int(seed), in_channels,
                  progress)


def _network(s: _Setup, state: dict[str, Any] | None, train_ds: Dataset) -> nn.Module:
    """The seeded network (resumed from ``state`` when given), its input size checked, on the
    device (under DDP when distributed)."""
    cfg = s.cfg
    torch.manual_seed(s.seed)
    model = build_segmentation(cfg.arch, cfg.encoder, s.in_channels,
                               None if state else cfg.encoder_weights, 2, cfg.output_stride)
    if cfg.crop is not None:
        check_input_size(model, cfg.crop[1], cfg.crop[0], "segmentation.crop")
    check_input_size(model, s.shape[1], s.shape[2], f"segmentation input {train_ds[0].id}")
    if state is not None:
        load_model_state(model, state, s.last_path)
    return wrap_ddp(to_format(model.to(s.device), cfg.channels_last), s.device)


def _draws(s: _Setup, train_ds: Dataset) -> _Draws:
    """The crop dataset or device cache the epochs draw from (:class:`_Draws`)."""
    cfg = s.cfg
    labels = dataset_labels(train_ds)
    n = cfg.samples_per_epoch or len(labels)
    crops: DefectCropDataset | None = None
    on_device: DeviceCache | DeviceCropSampler | None = None
    if cfg.device_cache:
        cache = DeviceCache.build(train_ds, s.device, masks=True, num_workers=cfg.num_workers)
        on_device = cache if cfg.crop is None else DeviceCropSampler(
            cache, cfg.crop, cfg.defect_crop_fraction, n, seed=s.seed,
            centres=cfg.crop_centres)
    elif cfg.crop is not None:
        crops = DefectCropDataset(train_ds, cfg.crop, cfg.defect_crop_fraction, n, seed=s.seed,
                                  labels=labels, centres=cfg.crop_centres)
    return _Draws(labels, crops, on_device, n // cfg.batch_size)


def _train_epochs(s: _Setup, model: nn.Module, optimizer: torch.optim.Optimizer,
                  scaler: torch.amp.GradScaler, train_ds: Dataset, history: list[dict[str, Any]],
                  start: int, stop_after: int | None) -> SegmentationResult:
    """Epochs ``start + 1 ..`` up to ``cfg.epochs`` (or ``stop_after``), ``last.pt`` after each."""
    cfg, dev = s.cfg, s.device
    d = _draws(s, train_ds)
    st = TrainStep(CompiledForward(model, cfg.compile, "segmentation"), optimizer, scaler, dev,
               s.precision, bool(cfg.channels_last),
               segmentation_loss(cfg.loss, whole_batches_ignored=cfg.train_masks_rest == "ignore"
                                 and cfg.train_masks != "none"))
    schedule = StepSchedule(optimizer, cfg.lr, cfg.schedule, cfg.epochs)
    bar = tqdm(range(start, cfg.epochs), initial=start, total=cfg.epochs, desc="segmentation",
               disable=not s.progress)
    for epoch in bar:
        t0 = time.perf_counter()
        loader = (_epoch_loader(cfg, train_ds, d.crops, d.labels, s.seed, epoch, dev)
                  if d.on_device is None
                  else _epoch_device_batches(cfg, train_ds, d.on_device, d.labels, s.seed, epoch))
        schedule.begin_epoch(epoch, d.steps)
        loss = train_epoch(model, loader, st, epoch + 1, s.progress)
        history.append({"epoch": epoch + 1, "loss": loss, "lr": optimizer.param_groups[0]["lr"],
                        "seconds": time.perf_counter() - t0})
        if distributed.is_main():
            save_checkpoint(s.last_path, unwrap(model), optimizer, None, epoch + 1,
                            {**s.expected, "history": history}, capture_rng_states(),
                            scaler=scaler if s.precision.uses_scaler else None)
        bar.set_postfix(loss=f"{loss:.4f}")
        if stop_after is not None and epoch + 1 >= stop_after and epoch + 1 < cfg.epochs:
            schedule.remove()
            distributed.barrier()  # rank 0's checkpoint is written
            return SegmentationResult(s.last_path, history, finished=False)
    schedule.remove()
    distributed.barrier()
    return SegmentationResult(s.last_path, history)


def train_segmentation(cfg: SegmentationConfig, train_ds: Dataset, out_dir: str | Path, *,
                       seed: int, device: str | torch.device = "auto", in_channels: int = 1,
                       progress: bool = True,
                       stop_after: int | None = None) -> SegmentationResult:
    """Train (or resume, or just return) a segmentation network on ``Sample.mask``.

    With ``cfg.crop`` set, each epoch draws ``cfg.samples_per_epoch`` defect-centred crops
    (:class:`racam.segmentation.crops.DefectCropDataset`; pass ``train_ds`` without
    augmentation, the crops are flipped); otherwise whole images from the balanced sampler.

    Args:
        cfg: arch, encoder, encoder weights, epochs, batch size, optimiser, schedule, crops, AMP.
        train_ds: dataset of :class:`racam.data.Sample` whose ``mask`` is the target.
        out_dir: folder for ``last.pt`` (resumed from when present).
        seed: seeds initialisation and every epoch's randomness.
        device: ``"auto"`` (CUDA when available), ``"cpu"``, ...
        in_channels: image channels.
        progress: show tqdm progress bars.
        stop_after: return after this (1-based) epoch, as if killed there.
    """
    s = _setup(cfg, train_ds, out_dir, seed, device, in_channels, progress)
    state, history, start = resume_state(s.last_path, s.expected)
    if state is not None and start >= s.cfg.epochs:  # finished: nothing to do
        return SegmentationResult(s.last_path, history)
    model = _network(s, state, train_ds)
    optimizer, scaler = optimizer_and_scaler(model, cfg, s.precision, state, s.last_path)
    return _train_epochs(s, model, optimizer, scaler, train_ds, history, start, stop_after)


@torch.inference_mode()
def predict_masks(model: nn.Module, dataset: Dataset, batch_size: int = 4,
                  device: str | torch.device = "auto",
                  num_workers: int = 0) -> Iterator[tuple[list[str], torch.Tensor]]:
    """Yield ``(ids, prob)`` per batch: ``prob`` is the defect probability ``(B, H, W)``
    (softmax channel 1; sigmoid for a 1-class model) at the model input size, float32 on CPU."""
    dev = resolve_device(device)
    model.to(dev).eval()
    loader = make_loader(dataset, batch_size, None, None, num_workers, dev)
    checked = False
    for batch in loader:
        if not checked:
            check_input_size(model, batch.images.shape[2], batch.images.shape[3],
                             f"image {batch.ids[0]}")
            checked = True
        prob = defect_probability(model(batch.images.to(dev, non_blocking=True)))
        yield batch.ids, prob.cpu()
