"""The one sample type every racam dataset returns."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor


@dataclass
class Sample:
    """One image with its image-level label and optional pixel mask.

    Attributes:
        image: float tensor ``(C, H, W)`` in ``[0, 1]``, resized to the configured size
            (C = 1 for grayscale, 3 for RGB).
        label: 1 for defective, 0 for defect-free.
        id: stable identifier, e.g. ``"kos01/Part5"`` or a file stem.
        original_size: ``(width, height)`` of the image file before resizing.
        mask: bool tensor ``(H, W)`` at the configured size (nearest-neighbour resize),
            or ``None`` when the dataset has no masks.
        image_path: path of the image file, for reports and error messages.
        mask_path: path of the mask file, or ``None``.
        ignore: bool tensor ``(H, W)`` of pixels that training leaves out (a pseudo-label's
            uncertain band), or ``None`` for none.
    """

    image: Tensor
    label: int
    id: str
    original_size: tuple[int, int]
    mask: Tensor | None = None
    image_path: str = ""
    mask_path: str | None = None
    extra: dict = field(default_factory=dict)
    ignore: Tensor | None = None


@dataclass
class Batch:
    """A collated list of :class:`Sample` (see :func:`collate_samples`)."""

    images: Tensor  # (B, C, H, W)
    labels: Tensor  # (B,) long
    ids: list[str]
    original_sizes: list[tuple[int, int]]
    masks: Tensor | None  # (B, H, W) bool, None when any sample lacks a mask
    image_paths: list[str]
    mask_paths: list[str | None]
    ignore: Tensor | None = None  # (B, H, W) bool, None when no sample has an ignore mask

    def to(self, device: torch.device | str) -> Batch:
        """Move the tensors to ``device``."""
        return Batch(
            self.images.to(device),
            self.labels.to(device),
            self.ids,
            self.original_sizes,
            None if self.masks is None else self.masks.to(device),
            self.image_paths,
            self.mask_paths,
            None if self.ignore is None else self.ignore.to(device),
        )


def collate_samples(samples: list[Sample]) -> Batch:
    """Stack samples into a :class:`Batch` (use as a DataLoader ``collate_fn``)."""
    masks = None
    if all(s.mask is not None for s in samples):
        masks = torch.stack([s.mask for s in samples if s.mask is not None])
    ignore = None
    if masks is not None and any(s.ignore is not None for s in samples):
        ignore = torch.stack([torch.zeros_like(m) if s.ignore is None else s.ignore
                              for s, m in zip(samples, masks)])
    return Batch(
        images=torch.stack([s.image for s in samples]),
        labels=torch.tensor([s.label for s in samples], dtype=torch.long),
        ids=[s.id for s in samples],
        original_sizes=[s.original_size for s in samples],
        masks=masks,
        image_paths=[s.image_path for s in samples],
        mask_paths=[s.mask_path for s in samples],
        ignore=ignore,
    )
