"""Segmentation training losses, by config name (``segmentation.loss``)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.nn import functional as F

from racam.config import SEGMENTATION_LOSSES as LOSSES
from racam.errors import ConfigError

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

#: Target value of pixels left out of every loss (a pseudo-label's uncertain band).
IGNORE_INDEX = 255


def segmentation_loss(name: str) -> LossFn:
    """The training loss ``loss(logits (B, 2, H, W), target (B, H, W) long)``.

    - ``"ce"``: pixel-wise cross-entropy (the paper).
    - ``"ce+dice"``: cross-entropy plus smp's multiclass soft Dice loss
      ``1 - 2|P∩Y| / (|P| + |Y|)`` averaged over the classes present in the batch.
    - ``"ce+dice_defect"``: cross-entropy plus the soft Dice loss of the defect class alone
      (sums over the whole batch), which counters the defect pixels' rarity without rewarding
      the easy background class (the CPU recipe).

    Pixels whose target is :data:`IGNORE_INDEX` count in no term; a batch with no other pixel
    (``segmentation.train_masks_rest: ignore`` can draw one) has loss 0, not NaN.
    """

    def ce(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if not bool((y != IGNORE_INDEX).any()):
            return logits.sum() * 0.0  # nothing to learn here; keeps the graph and gradients
        return F.cross_entropy(logits, y, ignore_index=IGNORE_INDEX)

    if name == "ce":
        return ce
    if name in ("ce+dice", "ce+dice_defect"):
        from segmentation_models_pytorch.losses import DiceLoss

        classes = [1] if name == "ce+dice_defect" else None
        dice = DiceLoss(mode="multiclass", classes=classes, from_logits=True,
                        ignore_index=IGNORE_INDEX)
        def both(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            if not bool((y != IGNORE_INDEX).any()):
                return logits.sum() * 0.0
            return ce(logits, y) + dice(logits, y)

        return both
    raise ConfigError(f"segmentation.loss must be one of {LOSSES}, got {name!r}")
