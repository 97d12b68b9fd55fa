"""Optimiser and learning-rate schedule of segmentation training (``segmentation.optimizer``,
``segmentation.schedule``).

The schedule is a pure function of the step, so a resumed run continues it exactly without a
scheduler state: with ``T`` the total number of steps and ``t`` the current one (0-based),

- ``constant``: ``lr_t = lr``;
- ``cosine``: ``lr_t = lr * (1 + cos(pi t / T)) / 2``;
- ``poly``: ``lr_t = lr * (1 - t / T) ** 0.9``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
from torch import nn

from racam.config import OPTIMIZERS, SCHEDULES
from racam.errors import ConfigError


def build_optimizer(model: nn.Module, name: str, lr: float, weight_decay: float,
                    momentum: float = 0.9) -> torch.optim.Optimizer:
    """SGD with ``momentum`` (the paper) or AdamW, on every parameter of ``model``."""
    if name == "sgd":
        return torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum,
                               weight_decay=weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    raise ConfigError(f"segmentation.optimizer must be one of {OPTIMIZERS}, got {name!r}")


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


def optimizer_and_scaler(model: nn.Module, cfg: Any, use_amp: bool,
                         state: dict[str, Any] | None, last_path: Path
                         ) -> tuple[torch.optim.Optimizer, torch.amp.GradScaler]:
    """The optimiser named by ``cfg.optimizer`` (default SGD) and the CUDA AMP grad scaler; when
    resuming from ``state`` (a loaded ``last.pt``) their states and the RNG states are restored."""
    from racam.checkpoint import restore_rng_states
    from racam.errors import CheckpointError

    optimizer = build_optimizer(model, getattr(cfg, "optimizer", "sgd"), cfg.lr,
                                cfg.weight_decay, cfg.momentum)
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
