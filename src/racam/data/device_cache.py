"""A training set decoded once into tensors on the training device, batches drawn there.

``classifier.device_cache`` / ``segmentation.device_cache``: instead of a DataLoader reading,
resizing and collating images on the host at every step, :meth:`DeviceCache.build` decodes the
dataset once (without its augmentation) into one ``uint8`` tensor ``(N, c, H, W)`` on the device
(``c = 1`` when a 3-channel image is grey repeated three times: the channels are expanded per
batch), with the masks and ignore bands as ``bool (N, H, W)``. A batch is then an index into
that tensor plus flips done as tensor ops (:meth:`DeviceCache.gather`, :meth:`DeviceCache.crops`)
- no host work or host sync per step. KolektorSDD's training images of one fold at 512 x 1408 are
about 190 MB this way.

Sampling keeps the loader path's semantics: the same epoch sampler gives the image order
(:meth:`DeviceCache.epoch_batches`, one host-to-device copy of the order per epoch) and each
drawn image is flipped left-right and up-down with probability 1/2 each when the dataset
augments (its own ``augment`` flag). The flips come from a device generator, so they are
distributed as, not bitwise equal to, the loader path's.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from racam import distributed
from racam.data.sample import Batch, collate_samples
from racam.errors import DataError


@dataclass
class DeviceBatch:
    """A batch drawn on the device: ``images (B, C, H, W)`` float in [0, 1], ``labels (B,)``
    long, ``masks``/``ignore`` ``(B, H, W)`` bool or ``None``."""

    images: Tensor
    labels: Tensor
    masks: Tensor | None = None
    ignore: Tensor | None = None


def _wrapped(dataset: object) -> Iterator[object]:
    """``dataset`` and the datasets it wraps (``Subset.dataset``, ``.base``)."""
    seen: set[int] = set()
    node: object | None = dataset
    while node is not None and id(node) not in seen:
        seen.add(id(node))
        yield node
        inner = getattr(node, "dataset", None)  # not `or`: an empty dataset is falsy
        node = inner if inner is not None else getattr(node, "base", None)


def augments(dataset: Dataset) -> bool:
    """Whether ``dataset`` (or one it wraps) flips its samples (``augment=True``)."""
    return any(bool(getattr(d, "augment", False)) for d in _wrapped(dataset))


@contextmanager
def without_augmentation(dataset: Dataset) -> Iterator[Dataset]:
    """``dataset`` with every ``augment`` flag along its wrappers off while the block runs."""
    saved = [(d, d.augment) for d in _wrapped(dataset) if hasattr(d, "augment")]
    try:
        for d, _ in saved:
            d.augment = False
        yield dataset
    finally:
        for d, flag in saved:
            d.augment = flag


def flip(x: Tensor, flips: Tensor) -> Tensor:
    """``x (B, ..., H, W)`` with sample ``b`` flipped left-right where ``flips[b, 0]`` and
    up-down where ``flips[b, 1]`` (bool ``(B, 2)``); no host sync."""
    shape = (-1,) + (1,) * (x.dim() - 1)
    x = torch.where(flips[:, 0].view(shape), x.flip(-1), x)
    return torch.where(flips[:, 1].view(shape), x.flip(-2), x)


def rank_part(n: int) -> slice:
    """This rank's consecutive share of a global batch of ``n`` draws (as
    :class:`racam.training.RankBatchSampler`: ``numpy.array_split``)."""
    world, rank = distributed.world_size(), distributed.rank()
    base, extra = divmod(n, world)
    start = rank * base + min(rank, extra)
    return slice(start, start + base + (rank < extra))


class DeviceCache:
    """Images, labels, masks and ignore bands of a dataset as device tensors (see module).

    Args:
        images: ``(N, c, H, W)`` ``uint8`` (value / 255 is the image) or float in [0, 1].
        labels: ``(N,)`` long.
        masks: ``(N, H, W)`` bool, or ``None``.
        ignore: ``(N, H, W)`` bool, or ``None``.
        channels: channels of a batch (``c`` is 1 or ``channels``; 1 is expanded).
        augment: flip drawn images (the dataset's own augmentation).
    """

    def __init__(self, images: Tensor, labels: Tensor, masks: Tensor | None,
                 ignore: Tensor | None, channels: int, augment: bool) -> None:
        self.images, self.labels = images, labels
        self.masks, self.ignore = masks, ignore
        self.channels, self.augment = int(channels), bool(augment)

    @classmethod
    def build(cls, dataset: Dataset, device: torch.device, *, masks: bool = False,
              num_workers: int = 0, batch_size: int = 16) -> DeviceCache:
        """Decode ``dataset`` once (its augmentation off) onto ``device``.

        ``masks=True`` requires a mask for every image (:class:`DataError` naming the first
        image without one) and keeps the ignore bands. Images must share one size.
        """
        parts: list[Tensor] = []
        labels: list[Tensor] = []
        mask_parts: list[Tensor] = []
        ignore_parts: list[Tensor | None] = []
        exact, grey = True, True
        with without_augmentation(dataset):
            loader = DataLoader(dataset, batch_size=batch_size, shuffle=False,
                                collate_fn=collate_samples, num_workers=num_workers)
            for batch in loader:
                assert isinstance(batch, Batch)
                x = batch.images
                if masks:
                    if batch.masks is None:
                        raise DataError("segmentation training needs a mask for every image; "
                                        f"missing for one of {batch.ids}")
                    mask_parts.append(batch.masks)
                    ignore_parts.append(batch.ignore)
                q = (x * 255).round()
                exact = exact and torch.equal(q / 255, x)
                grey = grey and bool((x == x[:, :1]).all())
                parts.append(q.to(torch.uint8) if exact else x)
                labels.append(batch.labels)
        if not parts:
            raise DataError("cannot cache an empty training set")
        channels = parts[0].shape[1]
        if not exact:  # not 8-bit values: keep float32 (4x the memory)
            parts = [p.float() / 255 if p.dtype == torch.uint8 else p for p in parts]
        images = torch.cat([p[:, :1] if grey else p for p in parts]).to(device)
        mask = torch.cat(mask_parts).to(device) if masks else None
        ignore = None
        if masks and any(i is not None for i in ignore_parts):
            ignore = torch.cat([torch.zeros_like(m) if i is None else i
                                for i, m in zip(ignore_parts, mask_parts)]).to(device)
        return cls(images, torch.cat(labels).to(device), mask, ignore, channels,
                   augments(dataset))

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def device(self) -> torch.device:
        return self.images.device

    @property
    def nbytes(self) -> int:
        """Bytes held on the device."""
        return sum(t.numel() * t.element_size() for t in
                   (self.images, self.labels, self.masks, self.ignore) if t is not None)

    def _float(self, x: Tensor) -> Tensor:
        """Stored pixels -> float32 ``(B, C, h, w)`` in [0, 1] (grey expanded)."""
        x = x.float().div_(255.0) if x.dtype == torch.uint8 else x.float()
        return x.expand(-1, self.channels, -1, -1).contiguous() if x.shape[1] != self.channels \
            else x

    def gather(self, index: Tensor, flips: Tensor | None = None) -> DeviceBatch:
        """Whole images ``index`` (long, on the device), flipped per ``flips (B, 2)``."""
        x = self._float(self.images[index])
        m = None if self.masks is None else self.masks[index]
        ign = None if self.ignore is None else self.ignore[index]
        if flips is not None:
            x = flip(x, flips)
            m = None if m is None else flip(m, flips)
            ign = None if ign is None else flip(ign, flips)
        return DeviceBatch(x, self.labels[index], m, ign)

    def crops(self, index: Tensor, top: Tensor, left: Tensor, size: tuple[int, int],
              flips: Tensor | None = None) -> DeviceBatch:
        """Windows ``size = (height, width)`` at ``(top, left)`` of images ``index`` (all long
        ``(B,)`` on the device; windows inside the stored images), flipped per ``flips``."""
        h, w = size
        dev = self.device
        rows = (top[:, None] + torch.arange(h, device=dev))[:, None, :, None]
        cols = (left[:, None] + torch.arange(w, device=dev))[:, None, None, :]
        b = index[:, None, None, None]
        chans = torch.arange(self.images.shape[1], device=dev)[None, :, None, None]
        x = self._float(self.images[b, chans, rows, cols])
        m = None if self.masks is None else self.masks[b[:, 0], rows[:, 0], cols[:, 0]]
        ign = None if self.ignore is None else self.ignore[b[:, 0], rows[:, 0], cols[:, 0]]
        if flips is not None:
            x = flip(x, flips)
            m = None if m is None else flip(m, flips)
            ign = None if ign is None else flip(ign, flips)
        return DeviceBatch(x, self.labels[index], m, ign)

    def epoch_batches(self, order: Sequence[int], batch_size: int, drop_last: bool,
                      generator: torch.Generator | None) -> Iterator[DeviceBatch]:
        """Batches of ``batch_size`` draws of ``order`` (an epoch sampler's indices; this
        rank's part of each under DDP), flipped when the dataset augments (draws from
        ``generator``, a generator on the device)."""
        idx = torch.as_tensor(np.asarray(list(order), dtype=np.int64)).to(self.device)
        n = int(idx.numel())
        flips = None
        if self.augment:
            flips = torch.rand(n, 2, generator=generator, device=self.device) < 0.5
        stop = n - n % batch_size if drop_last else n
        for s in range(0, stop, batch_size):
            part = rank_part(min(batch_size, n - s))
            sel = slice(s + part.start, s + part.stop)
            yield self.gather(idx[sel], None if flips is None else flips[sel])

    def in_order(self, batch_size: int) -> Iterator[DeviceBatch]:
        """Every image once, in dataset order, unflipped (validation)."""
        for s in range(0, len(self), batch_size):
            yield self.gather(torch.arange(s, min(s + batch_size, len(self)),
                                           device=self.device))


def device_generator(device: torch.device, seed: int) -> torch.Generator:
    """A generator on ``device`` seeded with ``seed``."""
    return torch.Generator(device=device).manual_seed(int(seed))
