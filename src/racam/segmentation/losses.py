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


def segmentation_loss(name: str, *, whole_batches_ignored: bool = False) -> LossFn:
    """The training loss ``loss(logits (B, 2, H, W), target (B, H, W) long)``.

    - ``"ce"``: pixel-wise cross-entropy (the paper).
    - ``"ce+dice"``: cross-entropy plus smp's multiclass soft Dice loss
      ``1 - 2|P∩Y| / (|P| + |Y|)`` averaged over the classes present in the batch.
    - ``"ce+dice_defect"``: cross-entropy plus the soft Dice loss of the defect class alone
      (sums over the whole batch), which counters the defect pixels' rarity without rewarding
      the easy background class (the CPU recipe).

    Pixels whose target is :data:`IGNORE_INDEX` count in no term. ``whole_batches_ignored``
    (``segmentation.train_masks_rest: ignore``, which can draw a batch with no other pixel):
    the cross-entropy is the sum over the counted pixels divided by their number, at least 1,
    so such a batch has loss 0 instead of NaN, without a device sync; otherwise it is torch's
    mean over the counted pixels, as before.
    """

    def ce(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits, y, ignore_index=IGNORE_INDEX)

    def ce_any(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        per_pixel = F.cross_entropy(logits, y, ignore_index=IGNORE_INDEX, reduction="none")
        return per_pixel.sum() / (y != IGNORE_INDEX).sum().clamp(min=1)

    cross = ce_any if whole_batches_ignored else ce
    if name == "ce":
        return cross
    if name in ("ce+dice", "ce+dice_defect"):
        from segmentation_models_pytorch.losses import DiceLoss

        classes = [1] if name == "ce+dice_defect" else None
        dice = DiceLoss(mode="multiclass", classes=classes, from_logits=True,
                        ignore_index=IGNORE_INDEX)  # a class absent from the batch adds 0
        return lambda logits, y: cross(logits, y) + dice(logits, y)
    raise ConfigError(f"segmentation.loss must be one of {LOSSES}, got {name!r}")
