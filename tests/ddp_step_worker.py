"""Worker of ``test_distributed.py``: train a classifier for one epoch (two optimiser steps)
in this process, or as one rank of ``torchrun``; the test compares the weights.

``python tests/ddp_step_worker.py OUT`` trains with one process; under
``torchrun --nproc_per_node 2`` each rank takes its part of every global batch.
Dropout is switched off (its masks are drawn per rank) and the model has no BatchNorm (torch's
SyncBatchNorm does not run on CPU), so the two runs see the same function of the same images.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import Dataset

from racam import distributed
from racam.classifier import train as train_mod
from racam.config import ClassifierConfig
from racam.data.sample import Sample


class Noise(Dataset):
    """``n`` seeded random gray 64 x 32 images; every third one is labelled defective."""

    def __init__(self, n: int) -> None:
        g = torch.Generator().manual_seed(7)
        self.images = [torch.rand(1, 64, 32, generator=g) for _ in range(n)]
        self.labels = [int(i % 3 == 0) for i in range(n)]

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> Sample:
        return Sample(image=self.images[i], label=self.labels[i], id=f"n{i}",
                      original_size=(32, 64))


def _without_dropout(*args, **kwargs) -> nn.Module:
    model = BUILD(*args, **kwargs)
    for m in model.modules():
        if isinstance(m, nn.Dropout):
            m.p = 0.0
    return model


BUILD = train_mod.build_classifier
train_mod.build_classifier = _without_dropout  # type: ignore[assignment]


def main(out: Path) -> None:
    distributed.init_from_env()
    # 13 images, global batch 8: steps of 8 and 5 images; with 2 ranks the second step splits
    # 3 + 2, so the loss must be the mean over the global batch, not the mean of rank means.
    for name, balance in (("loss", "loss"), ("sampler", "sampler")):
        cfg = ClassifierConfig(backbone="vgg16_narrow", width=16, batch_norm=False, epochs=1,
                               batch_size=8, lr=0.05, balance=balance)
        train_mod.train_classifier(cfg, Noise(13), None, out / name, seed=3, device="cpu",
                                   progress=False)
    (out / f"world{distributed.world_size()}-rank{distributed.rank()}.done").touch()
    distributed.shutdown()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
