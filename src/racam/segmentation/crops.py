"""Defect-centred random crops for segmentation training (the CPU recipe).

Thin defects cover well under 1 % of a KolektorSDD image; whole-image batches give the network
almost no defect pixels per step. Cropping concentrates them: each draw of
:class:`DefectCropDataset` is a ``crop = (width, height)`` window of a training image, and a share
``defect_fraction`` of the draws is centred on a uniformly drawn defect pixel of an image whose
label is 1 (``centres="defective_images"``; an empty mask gets a uniform window) or whose mask
has a defect pixel (``centres="defect_pixels"``: images wholly ignored, as the defective images
without a true mask under ``segmentation.train_masks_rest: ignore``, are left to the uniform
draws); the other draws take a uniformly drawn image and window position. Windows are
clamped inside the image (an image smaller than the window is zero-padded), then flipped
left-right and up-down with probability 1/2 each.

Every draw ``k`` of epoch ``e`` is a pure function of ``(seed, e, k)``, so epochs are
reproducible, a resumed run sees the same crops, and DataLoader workers need no shared state.
Decoded images and masks are kept in memory after their first use (KolektorSDD at half
resolution: about 190 MB for 264 images).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor
from torch.nn import functional as F
from torch.utils.data import Dataset

from racam.data.sample import Sample
from racam.errors import ConfigError, DataError


class DefectCropDataset(Dataset):
    """``num_samples`` random crops per epoch of a dataset of masked :class:`Sample` (see module).

    Args:
        base: dataset of samples with ``mask`` (true masks or pseudo-labels), not augmented.
        crop: ``(width, height)`` of a crop.
        defect_fraction: share of draws centred on a defect pixel, in ``[0, 1]``.
        num_samples: draws per epoch.
        seed: base seed; call :meth:`set_epoch` before each epoch.
        labels: image-level labels of ``base`` (``None``: read ``base.labels``); only images
            labelled 1 are searched for defect pixels.
        centres: ``defective_images`` or ``defect_pixels`` (see the module docstring).
    """

    def __init__(self, base: Dataset, crop: tuple[int, int], defect_fraction: float,
                 num_samples: int, seed: int = 0, labels: list[int] | None = None,
                 centres: str = "defective_images") -> None:
        if not 0.0 <= defect_fraction <= 1.0:
            raise ConfigError(f"segmentation.defect_crop_fraction must be in [0, 1], "
                              f"got {defect_fraction}")
        if min(crop) < 1:
            raise ConfigError(f"segmentation.crop must be positive, got {crop}")
        self.base = base
        self.crop = (int(crop[0]), int(crop[1]))
        self.defect_fraction = float(defect_fraction)
        self.num_samples = int(num_samples)
        self.seed = int(seed)
        self.epoch = 0
        self.labels = list(labels if labels is not None else base.labels)  # type: ignore[attr-defined]  # racam datasets have .labels
        self.n_images = len(base)  # type: ignore[arg-type]  # torch's Dataset type has no __len__
        if self.n_images == 0:
            raise DataError("segmentation training set is empty")
        self._cache: dict[int, tuple[Sample, np.ndarray]] = {}
        self.positives = [i for i, y in enumerate(self.labels) if y == 1]
        if centres == "defect_pixels":
            self.positives = [i for i in self.positives if len(self._load(i)[1])]
        elif centres != "defective_images":
            raise ConfigError(f"segmentation.crop_centres must be defective_images or "
                              f"defect_pixels, got {centres!r}")

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose draws ``__getitem__`` returns."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.num_samples

    def _load(self, index: int) -> tuple[Sample, np.ndarray]:
        """Sample ``index`` of ``base`` and the (row, col) coordinates of its defect pixels."""
        if index not in self._cache:
            sample: Sample = self.base[index]
            if sample.mask is None:
                raise DataError(f"segmentation training needs a mask for every image; missing "
                                f"for {sample.image_path or sample.id}")
            coords = torch.nonzero(sample.mask).numpy().astype(np.int32)
            self._cache[index] = (sample, coords)
        return self._cache[index]

    def __getitem__(self, k: int) -> Sample:
        rng = np.random.default_rng([self.seed, self.epoch, int(k)])
        centred = bool(self.positives) and rng.random() < self.defect_fraction
        index = int(rng.choice(self.positives)) if centred else int(rng.integers(self.n_images))
        sample, coords = self._load(index)
        image, mask = sample.image, sample.mask
        assert mask is not None
        _, h, w = image.shape
        cw, ch = self.crop
        if centred and len(coords):
            r, c = coords[rng.integers(len(coords))]
            top = int(r) - ch // 2 + int(rng.integers(-ch // 4, ch // 4 + 1))
            left = int(c) - cw // 2 + int(rng.integers(-cw // 4, cw // 4 + 1))
        else:
            top = int(rng.integers(0, max(h - ch, 0) + 1))
            left = int(rng.integers(0, max(w - cw, 0) + 1))
        top = min(max(top, 0), max(h - ch, 0))
        left = min(max(left, 0), max(w - cw, 0))
        window = (slice(top, top + ch), slice(left, left + cw))
        img, msk = _pad_to(image[(slice(None), *window)], mask[window], ch, cw)
        ign = None
        if sample.ignore is not None:
            _, ign = _pad_to(image[(slice(None), *window)], sample.ignore[window], ch, cw)
        flips = [d for d in (-1, -2) if rng.random() < 0.5]
        if flips:
            img, msk = img.flip(flips), msk.flip(flips)
            ign = None if ign is None else ign.flip(flips)
        return Sample(image=img.contiguous(), label=sample.label, id=sample.id,
                      original_size=sample.original_size, mask=msk.contiguous(),
                      image_path=sample.image_path, mask_path=sample.mask_path,
                      ignore=None if ign is None else ign.contiguous())


def _pad_to(image: Tensor, mask: Tensor, height: int, width: int) -> tuple[Tensor, Tensor]:
    """Zero-pad ``image (C, h, w)`` and ``mask (h, w)`` at the bottom/right to the crop size."""
    dh, dw = height - image.shape[-2], width - image.shape[-1]
    if dh <= 0 and dw <= 0:
        return image, mask
    pad = (0, max(dw, 0), 0, max(dh, 0))
    return F.pad(image, pad), F.pad(mask.to(torch.uint8), pad).bool()
