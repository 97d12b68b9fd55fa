"""Reading images and masks from disk, resizing them, and the record-backed dataset base class.

Every failure raises :class:`racam.errors.DataError` whose message starts with the offending
file's path and says what is wrong (missing, unreadable, size mismatch, ...).

Conventions:

- sizes are ``(width, height)`` everywhere (as PIL), tensors are ``(C, H, W)`` / ``(H, W)``;
- images are resized with PIL's bilinear filter (antialiased when shrinking) and scaled to
  ``[0, 1]`` by their real range: 8-bit images (every PIL mode) by 255, 16-bit ones by 65535
  (:func:`read_image`); masks are resized with nearest neighbour (pixel-centre convention, torch
  ``mode="nearest-exact"``, the same as PIL's ``NEAREST``), so they stay binary;
- a mask pixel is *defect* when it is nonzero (``np.array(Image.open(p)) > 0``; for a
  multi-channel mask, when any channel is nonzero); an image is defective when its mask has
  any defect pixel.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError
from torch import Tensor
from torch.utils.data import Dataset

from racam.data.sample import Sample
from racam.errors import ConfigError, DataError

PathLike = str | os.PathLike[str]
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
_MODES = {1: "L", 3: "RGB"}


def _open(path: PathLike, what: str) -> Image.Image:
    """Open and fully decode an image file, or raise a DataError naming it."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: {what} file not found")
    try:
        img = Image.open(p)
        img.load()
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise DataError(f"{p}: cannot read {what} file ({exc})") from None
    return img


def image_size(path: PathLike) -> tuple[int, int]:
    """``(width, height)`` of an image file, read from its header only."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: image file not found")
    try:
        with Image.open(p) as img:
            return img.size
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise DataError(f"{p}: cannot read image file ({exc})") from None


def read_image(path: PathLike, channels: int = 1) -> Image.Image:
    """Decode an image file as a PIL image with its true values.

    8-bit images of any mode (``L``, ``P``, ``LA``, ``RGBA``, ``CMYK``, ``1``, ...) come back in
    mode ``L`` (``channels=1``) or ``RGB`` (3), as PIL converts them (alpha dropped, palette
    applied). Images of more than 8 bits come back in mode ``F`` (one channel) holding values
    already scaled to ``[0, 1]`` by their type's real range (:func:`high_depth_to_unit`), so a
    16-bit image is neither clipped nor rounded to 8 bits; :func:`image_to_tensor` repeats that
    channel when ``channels=3``. A file whose values cannot be scaled is a :class:`DataError`.

    Returns the PIL image at its original size (``.size`` is ``(width, height)``); use
    :func:`image_to_tensor` (or :func:`read_image_tensor`) to resize it into a tensor.
    """
    if channels not in _MODES:
        raise ConfigError(f"channels must be 1 or 3, got {channels}")
    img = _open(path, "image")
    if img.mode in HIGH_DEPTH_MODES:
        return high_depth_to_unit(img, path)
    return img if img.mode == _MODES[channels] else img.convert(_MODES[channels])


#: PIL modes with more than 8 bits per pixel (one channel): 16-bit unsigned, 32-bit int, float.
HIGH_DEPTH_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")
#: Largest value of a 16-bit image (its values are divided by it).
UINT16_MAX = 65535


def high_depth_to_unit(img: Image.Image, path: PathLike) -> Image.Image:
    """A mode ``F`` copy of a single-channel image of more than 8 bits, scaled to ``[0, 1]``.

    - 16-bit (``I;16*``): ``value / 65535``;
    - 32-bit integer (``I``, how some decoders give 16-bit files): ``value / 65535``, and values
      outside ``0..65535`` are a :class:`DataError` (their range is unknown);
    - float (``F``): kept as is; values outside ``[0, 1]`` or not finite are a DataError.
    """
    arr = np.asarray(img)
    if img.mode == "F":
        arr = arr.astype(np.float32)
        if arr.size and (not np.isfinite(arr).all() or arr.min() < 0 or arr.max() > 1):
            raise DataError(f"{path}: float image with values outside [0, 1] "
                            f"(min {np.nanmin(arr):g}, max {np.nanmax(arr):g}); scale it to "
                            "[0, 1] or save it as 8- or 16-bit")
        unit = arr
    else:
        wide = arr.astype(np.int64)
        if wide.size and (wide.min() < 0 or wide.max() > UINT16_MAX):
            raise DataError(f"{path}: 32-bit integer image with values outside 0..{UINT16_MAX} "
                            f"(min {wide.min()}, max {wide.max()}); save it as 8- or 16-bit")
        unit = (wide.astype(np.float64) / UINT16_MAX).astype(np.float32)
    return Image.fromarray(np.ascontiguousarray(unit), mode="F")


def read_mask(path: PathLike, expected_size: tuple[int, int] | None = None, *,
              image_path: PathLike | None = None) -> np.ndarray:
    """Read a mask file as a bool array ``(H, W)`` at its original size (nonzero = defect).

    ``expected_size = (width, height)``, when given, must equal the mask's size; otherwise a
    :class:`DataError` names the mask (and ``image_path`` when given) and both sizes.
    """
    img = _open(path, "mask")
    if expected_size is not None and tuple(img.size) != tuple(expected_size):
        of = f" but its image {image_path} is" if image_path is not None else ", expected"
        raise DataError(f"{path}: mask is {img.size[0]}x{img.size[1]} (width x height){of} "
                        f"{expected_size[0]}x{expected_size[1]}")
    arr = np.asarray(img)
    return np.asarray(arr.any(axis=-1) if arr.ndim == 3 else arr > 0)


def image_to_tensor(img: Image.Image, size: tuple[int, int] | None = None,
                    channels: int | None = None) -> Tensor:
    """PIL image of :func:`read_image` -> float tensor ``(C, H, W)`` in [0, 1], bilinear-resized
    to ``size=(w, h)``. An 8-bit image is divided by 255; a mode ``F`` image (already in [0, 1])
    is kept and, with ``channels=3``, repeated over three channels."""
    if size is not None and tuple(img.size) != tuple(size):
        img = img.resize((size[0], size[1]), Image.Resampling.BILINEAR)
    if img.mode == "F":
        unit = np.clip(np.asarray(img, dtype=np.float32), 0.0, 1.0)  # bilinear stays in range
        t = torch.from_numpy(unit.copy())[None]
        return t.expand(channels, -1, -1).clone() if channels and channels > 1 else t
    arr = np.asarray(img, dtype=np.uint8)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).float().div_(255.0)


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

    def __getitem__(self, index: int) -> Sample:
        rec = self.records[index]
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
