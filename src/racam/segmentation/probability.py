"""The defect probability a segmentation network gives each pixel (one place for the rule)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn


def defect_probability(logits: Tensor) -> Tensor:
    """``(B, H, W)`` float32 defect probability of ``(B, C, H, W)`` logits:
    ``softmax(logits)[:, 1]`` for two classes, ``sigmoid(logits)[:, 0]`` for one."""
    logits = logits.float()
    return logits.softmax(dim=1)[:, 1] if logits.shape[1] > 1 else logits.sigmoid()[:, 0]


def probability_fn(model: nn.Module, *, bf16: bool = False) -> Callable[..., Tensor]:
    """``fn(images, targets=None) -> (B, H, W)`` defect probability at the input size, in the
    call style of the heat-map methods (so pseudo-label writers take a network as they take a
    CAM). ``bf16``: bfloat16 autocast on a CPU, as the CPU recipe trains."""
    model.eval()

    @torch.no_grad()
    def fn(images: Tensor, targets: object = None) -> Tensor:
        cpu_bf16 = bf16 and images.device.type == "cpu"
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cpu_bf16):
            return defect_probability(model(images))

    return fn
