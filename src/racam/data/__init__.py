"""racam.data: the sample type and the dataset sources (KolektorSDD, KolektorSDD2, folders).

Every dataset returns :class:`Sample` s (image ``(C, H, W)`` in [0, 1] at the configured
``(width, height)``, label, optional bool mask, id, original size) and exposes ``records``
(:class:`Record`), ``labels``, ``size`` and ``channels``. Each dataset kind is a
:class:`DatasetSpec` in :mod:`racam.data.registry` (``data.dataset`` names one).
"""

from racam.data.folder import FolderDataset
from racam.data.io import (
                           Record,
                           RecordDataset,
                           image_size,
                           image_to_tensor,
                           read_image,
                           read_image_tensor,
                           read_mask,
                           resize_mask,
)
from racam.data.ksdd import KolektorSDD
from racam.data.ksdd2 import KolektorSDD2
from racam.data.listing import ImageListing, Skipped, list_images
from racam.data.masks import MaskReading, read_mask_reading
from racam.data.registry import register
from racam.data.sample import Batch, Sample, collate_samples
from racam.data.spec import DatasetSpec, DataSummary, InfoOptions, SplitCount
from racam.data.splits import ksdd_folds, load_split_file
from racam.data.stratify import stratified_split
from racam.data.summary import summarize
from racam.data.transforms import random_flips

__all__ = [
    "Batch", "DataSummary", "DatasetSpec", "FolderDataset", "ImageListing", "InfoOptions",
    "KolektorSDD", "KolektorSDD2", "MaskReading", "Record", "RecordDataset", "Sample", "Skipped",
    "SplitCount", "collate_samples", "image_size", "image_to_tensor", "ksdd_folds",
    "list_images", "load_split_file", "random_flips", "read_image", "read_image_tensor",
    "read_mask", "read_mask_reading", "register", "resize_mask", "stratified_split",
    "summarize",
]
