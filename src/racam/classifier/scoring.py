"""Classifier predictions (logits, defect probabilities) and the validation scores of an epoch.

:func:`validate` gives the cross-entropy ``val_loss``, AUROC and average precision of the
softmax defect probability (scikit-learn); with a single class in the validation set (or a
non-finite probability) AUROC and AP are undefined and ``None``. Under ``torchrun`` the images
are split across ranks and every rank gets all logits (:func:`racam.distributed.sharded_map`).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import Dataset, Subset
from tqdm import tqdm

from racam import distributed
from racam.config import ClassifierConfig
from racam.data.device_cache import DeviceCache
from racam.training import make_loader, resolve_device


def predict_logits_sharded(model: nn.Module, dataset: Dataset, batch_size: int,
                           device: torch.device, num_workers: int = 0
                           ) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`predict_logits` with the images split across ranks (every rank gets all)."""
    if not distributed.is_distributed():
        return predict_logits(model, dataset, batch_size, device, num_workers)

    def part(indices: list[int]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        logits, labels = predict_logits(model, Subset(dataset, indices), batch_size, device,
                                        num_workers)
        return list(zip(logits, labels))

    rows = distributed.sharded_map(part, range(len(dataset)), block=batch_size)  # type: ignore[arg-type]  # torch's Dataset type has no __len__
    if not rows:
        return torch.empty(0, 2), torch.empty(0, dtype=torch.long)
    return torch.stack([r[0] for r in rows]), torch.stack([r[1] for r in rows])


@torch.inference_mode()
def predict_logits(model: nn.Module, dataset: Dataset, batch_size: int,
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
    logits, _ = predict_logits(model, dataset, batch_size, dev)
    return logits.softmax(dim=1)[:, 1]


@torch.inference_mode()
def predict_cached(model: nn.Module, cache: DeviceCache, batch_size: int
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`predict_logits` of a device cache (every rank computes every image)."""
    was_training = model.training
    model.eval()
    logits = [model(b.images).float() for b in cache.in_order(batch_size)]
    model.train(was_training)
    return torch.cat(logits).cpu(), cache.labels.cpu()


def validate(model: nn.Module, val_ds: Dataset | None, cfg: ClassifierConfig,
             device: torch.device, cache: DeviceCache | None = None
             ) -> dict[str, float | None]:
    """``val_loss``, ``val_auroc`` and ``val_ap`` of ``model`` on ``val_ds`` (from ``cache``
    when given); ``None`` where undefined or without validation images."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    if val_ds is None or len(val_ds) == 0:  # type: ignore[arg-type]  # torch's Dataset type has no __len__
        return {"val_loss": None, "val_auroc": None, "val_ap": None}
    if cache is not None:
        logits, labels = predict_cached(model, cache, cfg.batch_size)
    else:
        logits, labels = predict_logits_sharded(model, val_ds, cfg.batch_size, device,
                                                cfg.num_workers)
    val_loss = float(F.cross_entropy(logits, labels))
    prob = logits.softmax(dim=1)[:, 1].numpy()
    y = labels.numpy()
    if len(np.unique(y)) < 2 or not np.all(np.isfinite(prob)):
        return {"val_loss": val_loss, "val_auroc": None, "val_ap": None}
    return {"val_loss": val_loss, "val_auroc": float(roc_auc_score(y, prob)),
            "val_ap": float(average_precision_score(y, prob))}
