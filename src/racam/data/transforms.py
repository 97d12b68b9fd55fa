"""Training augmentation: random horizontal and vertical flips of an image and its mask."""

from __future__ import annotations

import torch
from torch import Tensor


def random_flips(image: Tensor, mask: Tensor | None = None, *, p_horizontal: float = 0.5,
                 p_vertical: float = 0.5, generator: torch.Generator | None = None
                 ) -> tuple[Tensor, Tensor | None]:
    """Flip ``image (C, H, W)`` and ``mask (H, W)`` together, left-right with probability
    ``p_horizontal`` and up-down with probability ``p_vertical`` (independent draws from
    ``torch.rand``, so seeding torch / the DataLoader workers makes them reproducible)."""
    draws = torch.rand(2, generator=generator)
    if draws[0] < p_horizontal:
        image = image.flip(-1)
        mask = None if mask is None else mask.flip(-1)
    if draws[1] < p_vertical:
        image = image.flip(-2)
        mask = None if mask is None else mask.flip(-2)
    return image, mask
