"""Image-level classifier training: SGD, class balancing, validation, resumable checkpoints.

Choices the paper leaves open (protocol section 2), made here:

- Class imbalance (``cfg.balance``): ``"sampler"`` draws each image with probability
  ``1 / (2 n_c)`` for its class ``c`` (``WeightedRandomSampler`` with replacement,
  ``cfg.samples_per_epoch`` or ``len(train_ds)`` draws per epoch), so both classes are drawn
  equally often on average; ``"loss"`` weights the cross-entropy by ``w_c = N / (2 n_c)`` and
  shuffles without replacement; ``"none"`` shuffles only.
- Random horizontal/vertical flips come from the dataset (built with ``augment=True``).
- Each epoch the validation set gives the cross-entropy ``val_loss``, AUROC and average
  precision of the softmax defect probability (scikit-learn). With a single class in the
  validation set AUROC/AP are undefined and recorded as ``None``.
- ``best.pt`` is the epoch with the highest validation AUROC, ties broken by the lower
  validation loss; epochs without an AUROC rank below any epoch with one and among themselves
  by validation loss. Without a validation set the best epoch is the last one.
- Reproducibility and resuming: at the start of epoch ``e`` every RNG (torch CPU/CUDA, numpy,
  ``random``) and the sampler's generator are seeded from ``(seed, e)``, so an epoch's
  randomness never depends on how the run got there. ``last.pt`` (model, optimizer, AMP scaler,
  history, RNG states) is written atomically after every epoch; starting again with the same
  ``out_dir`` resumes from it, and a run killed after epoch ``k`` and resumed reaches the same
  weights as an uninterrupted run (bit-exact on CPU with ``num_workers=0``).
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import (
    DataLoader,
    Dataset,
    RandomSampler,
    Sampler,
    Subset,
    WeightedRandomSampler,
)
from tqdm import tqdm

from racam.classifier.checkpoint import (
    capture_rng_states,
    load_checkpoint,
    load_model_state,
    restore_rng_states,
    save_checkpoint,
)
from racam.data.sample import Batch, collate_samples
from racam.errors import CheckpointError, ConfigError, DataError, RacamError
from racam.models.registry import build_classifier, effective_width
from racam.pipeline.config import ClassifierConfig, SegmentationConfig

BALANCE_MODES = ("sampler", "loss", "none")
# Config fields that may change between a killed run and its resumption.
RESUMABLE_CHANGES = frozenset({"epochs", "num_workers", "amp"})


@dataclass
class ClassifierResult:
    """Outcome of :func:`train_classifier`.

    ``history`` holds one dict per epoch: ``epoch`` (1-based), ``loss`` (mean training
    cross-entropy), ``val_loss``, ``val_auroc``, ``val_ap`` (``None`` when undefined), ``lr``,
    ``seconds``. ``finished`` is False when the call stopped early (``stop_after``).
    """

    best_path: Path
    last_path: Path
    history: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int = 0
    finished: bool = True


# ---------------------------------------------------------------- helpers shared with segmentation
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
    import random

    s = np.random.SeedSequence([int(seed), int(epoch)]).generate_state(2, dtype=np.uint32)
    torch.manual_seed(int(s[0]))
    np.random.seed(int(s[0]))
    random.seed(int(s[0]))
    return torch.Generator().manual_seed(int(s[1]))


def _seed_worker(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: seed numpy and ``random`` from the worker's torch seed."""
    import random

    s = torch.initial_seed() % 2**32
    np.random.seed(s)
    random.seed(s)


def make_loader(dataset: Dataset, batch_size: int, sampler: Sampler | None,
                generator: torch.Generator | None, num_workers: int, device: torch.device,
                drop_last: bool = False) -> DataLoader:
    """A DataLoader of :class:`racam.data.Batch` (seeded workers, pinned memory on CUDA)."""
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, shuffle=False,
                      collate_fn=collate_samples, num_workers=num_workers,
                      generator=generator, worker_init_fn=_seed_worker if num_workers else None,
                      pin_memory=device.type == "cuda", drop_last=drop_last)


def dataset_labels(dataset: Dataset) -> list[int]:
    """Image labels of ``dataset`` without loading images when it exposes ``labels``
    (``Subset`` of such a dataset too); otherwise read every sample."""
    if isinstance(dataset, Subset):
        inner = dataset_labels(dataset.dataset)
        return [int(inner[i]) for i in dataset.indices]
    labels = getattr(dataset, "labels", None)
    if labels is not None:
        return [int(x) for x in labels]
    return [int(dataset[i].label) for i in range(len(dataset))]  # type: ignore[index]


def check_resume(path: Path, meta: dict[str, Any], expected: dict[str, Any],
                 ignore: Iterable[str] = RESUMABLE_CHANGES) -> None:
    """Raise :class:`CheckpointError` when ``path`` was written by a differently configured run."""
    ignore = set(ignore)
    diffs = []
    for key, want in expected.items():
        have = meta.get(key)
        if key == "config" and isinstance(have, dict):
            for k, v in want.items():
                if k not in ignore and _plain(have.get(k)) != _plain(v):
                    diffs.append(f"{key}.{k}: {have.get(k)!r} in checkpoint, {v!r} now")
        elif _plain(have) != _plain(want):
            diffs.append(f"{key}: {have!r} in checkpoint, {want!r} now")
    if diffs:
        raise CheckpointError(f"checkpoint {path} belongs to a differently configured run ("
                              + "; ".join(diffs) + "): use another output folder or delete it")


def check_first_sample(dataset: Dataset, in_channels: int, what: str) -> list[int]:
    """Shape ``[C, H, W]`` of the first sample; :class:`DataError` when C != ``in_channels``."""
    first = dataset[0]  # type: ignore[index]
    shape = list(first.image.shape)
    if len(shape) != 3 or shape[0] != in_channels:
        raise DataError(f"image {first.image_path or first.id} has shape {tuple(shape)}, the "
                        f"{what} expects (C={in_channels}, H, W)")
    return shape


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def amp_context(device: torch.device, enabled: bool) -> torch.autocast:
    """Mixed precision (float16 autocast) on CUDA when ``enabled``; a no-op elsewhere."""
    return torch.autocast(device_type=device.type, dtype=torch.float16,
                          enabled=enabled and device.type == "cuda")


# ---------------------------------------------------------------- classifier
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
        return WeightedRandomSampler(weights, num_samples=n, replacement=True, generator=gen)
    return RandomSampler(dataset, replacement=False, num_samples=n, generator=gen)


def optimizer_step(loss: torch.Tensor, optimizer: torch.optim.Optimizer,
                   scaler: torch.amp.GradScaler, stage: str, epoch: int) -> None:
    """One (AMP-scaled) SGD step on ``loss``; a non-finite loss is an error naming ``stage``."""
    if not torch.isfinite(loss):
        raise RacamError(f"{stage} training diverged at epoch {epoch} (loss {loss.item()}): "
                         f"lower {stage}.lr")
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


def sgd_and_scaler(model: nn.Module, cfg: ClassifierConfig | SegmentationConfig, use_amp: bool,
                   state: dict[str, Any] | None, last_path: Path
                   ) -> tuple[torch.optim.SGD, torch.amp.GradScaler]:
    """SGD (``cfg.lr``, momentum, weight decay) and the AMP grad scaler; when resuming from
    ``state`` (a loaded ``last.pt``), their states and the RNG states are restored from it."""
    optimizer = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                                weight_decay=cfg.weight_decay)
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    if state is not None:
        if state.get("optimizer") is None:
            raise CheckpointError(f"checkpoint {last_path}: has no optimizer state to resume")
        optimizer.load_state_dict(state["optimizer"])
        if use_amp and state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        if state.get("rng_states"):
            restore_rng_states(state["rng_states"])
    return optimizer, scaler


def _check_labels(labels: list[int]) -> None:
    bad = sorted(set(labels) - {0, 1})
    if bad:
        raise DataError(f"classifier labels must be 0 (defect-free) or 1 (defective), got {bad}")


def _class_weights(labels: list[int], cfg: ClassifierConfig) -> torch.Tensor | None:
    if cfg.balance != "loss":
        return None
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=2).astype(np.float64)
    w = np.where(counts > 0, len(labels) / (2.0 * np.maximum(counts, 1)), 1.0)
    return torch.tensor(w, dtype=torch.float32)


def _check_cfg(cfg: ClassifierConfig, train_ds: Dataset) -> None:
    if cfg.balance not in BALANCE_MODES:
        raise ConfigError(f"classifier.balance must be one of {BALANCE_MODES}, "
                          f"got {cfg.balance!r}")
    for name in ("epochs", "batch_size"):
        if int(getattr(cfg, name)) < 1:
            raise ConfigError(f"classifier.{name} must be >= 1, got {getattr(cfg, name)}")
    if cfg.samples_per_epoch is not None and cfg.samples_per_epoch < 1:
        raise ConfigError(f"classifier.samples_per_epoch must be >= 1 or null, "
                          f"got {cfg.samples_per_epoch}")
    if len(train_ds) == 0:  # type: ignore[arg-type]
        raise DataError("classifier training set is empty")


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


def _validate(model: nn.Module, val_ds: Dataset | None, cfg: ClassifierConfig,
              device: torch.device) -> dict[str, float | None]:
    from sklearn.metrics import average_precision_score, roc_auc_score

    if val_ds is None or len(val_ds) == 0:  # type: ignore[arg-type]
        return {"val_loss": None, "val_auroc": None, "val_ap": None}
    logits, labels = _predict_logits(model, val_ds, cfg.batch_size, device, cfg.num_workers)
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


def _train_epoch(model: nn.Module, loader: DataLoader, optimizer: torch.optim.Optimizer,
                 scaler: torch.amp.GradScaler, class_weights: torch.Tensor | None,
                 device: torch.device, use_amp: bool, epoch: int, progress: bool) -> float:
    model.train()
    total, count = 0.0, 0
    bar = tqdm(loader, desc=f"epoch {epoch}", leave=False, disable=not progress)
    for batch in bar:
        assert isinstance(batch, Batch)
        x = batch.images.to(device, non_blocking=True)
        y = batch.labels.to(device, non_blocking=True)
        with amp_context(device, use_amp):
            logits = model(x)
        loss = F.cross_entropy(logits.float(), y, weight=class_weights)
        optimizer_step(loss, optimizer, scaler, "classifier", epoch)
        total += loss.item() * len(y)
        count += len(y)
        bar.set_postfix(loss=f"{total / count:.4f}")
    return total / max(count, 1)


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
    _check_cfg(cfg, train_ds)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    last_path, best_path = out_dir / "last.pt", out_dir / "best.pt"
    dev = resolve_device(device)
    use_amp = bool(cfg.amp) and dev.type == "cuda"
    labels = dataset_labels(train_ds)
    _check_labels(labels)
    weights = _class_weights(labels, cfg)
    weights = None if weights is None else weights.to(dev)
    cfg_dict = dataclasses.asdict(cfg)
    expected = {"kind": "classifier", "backbone": cfg.backbone,
                "width": effective_width(cfg.backbone, cfg.width), "in_channels": in_channels,
                "batch_norm": bool(cfg.batch_norm),
                "num_classes": 2, "seed": int(seed), "config": cfg_dict,
                "input_shape": check_first_sample(train_ds, in_channels, "classifier")}

    state, history, start = resume_state(last_path, expected)
    if state is not None and start >= cfg.epochs:  # finished: nothing to do
        return ClassifierResult(best_path, last_path, history, best_epoch_of(history))

    torch.manual_seed(int(seed))
    model = build_classifier(cfg.backbone, num_classes=2, in_channels=in_channels,
                             width=cfg.width, weights=None if state else cfg.weights,
                             batch_norm=bool(cfg.batch_norm))
    if state is not None:
        load_model_state(model, state, last_path)
    model.to(dev)
    optimizer, scaler = sgd_and_scaler(model, cfg, use_amp, state, last_path)

    bar = tqdm(range(start, cfg.epochs), initial=start, total=cfg.epochs, desc="classifier",
               disable=not progress)
    for epoch in bar:
        t0 = time.perf_counter()
        gen = seed_epoch(seed, epoch)
        loader = make_loader(train_ds, cfg.batch_size, epoch_sampler(labels, cfg, gen, train_ds), gen,
                             cfg.num_workers, dev)
        loss = _train_epoch(model, loader, optimizer, scaler, weights, dev, use_amp,
                            epoch + 1, progress)
        record: dict[str, Any] = {"epoch": epoch + 1, "loss": loss,
                                  **_validate(model, val_ds, cfg, dev),
                                  "lr": optimizer.param_groups[0]["lr"]}
        record["seconds"] = time.perf_counter() - t0
        history.append(record)
        best = best_epoch_of(history)
        meta = {**expected, "history": history, "best_epoch": best}
        if best == epoch + 1:
            save_checkpoint(best_path, model, None, None, epoch + 1, meta)
        save_checkpoint(last_path, model, optimizer, None, epoch + 1, meta,
                        capture_rng_states(), scaler=scaler if use_amp else None)
        bar.set_postfix(loss=f"{loss:.4f}", val_auroc=record["val_auroc"])
        if stop_after is not None and epoch + 1 >= stop_after and epoch + 1 < cfg.epochs:
            return ClassifierResult(best_path, last_path, history, best, finished=False)
    return ClassifierResult(best_path, last_path, history, best_epoch_of(history))
