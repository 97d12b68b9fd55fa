"""racam.evaluation: pixel confusion counts, IoU / mIoU / precision / recall / F1."""

from racam.evaluation.metrics import (
    Counts,
    SegmentationMeter,
    confusion_counts,
    scores_from_counts,
)

__all__ = ["Counts", "SegmentationMeter", "confusion_counts", "scores_from_counts"]
