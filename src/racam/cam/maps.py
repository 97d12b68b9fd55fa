"""Map post-processing shared by every method: resize, per-image min-max, fusion."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from racam.errors import ConfigError

FUSIONS = ("max", "mean")


def resize_maps(maps: Tensor, size: tuple[int, int]) -> Tensor:
    """Bilinear resize of ``(B, h, w)`` maps to ``size = (H, W)`` (``align_corners=False``,
    the same sampling as OpenCV's ``INTER_LINEAR`` when enlarging)."""
    if tuple(maps.shape[-2:]) == tuple(size):
        return maps
    return F.interpolate(maps[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]


def normalize_maps(maps: Tensor) -> Tensor:
    """Per-image min-max to [0, 1] of ``(B, ...)`` maps: ``(m - min) / (max - min)``.

    A constant map becomes all zeros (never NaN).
    """
    flat = maps.reshape(maps.shape[0], -1)
    lo = flat.amin(dim=1)
    rng = flat.amax(dim=1) - lo
    shape = (-1,) + (1,) * (maps.dim() - 1)
    ok = (rng > 0).reshape(shape)
    scaled = (maps - lo.reshape(shape)) / torch.where(ok, rng.reshape(shape), 1.0)
    return torch.where(ok, scaled, torch.zeros((), dtype=maps.dtype, device=maps.device))


def check_fusion(fusion: str) -> str:
    """Validate a fusion name (``"max"`` or ``"mean"``)."""
    if fusion not in FUSIONS:
        raise ConfigError(f"fusion must be one of {FUSIONS}, got {fusion!r}")
    return fusion


def fuse_maps(maps: Sequence[Tensor], fusion: str) -> Tensor:
    """Element-wise max or mean of [0, 1] maps, min-max normalised again (one map: itself)."""
    check_fusion(fusion)
    if len(maps) == 1:
        return maps[0]
    stacked = torch.stack(list(maps))
    fused = stacked.amax(dim=0) if fusion == "max" else stacked.mean(dim=0)
    return normalize_maps(fused)
