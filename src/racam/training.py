"""Training pieces shared by the classifier and the segmentation trainer.

Devices, per-epoch seeding, data loaders, class-balanced epoch samplers, mixed precision, one
optimiser step, and resuming from ``last.pt`` (the checkpoint's meta must match the run's).

Under ``torchrun`` (:mod:`racam.distributed`) the trainers wrap the model in
DistributedDataParallel (:func:`wrap_ddp`) and each rank loads its share of every global batch
(:func:`train_loader`); :func:`global_batch_loss` makes the loss a mean over the global batch.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import (
    BatchSampler,
    DataLoader,
    Dataset,
    RandomSampler,
    Sampler,
    SequentialSampler,
    Subset,
    WeightedRandomSampler,
)

from racam import distributed
from racam.checkpoint import load_checkpoint, restore_rng_states
from racam.config import OPTIMIZERS, ClassifierConfig, SegmentationConfig
from racam.data.sample import collate_samples
from racam.errors import CheckpointError, ConfigError, DataError, TrainingDiverged
from racam.precision import Precision

# Config fields that may change between a killed run and its resumption (``threshold`` and
# ``threshold_rule``: the classifier's decision threshold, used after training only;
# precision and the speed keys of docs/gpu.md change how the steps run, not what they train).
RESUMABLE_CHANGES = frozenset({"epochs", "num_workers", "threshold", "threshold_rule",
                               "precision",
                               "channels_last", "compile", "device_cache",
                               # decide whether another attempt follows, not how one trains
                               "restarts", "min_val_auroc", "candidates",
                               # which stored epoch is kept, after training
                               "keep_epoch", "keep_tolerance",
                               # how masks are used after training (segmentation.gate)
                               "gate"})


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` -> ``cuda`` when available, else ``cpu``; anything else as given."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} requested but CUDA is not available")
    return dev


def seed_epoch(seed: int, epoch: int) -> torch.Generator:
    """Seed torch (CPU and CUDA), numpy and ``random`` from ``(seed, epoch)``; return a fresh
    ``torch.Generator`` (same derivation) for the epoch's sampler and loader."""
    s = np.random.SeedSequence([int(seed), int(epoch)]).generate_state(2, dtype=np.uint32)
    torch.manual_seed(int(s[0]))
    np.random.seed(int(s[0]))
    random.seed(int(s[0]))
    return torch.Generator().manual_seed(int(s[1]))


def _seed_worker(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: seed numpy and ``random`` from the worker's torch seed."""
    s = torch.initial_seed() % 2**32
    np.random.seed(s)
    random.seed(s)


def _seed_rank_worker(worker_id: int) -> None:
    """``worker_init_fn`` under DDP: the loader's worker seeds are the same on every rank, so
    the rank is mixed into the worker's torch seed first (different flips on each rank)."""
    torch.manual_seed((torch.initial_seed() + 1_000_003 * distributed.rank()) % 2**63)
    _seed_worker(worker_id)


def make_loader(dataset: Dataset, batch_size: int, sampler: Sampler | None,
                generator: torch.Generator | None, num_workers: int, device: torch.device,
                drop_last: bool = False) -> DataLoader:
    """A DataLoader of :class:`racam.data.Batch` (seeded workers, pinned memory on CUDA)."""
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, shuffle=False,
                      collate_fn=collate_samples, num_workers=num_workers,
                      generator=generator, worker_init_fn=_seed_worker if num_workers else None,
                      pin_memory=device.type == "cuda", drop_last=drop_last)


def loader_base_seed(generator: torch.Generator) -> int:
    """The draw a DataLoader takes from its ``generator`` before its sampler's (its workers'
    base seed): a device cache takes it too, so its sampler draws the loader's order."""
    return int(torch.empty((), dtype=torch.int64).random_(generator=generator).item())


def dataset_labels(dataset: Dataset) -> list[int]:
    """Image labels of ``dataset`` without loading images when it exposes ``labels``
    (``Subset`` of such a dataset too); otherwise read every sample."""
    if isinstance(dataset, Subset):
        inner = dataset_labels(dataset.dataset)
        return [int(inner[i]) for i in dataset.indices]
    labels = getattr(dataset, "labels", None)
    if labels is not None:
        return [int(x) for x in labels]
    return [int(dataset[i].label) for i in range(len(dataset))]  # type: ignore[arg-type]  # torch's Dataset type has no __len__


def check_resume(path: Path, meta: dict[str, Any], expected: dict[str, Any],
                 ignore: Iterable[str] = RESUMABLE_CHANGES) -> None:
    """Raise :class:`CheckpointError` when ``path`` was written by a differently configured run.

    A config key the checkpoint lacks (added to racam after it was written) matches when it
    holds its :data:`racam.compat.LATER_DEFAULTS` value of the section ``expected["kind"]``.
    """
    from racam.compat import LATER_DEFAULTS

    ignore = set(ignore)
    later = LATER_DEFAULTS.get(str(expected.get("kind")), {})
    diffs = []
    for key, want in expected.items():
        have = meta.get(key)
        if key == "config" and isinstance(have, dict):
            for k, v in want.items():
                if k not in have and k in later and _plain(later[k]) == _plain(v):
                    continue
                if k not in ignore and _plain(have.get(k)) != _plain(v):
                    diffs.append(f"{key}.{k}: {have.get(k)!r} in checkpoint, {v!r} now")
        elif _plain(have) != _plain(want):
            diffs.append(f"{key}: {have!r} in checkpoint, {want!r} now")
    if diffs:
        raise CheckpointError(f"checkpoint {path} belongs to a differently configured run ("
                              + "; ".join(diffs) + "): use another output folder or delete it")


def check_first_sample(dataset: Dataset, in_channels: int, what: str) -> list[int]:
    """Shape ``[C, H, W]`` of the first sample; :class:`DataError` when C != ``in_channels``."""
    first = dataset[0]
    shape = list(first.image.shape)
    if len(shape) != 3 or shape[0] != in_channels:
        raise DataError(f"image {first.image_path or first.id} has shape {tuple(shape)}, the "
                        f"{what} expects (C={in_channels}, H, W)")
    return shape


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


class EpochLoss:
    """The mean training loss of an epoch, summed on the device: adding a batch's loss is no
    host sync; :meth:`mean` reads it once (and raises when training diverged)."""

    def __init__(self, stage: str, epoch: int) -> None:
        self.stage, self.epoch = stage, epoch
        self.total: torch.Tensor | float = 0.0
        self.count = 0

    def add(self, loss: torch.Tensor | float, n: int) -> None:
        """Add a batch of ``n`` images whose mean loss is ``loss`` (a tensor stays on its
        device, detached)."""
        value = loss.detach().float() if isinstance(loss, torch.Tensor) else float(loss)
        self.total = self.total + value * n
        self.count += n

    def mean(self) -> float:
        """The epoch's mean loss (one host sync); :class:`TrainingDiverged` when it is not
        finite."""
        value = float(self.total) / max(self.count, 1)
        if not np.isfinite(value):
            raise TrainingDiverged(self.stage, self.epoch, value)
        return value


def epoch_sampler(labels: list[int], cfg: ClassifierConfig | SegmentationConfig,
                  gen: torch.Generator, dataset: Dataset) -> Sampler:
    """One epoch's sampler: ``cfg.samples_per_epoch`` draws (default: every image once).

    ``cfg.balance == "sampler"`` draws both image-level classes equally often (with
    replacement); otherwise a plain shuffle.
    """
    n = cfg.samples_per_epoch or len(labels)
    if cfg.balance == "sampler":
        counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=2)
        weights = torch.tensor([1.0 / counts[y] for y in labels], dtype=torch.double)
        return WeightedRandomSampler(weights, num_samples=n, replacement=True,  # type: ignore[arg-type]  # takes a tensor too
                                     generator=gen)
    return RandomSampler(dataset, replacement=False, num_samples=n,  # type: ignore[arg-type]  # Dataset type has no __len__
                         generator=gen)


def optimizer_step(loss: torch.Tensor, optimizer: torch.optim.Optimizer,
                   scaler: torch.amp.GradScaler) -> None:
    """One (loss-scaled under float16) optimiser step on ``loss``. No host sync: a diverged
    loss is caught once per epoch (:meth:`EpochLoss.mean`)."""
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()


def resume_state(last_path: Path, expected: dict[str, Any]
                 ) -> tuple[dict[str, Any] | None, list[dict[str, Any]], int]:
    """``(state, history, epochs done)`` from ``last_path`` when it exists (after checking its
    meta against ``expected``), else ``(None, [], 0)``."""
    if not last_path.exists():
        return None, [], 0
    state = load_checkpoint(last_path)
    check_resume(last_path, state["meta"], expected)
    return state, list(state["meta"].get("history", [])), int(state["epoch"])


def build_optimizer(model: nn.Module, name: str, lr: float, weight_decay: float,
                    momentum: float = 0.9) -> torch.optim.Optimizer:
    """SGD with ``momentum`` (the paper) or AdamW, on every parameter of ``model``."""
    if name == "sgd":
        return torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum,
                               weight_decay=weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    raise ConfigError(f"optimizer must be one of {OPTIMIZERS}, got {name!r}")


def optimizer_and_scaler(model: nn.Module, cfg: ClassifierConfig | SegmentationConfig,
                         precision: Precision, state: dict[str, Any] | None, last_path: Path
                         ) -> tuple[torch.optim.Optimizer, torch.amp.GradScaler]:
    """The optimiser (``cfg.optimizer`` where the config has one, else SGD; ``cfg.lr``,
    momentum, weight decay) and the grad scaler of ``precision`` (enabled for float16 only);
    when resuming from ``state`` (a loaded ``last.pt``), their states and the RNG states are
    restored from it."""
    optimizer = build_optimizer(model, getattr(cfg, "optimizer", "sgd"), cfg.lr,
                                cfg.weight_decay, cfg.momentum)
    use_amp = precision.uses_scaler
    scaler = precision.grad_scaler()
    if state is not None:
        if state.get("optimizer") is None:
            raise CheckpointError(f"checkpoint {last_path}: has no optimizer state to resume")
        optimizer.load_state_dict(state["optimizer"])
        if use_amp and state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        if state.get("rng_states"):
            restore_rng_states(state["rng_states"])
    return optimizer, scaler


# ------------------------------------------------------------------ DistributedDataParallel
class RankBatchSampler(Sampler[list[int]]):
    """This rank's part of each global batch of ``sampler``'s draws: the global batches are
    those of ``BatchSampler(sampler, batch_size, drop_last)`` (the single-process batches),
    each split into ``world_size`` consecutive near-equal parts (``numpy.array_split``)."""

    def __init__(self, sampler: Sampler, batch_size: int, drop_last: bool) -> None:
        self.batches = BatchSampler(sampler, batch_size, drop_last)
        self.rank, self.world = distributed.rank(), distributed.world_size()

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self) -> Iterator[list[int]]:
        for batch in self.batches:
            yield [int(i) for i in np.array_split(np.asarray(batch), self.world)[self.rank]]


def check_global_batches(draws: int, batch_size: int, drop_last: bool, stage: str) -> None:
    """:class:`ConfigError` when some global batch would leave a rank without an image."""
    n = distributed.world_size()
    if n == 1:
        return
    last = draws % batch_size
    if batch_size < n or (not drop_last and 0 < last < n):
        raise ConfigError(f"{stage}: {n} ranks need at least {n} images in every batch, but "
                          f"{stage}.batch_size is {batch_size} and {draws} draws per epoch leave "
                          f"a last batch of {last or batch_size}; change {stage}.batch_size or "
                          f"{stage}.samples_per_epoch")


def train_loader(dataset: Dataset, batch_size: int, sampler: Sampler | None,
                 generator: torch.Generator, num_workers: int, device: torch.device,
                 drop_last: bool = False, *, seed: int, epoch: int) -> DataLoader:
    """One epoch's training loader: :func:`make_loader` with one rank; under DDP this rank's
    part of every global batch of ``batch_size`` draws (:class:`RankBatchSampler`; the draws
    are the single-process ones: the same sampler and generator on every rank), with this
    rank's RNGs reseeded from ``(seed, epoch, rank)`` so that flips and dropout differ between
    ranks."""
    if not distributed.is_distributed():
        return make_loader(dataset, batch_size, sampler, generator, num_workers, device,
                           drop_last)
    s = np.random.SeedSequence([int(seed), int(epoch), 1 + distributed.rank()]).generate_state(1)
    torch.manual_seed(int(s[0]))
    np.random.seed(int(s[0]))
    random.seed(int(s[0]))
    batches = RankBatchSampler(sampler or SequentialSampler(dataset), batch_size, drop_last)  # type: ignore[arg-type]  # a Dataset with __len__
    return DataLoader(dataset, batch_sampler=batches, collate_fn=collate_samples,
                      num_workers=num_workers, generator=generator,
                      worker_init_fn=_seed_rank_worker if num_workers else None,
                      pin_memory=device.type == "cuda")


def wrap_ddp(model: nn.Module, device: torch.device) -> nn.Module:
    """``model`` (already on ``device``) under DistributedDataParallel when more than one rank
    takes part, else ``model`` itself. On CUDA BatchNorm becomes SyncBatchNorm (statistics of
    the global batch); torch's SyncBatchNorm does not run on CPU, so there each rank's
    BatchNorm sees its own part of the batch (docs/distributed.md)."""
    if not distributed.is_distributed():
        return model
    from torch.nn.parallel import DistributedDataParallel

    if device.type == "cuda":
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        index = device.index if device.index is not None else torch.cuda.current_device()
        return DistributedDataParallel(model, device_ids=[index])
    return DistributedDataParallel(model)


def unwrap(model: nn.Module) -> nn.Module:
    """The module inside a DistributedDataParallel wrapper (``model`` itself otherwise)."""
    from torch.nn.parallel import DistributedDataParallel

    return model.module if isinstance(model, DistributedDataParallel) else model


def global_batch_loss(loss_sum: torch.Tensor, weight: float, images: int
                      ) -> tuple[torch.Tensor, float, int]:
    """Make this rank's loss a share of the global batch's mean loss (one all-reduce).

    ``loss_sum`` is this rank's summed loss, ``weight`` what a mean divides it by (its images,
    or their class weights) and ``images`` its batch size. Returns ``(loss to back-propagate,
    mean loss of the global batch, images in the global batch)``; the first is
    ``loss_sum * N / W`` with ``W`` the global weight, so that DDP's average of the N ranks'
    gradients is the gradient of ``sum over ranks / W``, the mean over the global batch.
    """
    total_weight, total_loss, total_images = distributed.all_sum(
        [weight, float(loss_sum.detach()), images])
    scaled = loss_sum * (distributed.world_size() / total_weight)
    return scaled, total_loss / total_weight, int(total_images)
