"""Reading images and masks from disk, resizing them, and the record-backed dataset base class.

Every failure raises :class:`racam.errors.DataError` whose message starts with the offending
file's path and says what is wrong (missing, unreadable, size mismatch, ...).

Conventions:

- sizes are ``(width, height)`` everywhere (as PIL), tensors are ``(C, H, W)`` / ``(H, W)``;
- files are decoded by :mod:`racam.data.images` (every format Pillow opens, EXIF orientation
  applied, racam's size limit; :func:`read_image`, :func:`image_size`) and masks read by
  :mod:`racam.data.masks` (:func:`read_mask`; both re-exported here);
- images are resized with PIL's bilinear filter (antialiased when shrinking) and scaled to
  ``[0, 1]`` by their real range: 8-bit images (every PIL mode) by 255, 16-bit ones by 65535,
  float ones by their range (:mod:`racam.data.images`); masks are resized with nearest
  neighbour (pixel-centre convention, torch ``mode="nearest-exact"``, the same as PIL's
  ``NEAREST``), so they stay binary;
- a mask pixel is *defect* as :mod:`racam.data.masks` reads it (one channel: nonzero; colours:
  any nonzero channel; alpha varying: not transparent); an image is defective when its mask has
  any defect pixel.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset

from racam.data.decoded import decoded, file_id
from racam.data.images import (
    CHANNELS_INFO,
    HIGH_DEPTH_MODES,
    IMAGE_SUFFIXES,
    UINT16_MAX,
    PathLike,
    high_depth_to_unit,
    image_size,
    read_image,
)
from racam.data.masks import read_mask
from racam.data.sample import Sample
from racam.errors import ConfigError, DataError

__all__ = ["HIGH_DEPTH_MODES", "IMAGE_SUFFIXES", "UINT16_MAX", "Record", "RecordDataset",
           "check_size_and_channels", "high_depth_to_unit", "image_size", "image_to_tensor",
           "mask_label", "read_image", "read_image_tensor", "read_mask", "resize_mask"]
_MODES = {1: "L", 3: "RGB"}


def image_to_tensor(img: Image.Image, size: tuple[int, int] | None = None,
                    channels: int | None = None) -> Tensor:
    """PIL image of :func:`read_image` -> float tensor ``(C, H, W)`` in [0, 1], bilinear-resized
    to ``size=(w, h)``. An 8-bit image is divided by 255; a mode ``F`` image (already in [0, 1])
    is kept and, with 3 channels, repeated over three channels. ``channels=None``: the count
    :func:`read_image` was asked for (its ``info``), so a 16-bit image of a 3-channel run gives
    3 channels like its 8-bit neighbours."""
    if channels is None:
        channels = img.info.get(CHANNELS_INFO)
    if size is not None and tuple(img.size) != tuple(size):
        img = img.resize((size[0], size[1]), Image.Resampling.BILINEAR)
    if img.mode == "F":
        unit = np.clip(np.asarray(img, dtype=np.float32), 0.0, 1.0)  # bilinear stays in range
        t = torch.from_numpy(unit.copy())[None]
        return t.expand(channels, -1, -1).clone() if channels and channels > 1 else t
    arr = np.asarray(img, dtype=np.uint8)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    t = torch.from_numpy(arr.copy()).permute(2, 0, 1).float().div_(255.0)
    return t.expand(channels, -1, -1).clone() if channels and t.shape[0] < channels else t


def read_image_tensor(path: PathLike, channels: int = 1,
                      size: tuple[int, int] | None = None) -> Tensor:
    """An image file as a float tensor ``(channels, H, W)`` in [0, 1] at ``size=(w, h)`` (its
    own size when ``None``): :func:`read_image` then :func:`image_to_tensor`."""
    return image_to_tensor(read_image(path, channels), size, channels)


def resize_mask(mask: Tensor | np.ndarray, size: tuple[int, int]) -> Tensor:
    """Nearest-neighbour resize of a bool mask ``(H, W)`` to ``size=(width, height)``."""
    m = torch.as_tensor(mask).bool()
    width, height = size
    if tuple(m.shape[-2:]) == (height, width):
        return m.clone()
    out = F.interpolate(m[None, None].to(torch.uint8), size=(height, width), mode="nearest-exact")
    return out[0, 0].bool()


# ------------------------------------------------------------------------- records

@dataclass
class Record:
    """One image of a dataset, before loading.

    ``group`` is the unit an image belongs to (a KolektorSDD item such as ``"kos01"``; the file
    stem for datasets without units). ``mask_path`` is ``None`` when there is no mask file.
    ``mask_usable=False``: the image's mask is missing or unusable although the dataset has
    masks; it has no true mask and is left out of pixel metrics.
    """

    id: str
    image_path: Path
    mask_path: Path | None
    label: int
    group: str
    mask_usable: bool = True


_LABEL_CACHE: dict[tuple[str, int, int, str], int] = {}


def mask_label(mask_path: Path, image_path: Path) -> int:
    """1 when the mask has a defect pixel, else 0; checks the mask has its image's size.

    Results are cached per process (keyed by path, modification time and file size), so
    building the same dataset for several folds reads each mask once.
    """
    try:
        st = mask_path.stat()
    except OSError:
        raise DataError(f"{mask_path}: mask file not found (for image {image_path})") from None
    key = (str(mask_path), st.st_mtime_ns, st.st_size, str(image_path))
    if key not in _LABEL_CACHE:
        mask = read_mask(mask_path, image_size(image_path), image_path=image_path)
        _LABEL_CACHE[key] = int(mask.any())
    return _LABEL_CACHE[key]


def check_size_and_channels(size: tuple[int, int] | None, channels: int) -> tuple[int, int] | None:
    """Validate the ``size=(width, height)`` and ``channels`` options of a dataset."""
    if channels not in _MODES:
        raise ConfigError(f"channels must be 1 or 3, got {channels}")
    if size is None:
        return None
    if len(size) != 2 or any(int(s) <= 0 for s in size):
        raise ConfigError(f"size must be (width, height) with positive values, got {size}")
    return int(size[0]), int(size[1])


class RecordDataset(Dataset):
    """A map-style dataset over :class:`Record` s, returning :class:`~racam.data.Sample` s.

    ``size=None`` keeps every image at its original size. With ``augment=True`` random
    horizontal and vertical flips are applied jointly to image and mask.

    ``has_masks`` says the dataset has pixel annotations: a defect-free record without a mask
    file then gets an empty mask (instead of ``None``).
    """

    def __init__(self, records: list[Record], size: tuple[int, int] | None, channels: int,
                 augment: bool = False, has_masks: bool = True) -> None:
        self.size = check_size_and_channels(size, channels)
        self.channels = channels
        self.augment = augment
        self.records = records
        self.has_masks = has_masks

    @property
    def labels(self) -> list[int]:
        """Image-level labels (1 = defective) in record order."""
        return [r.label for r in self.records]

    def __len__(self) -> int:
        return len(self.records)

    def without_masks(self) -> RecordDataset:
        """The same images, labels and size with no mask: a view that never opens a mask
        file (what is computed from image labels alone reads its images through it)."""
        records = [dataclasses.replace(r, mask_path=None, mask_usable=False)
                   for r in self.records]
        return RecordDataset(records, self.size, self.channels, augment=self.augment,
                             has_masks=False)

    def true_mask(self, index: int) -> np.ndarray | None:
        """The record's mask at the image's original size (bool ``(H, W)``).

        Empty for a defect-free image without a mask file when ``has_masks``; ``None`` when the
        dataset has no masks or the record's mask is not usable (``mask_usable=False``).
        """
        rec = self.records[index]
        if not rec.mask_usable:
            return None
        if rec.mask_path is not None:
            return read_mask(rec.mask_path, image_size(rec.image_path), image_path=rec.image_path)
        if self.has_masks and rec.label == 0:
            width, height = image_size(rec.image_path)
            return np.zeros((height, width), dtype=bool)
        return None

    def _read(self, rec: Record) -> tuple[Tensor, Tensor | None, tuple[int, int]]:
        """The record's image and mask read from disk and resized, and the original size."""
        img = read_image(rec.image_path, self.channels)
        original: tuple[int, int] = img.size
        size = self.size or original
        image = image_to_tensor(img, size, self.channels)
        mask = None
        if rec.mask_path is not None:
            m = read_mask(rec.mask_path, original, image_path=rec.image_path)
            mask = resize_mask(m, size)
        elif self.has_masks and rec.label == 0 and rec.mask_usable:
            mask = torch.zeros(size[1], size[0], dtype=torch.bool)
        return image, mask, original

    def __getitem__(self, index: int) -> Sample:
        rec = self.records[index]
        key = ("record", file_id(rec.image_path), file_id(rec.mask_path), self.size,
               self.channels, self.has_masks, rec.label, rec.mask_usable)
        image, mask, original = decoded(key, lambda: self._read(rec))  # read once per process
        if self.augment:
            from racam.data.transforms import random_flips

            image, mask = random_flips(image, mask)
        return Sample(image=image, label=rec.label, id=rec.id, original_size=original,
                      mask=mask, image_path=str(rec.image_path),
                      mask_path=None if rec.mask_path is None else str(rec.mask_path),
                      extra={"group": rec.group})

    def __repr__(self) -> str:
        n, d = len(self), sum(self.labels)
        return (f"{type(self).__name__}({n} images, {d} defective, size={self.size}, "
                f"channels={self.channels}, augment={self.augment})")
