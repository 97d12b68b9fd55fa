"""Defect-centred random crops drawn on the device from a :class:`DeviceCache`.

The same draws as :class:`racam.segmentation.crops.DefectCropDataset`, vectorised over an
epoch: a share ``defect_fraction`` of the draws takes a random defective image (label 1) and
centres the window on one of its defect pixels (uniformly drawn, jittered by up to a quarter
of the crop), the others take a random image and a uniform window; windows are clamped inside
the image (a smaller image is zero-padded at the bottom/right once, when the cache is made),
then flipped left-right and up-down with probability 1/2 each. A defective image with an empty
mask gets a uniform window. The draws of epoch ``e`` come from a device generator seeded from
``(seed, e)``: reproducible, distributed as the dataset's draws but not bitwise equal to them.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch import Tensor
from torch.nn import functional as F

from racam.data.device_cache import DeviceBatch, DeviceCache, device_generator, rank_part
from racam.errors import ConfigError


def _pad(cache: DeviceCache, height: int, width: int) -> DeviceCache:
    """``cache`` zero-padded at the bottom/right to at least ``height x width``."""
    h, w = cache.images.shape[-2:]
    dh, dw = max(height - h, 0), max(width - w, 0)
    if not dh and not dw:
        return cache
    pad = (0, dw, 0, dh)
    masks = None if cache.masks is None else F.pad(cache.masks.to(torch.uint8), pad).bool()
    ignore = None if cache.ignore is None else F.pad(cache.ignore.to(torch.uint8), pad).bool()
    return DeviceCache(F.pad(cache.images, pad), cache.labels, masks, ignore, cache.channels,
                       cache.augment)


class DeviceCropSampler:
    """``num_samples`` crops ``crop = (width, height)`` per epoch of a masked cache (see module).

    ``height``/``width`` of the stored images bound the windows before padding, as in
    :class:`~racam.segmentation.crops.DefectCropDataset`.
    """

    def __init__(self, cache: DeviceCache, crop: tuple[int, int], defect_fraction: float,
                 num_samples: int, seed: int = 0, centres: str = "defective_images") -> None:
        if not 0.0 <= defect_fraction <= 1.0:
            raise ConfigError(f"segmentation.defect_crop_fraction must be in [0, 1], "
                              f"got {defect_fraction}")
        if min(crop) < 1:
            raise ConfigError(f"segmentation.crop must be positive, got {crop}")
        if cache.masks is None:
            raise ConfigError("crops need a cache with masks")
        self.height, self.width = (int(s) for s in cache.images.shape[-2:])
        self.crop = (int(crop[0]), int(crop[1]))
        self.cache = _pad(cache, self.crop[1], self.crop[0])
        self.defect_fraction = float(defect_fraction)
        self.num_samples = int(num_samples)
        self.seed = int(seed)
        dev = cache.device
        positive = cache.labels == 1
        if centres == "defect_pixels":  # as DefectCropDataset: images with a defect pixel
            positive = positive & cache.masks.flatten(1).any(1)
        self.positives = positive.nonzero()[:, 0]
        coords = cache.masks[self.positives].nonzero()  # (M, 3): positive #, row, col (once)
        self.coords = coords if len(coords) else torch.zeros(1, 3, dtype=torch.long, device=dev)
        self.counts = torch.bincount(coords[:, 0], minlength=len(self.positives))
        self.offsets = self.counts.cumsum(0) - self.counts

    def draws(self, epoch: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """``(index, top, left, flips)`` of every draw of ``epoch``, on the device."""
        dev = self.cache.device
        s = np.random.SeedSequence([self.seed, int(epoch)]).generate_state(1)
        g = device_generator(dev, int(s[0]))
        n, cw, ch = self.num_samples, self.crop[0], self.crop[1]
        n_pos = len(self.positives)

        def uniform(high: int) -> Tensor:
            return torch.randint(0, max(high, 1), (n,), generator=g, device=dev)

        centred = torch.rand(n, generator=g, device=dev) < self.defect_fraction
        if n_pos == 0:
            centred = torch.zeros_like(centred)
        pick = uniform(n_pos)
        index = torch.where(centred, self.positives[pick] if n_pos else pick,
                            uniform(len(self.cache)))
        count = self.counts[pick] if n_pos else torch.zeros_like(pick)
        has = centred & (count > 0)
        k = self.offsets[pick] + (torch.rand(n, generator=g, device=dev) * count).long() \
            if n_pos else pick
        k = torch.minimum(k, torch.as_tensor(len(self.coords) - 1, device=dev))
        r, c = self.coords[k, 1], self.coords[k, 2]
        jr = torch.randint(-(ch // 4), ch // 4 + 1, (n,), generator=g, device=dev)
        jc = torch.randint(-(cw // 4), cw // 4 + 1, (n,), generator=g, device=dev)
        max_top, max_left = max(self.height - ch, 0), max(self.width - cw, 0)
        top = torch.where(has, r - ch // 2 + jr, uniform(max_top + 1)).clamp(0, max_top)
        left = torch.where(has, c - cw // 2 + jc, uniform(max_left + 1)).clamp(0, max_left)
        flips = torch.rand(n, 2, generator=g, device=dev) < 0.5
        return index, top, left, flips

    def epoch_batches(self, epoch: int, batch_size: int) -> Iterator[DeviceBatch]:
        """The crops of ``epoch`` in batches of ``batch_size`` (incomplete last batch dropped;
        this rank's part of each under DDP)."""
        index, top, left, flips = self.draws(epoch)
        size = (self.crop[1], self.crop[0])
        for s in range(0, self.num_samples - self.num_samples % batch_size, batch_size):
            part = rank_part(batch_size)
            sel = slice(s + part.start, s + part.stop)
            yield self.cache.crops(index[sel], top[sel], left[sel], size, flips[sel])
