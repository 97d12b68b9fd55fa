"""Learning-rate schedules shared by classifier and segmentation training.

A schedule is a pure function of the optimisation step, so a resumed run continues it exactly
without a scheduler state. With ``T`` the total number of steps, ``W`` warm-up steps and ``t``
the current step (0-based):

- warm-up (``t < W``): ``lr_t = lr * (t + 1) / W``, a linear ramp that reaches ``lr`` at the
  last warm-up step;
- after it, with ``u = (t - W) / (T - W)``: ``constant`` ``lr_t = lr``; ``cosine``
  ``lr_t = lr * (1 + cos(pi u)) / 2``; ``poly`` ``lr_t = lr * (1 - u) ** 0.9``.

:class:`StepSchedule` applies such a schedule through an optimizer step pre-hook, so a training
loop needs no change: before every ``optimizer.step()`` the learning rate of step
``epoch * steps_per_epoch + i`` is set, where the count ``i`` restarts at every
:meth:`StepSchedule.begin_epoch`.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from racam.config import SCHEDULES
from racam.errors import ConfigError


def lr_factor(schedule: str, step: int, total: int, warmup: int = 0) -> float:
    """Multiplier of the base learning rate at ``step`` of ``total`` after ``warmup`` linear
    warm-up steps (see the module docstring)."""
    if schedule not in SCHEDULES:
        raise ConfigError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")
    if step < warmup:
        return (step + 1) / warmup
    if schedule == "constant":
        return 1.0
    frac = min(max((step - warmup) / max(total - warmup, 1), 0.0), 1.0)
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * frac))
    return (1.0 - frac) ** 0.9  # poly


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Set every parameter group's learning rate."""
    for group in optimizer.param_groups:
        group["lr"] = lr


class StepSchedule:
    """Per-step learning rates for ``optimizer`` (see the module docstring).

    Args:
        optimizer: its learning rate is set before each of its steps.
        base_lr: the learning rate the schedule multiplies.
        schedule: ``constant``, ``cosine`` or ``poly`` after the warm-up.
        epochs: training epochs in all.
        warmup_epochs: epochs of linear warm-up (may be fractional; 0: none).
    """

    def __init__(self, optimizer: torch.optim.Optimizer, base_lr: float, schedule: str,
                 epochs: int, warmup_epochs: float = 0.0) -> None:
        lr_factor(schedule, 0, 1)  # checks the name
        self.optimizer = optimizer
        self.base_lr = float(base_lr)
        self.schedule = schedule
        self.epochs = int(epochs)
        self.warmup_epochs = float(warmup_epochs)
        self._first = 0
        self._taken = 0
        self._per_epoch = 1
        self._handle = optimizer.register_step_pre_hook(self._before_step)

    @property
    def active(self) -> bool:
        """False when the schedule is a constant learning rate without warm-up."""
        return self.schedule != "constant" or self.warmup_epochs > 0

    def begin_epoch(self, epoch: int, steps_per_epoch: int) -> None:
        """Start counting the steps of ``epoch`` (0-based), which has ``steps_per_epoch``."""
        self._per_epoch = max(int(steps_per_epoch), 1)
        self._first = int(epoch) * self._per_epoch
        self._taken = 0
        self._apply()

    def lr_at(self, step: int) -> float:
        """Learning rate of global ``step`` (0-based)."""
        warmup = round(self.warmup_epochs * self._per_epoch)
        total = self.epochs * self._per_epoch
        return self.base_lr * lr_factor(self.schedule, step, total, warmup)

    def _apply(self) -> None:
        if self.active:
            set_lr(self.optimizer, self.lr_at(self._first + self._taken))

    def _before_step(self, optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        self._apply()
        self._taken += 1

    def remove(self) -> None:
        """Detach from the optimizer (its learning rate stays as last set)."""
        self._handle.remove()
