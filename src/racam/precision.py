"""Training precision: float32, bfloat16 autocast, or float16 autocast with a GradScaler.

One setting per trainer (``classifier.precision``, ``segmentation.precision``) chooses it, on
CUDA and on CPU alike; :func:`resolve_precision` turns the setting into a :class:`Precision`,
which makes the autocast context and the grad scaler. Every autocast of the trainers comes from
here. The older keys ``amp`` and ``bf16`` are read into ``precision`` when a config is loaded
(:mod:`racam.compat`).

``auto`` keeps what racam did by default before the key existed: float16 autocast with a
GradScaler on CUDA, float32 elsewhere. bfloat16 has float32's exponent range, so it needs no
GradScaler (no loss scaling, no per-step check for infinite gradients).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from racam.config import PRECISIONS

__all__ = ["PRECISIONS", "Precision", "resolve_precision"]

_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True)
class Precision:
    """The resolved precision of one training run on ``device``: ``name`` is ``float32``,
    ``bf16`` or ``fp16``."""

    name: str
    device: torch.device

    @property
    def dtype(self) -> torch.dtype | None:
        """The autocast dtype (``None`` for float32)."""
        return _DTYPES.get(self.name)

    @property
    def uses_scaler(self) -> bool:
        """float16 needs loss scaling (a GradScaler); bfloat16 and float32 do not."""
        return self.name == "fp16"

    def autocast(self) -> torch.autocast:
        """The autocast context of a forward pass (disabled for float32)."""
        dtype = self.dtype
        return torch.autocast(device_type=self.device.type,
                              dtype=dtype or torch.bfloat16, enabled=dtype is not None)

    def grad_scaler(self) -> torch.amp.GradScaler:
        """A GradScaler for this device, enabled only for float16."""
        return torch.amp.GradScaler(self.device.type, enabled=self.uses_scaler)


def resolve_precision(setting: str, device: torch.device) -> Precision:
    """The :class:`Precision` of ``setting`` (one of :data:`PRECISIONS`) on ``device``:
    ``auto`` is ``fp16`` on CUDA and ``float32`` elsewhere; an explicit setting applies on every
    device type."""
    if setting not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {setting!r}")
    if setting == "auto":
        setting = "fp16" if device.type == "cuda" else "float32"
    return Precision(setting, device)
