"""Learning-rate schedule of segmentation training (``segmentation.schedule``; the optimiser
itself comes from :func:`racam.training.optimizer_and_scaler`).

The schedule is a pure function of the step, so a resumed run continues it exactly without a
scheduler state: with ``T`` the total number of steps and ``t`` the current one (0-based),

- ``constant``: ``lr_t = lr``;
- ``cosine``: ``lr_t = lr * (1 + cos(pi t / T)) / 2``;
- ``poly``: ``lr_t = lr * (1 - t / T) ** 0.9``.
"""

from __future__ import annotations

import math

import torch

from racam.config import SCHEDULES
from racam.errors import ConfigError


def lr_factor(schedule: str, step: int, total: int) -> float:
    """Multiplier of the base learning rate at ``step`` of ``total`` (see module docstring)."""
    if schedule == "constant":
        return 1.0
    frac = min(max(step / max(total, 1), 0.0), 1.0)
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * frac))
    if schedule == "poly":
        return (1.0 - frac) ** 0.9
    raise ConfigError(f"segmentation.schedule must be one of {SCHEDULES}, got {schedule!r}")


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Set every parameter group's learning rate."""
    for group in optimizer.param_groups:
        group["lr"] = lr

