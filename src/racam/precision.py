"""Training precision: float32, bfloat16 autocast, or float16 autocast with a GradScaler.

One setting per trainer (``classifier.precision``, ``segmentation.precision``) chooses it, on
CUDA and on CPU alike; :func:`resolve_precision` turns the setting into a :class:`Precision`,
which makes the autocast context and the grad scaler. Every autocast of the trainers comes from
here. The older keys ``amp`` and ``bf16`` are read into ``precision`` when a config is loaded
(:mod:`racam.compat`).

``auto`` keeps what racam did by default before the key existed: float16 autocast with a
GradScaler on CUDA, float32 elsewhere. bfloat16 has float32's exponent range, so it needs no
GradScaler (no loss scaling, no per-step check for infinite gradients).

``bf16_if_native`` is bfloat16 where the device computes it natively (:func:`native_bf16`) and
float32 elsewhere: on a CPU with AVX2 only (AMD EPYC, no AVX512), a training step of the crop
recipe's UNet took 106.7 s under bfloat16 autocast against 4.5 s in float32, where CPUs with
AVX512-BF16 ran bfloat16 1.9 times faster than float32 (``benchmarks/seg_step_speed.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from racam.config import PRECISIONS

__all__ = ["PRECISIONS", "Precision", "native_bf16", "precision_warning", "resolve_precision"]

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


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes bfloat16 natively: a CUDA device that supports it without
    emulation (Ampere and later); a CPU where oneDNN has a bfloat16 path (AVX512 or Arm BF16,
    ``torch.ops.mkldnn._is_mkldnn_bf16_supported``); ``False`` on other devices."""
    if device.type == "cuda":
        return torch.cuda.is_available() and bool(
            torch.cuda.is_bf16_supported(including_emulation=False))
    if device.type != "cpu":
        return False
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a torch build without the check: assume it does
        return True


def resolve_precision(setting: str, device: torch.device) -> Precision:
    """The :class:`Precision` of ``setting`` (one of :data:`PRECISIONS`) on ``device``:
    ``auto`` is ``fp16`` on CUDA and ``float32`` elsewhere; ``bf16_if_native`` is ``bf16``
    where :func:`native_bf16` and ``float32`` elsewhere; an explicit setting applies on every
    device type."""
    if setting not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {setting!r}")
    if setting == "auto":
        setting = "fp16" if device.type == "cuda" else "float32"
    elif setting == "bf16_if_native":
        setting = "bf16" if native_bf16(device) else "float32"
    return Precision(setting, device)


def precision_warning(key: str, setting: str, device: torch.device) -> str | None:
    """One line for the log when the precision setting ``key`` trains slower than it has to
    or not as written: explicit ``bf16`` on a device without native bfloat16 (emulated, many
    times slower than float32), ``bf16_if_native`` falling back to float32; else ``None``."""
    if setting not in ("bf16", "bf16_if_native") or native_bf16(device):
        return None
    if setting == "bf16":
        return (f"{key}: bf16 on a {device.type.upper()} without native bfloat16 is emulated, "
                f"many times slower than float32 (set {key}=bf16_if_native or float32)")
    return f"{key}: bf16_if_native trains in float32 here ({device.type.upper()} without " \
           "native bfloat16)"
