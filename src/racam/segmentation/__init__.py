"""Segmentation networks (smp) trained on pseudo-labels or true masks."""

from racam.segmentation.networks import (
                                         ARCHS,
                                         build_segmentation,
                                         check_input_size,
                                         input_divisor,
                                         load_segmentation,
)
from racam.segmentation.train import (
                                         SegmentationResult,
                                         predict_masks,
                                         train_segmentation,
)

__all__ = ["ARCHS", "SegmentationResult", "build_segmentation", "check_input_size",
           "input_divisor", "load_segmentation", "predict_masks", "train_segmentation"]
