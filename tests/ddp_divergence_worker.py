"""Worker of ``test_distributed.py``: a classifier whose loss turns NaN on rank 1 only, in
epoch 2, trained as one rank of ``torchrun --nproc_per_node 2``. Each rank writes what its
training returned; every rank must stop at the same epoch (the loss is all-reduced per step).
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import torch
from ddp_step_worker import Noise  # the same seeded images

from racam import distributed
from racam.classifier import train as train_mod
from racam.config import ClassifierConfig

REAL = train_mod.train_epoch


def _poisoned(model, loader, st, epoch, progress):
    """Rank 1's batches of epoch 2 are NaN images; rank 0's stay finite."""
    if epoch == 2 and distributed.rank() == 1:
        loader = [dataclasses.replace(b, images=torch.full_like(b.images, float("nan")))
                  for b in loader]
    return REAL(model, loader, st, epoch, progress)


def main(out: Path) -> None:
    distributed.init_from_env()
    train_mod.train_epoch = _poisoned  # type: ignore[assignment]
    cfg = ClassifierConfig(backbone="vgg16_narrow", width=16, batch_norm=False, epochs=3,
                           batch_size=8, lr=0.01)
    res = train_mod.train_classifier(cfg, Noise(16), None, out / "clf", seed=3, device="cpu",
                                     progress=False)
    (out / f"rank{distributed.rank()}.json").write_text(json.dumps(
        {"diverged_at": res.diverged_at, "epochs": [h["epoch"] for h in res.history],
         "best_epoch": res.best_epoch}))
    distributed.shutdown()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
