"""A label-free check of pseudo-labels: delete what they mark, and the classifier should stop
seeing a defect.

For each defective training image the pixels of its pseudo-label are replaced by a heavily
blurred copy of the image (the defect's texture is gone, the image's colours stay) and the
classifier scores the result. A mask that holds the defect drops p(defect) to the level of a
good image; a random box of the same area (the control) should not. Deletion scores of this
kind rank saliency maps without ground truth (Petsiuk et al. 2018, "RISE"; Fong and Vedaldi
2017, "meaningful perturbations"); here they tell a user without masks whether the masks the
segmentation network will learn cover what the classifier saw, and how tight they are
(``area``). Nothing in racam chooses by it: it is reported with the pseudo-labels.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import Dataset

#: seed of the control boxes' positions (with the image's index)
BOX_SEED = 0


@dataclasses.dataclass(frozen=True)
class DeletionCheck:
    """Means over the defective training images checked (p: the classifier's p(defect))."""

    images: int
    area: float  #: share of an image the pseudo-label marks
    p_image: float  #: p of the image as it is
    p_deleted: float  #: p once the pseudo-label's pixels are blurred away
    p_random_box: float  #: p once a random box of the same area is blurred away

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def blurred(x: Tensor) -> Tensor:
    """A heavily blurred copy of ``x`` (B, C, H, W): a box mean over an eighth of the short side,
    applied twice (edges replicated). The box is applied as a column mean then a row mean (the
    same mean, 2k instead of k squared additions per pixel: 25x faster at 640 x 640)."""
    k = max(3, (min(x.shape[-2:]) // 8) | 1)
    for _ in range(2):
        x = F.pad(x, (k // 2,) * 4, mode="replicate")
        x = F.avg_pool2d(F.avg_pool2d(x, (k, 1), stride=1), (1, k), stride=1)
    return x


def random_box(shape: tuple[int, int], area: float, rng: np.random.Generator) -> Tensor:
    """A bool box of ``shape`` = (H, W) covering about ``area`` of it, with its aspect ratio."""
    h, w = shape
    bh, bw = max(1, round(h * area ** 0.5)), max(1, round(w * area ** 0.5))
    y, x = int(rng.integers(0, h - bh + 1)), int(rng.integers(0, w - bw + 1))
    box = torch.zeros(shape, dtype=torch.bool)
    box[y:y + bh, x:x + bw] = True
    return box


@torch.no_grad()
def _p_defect(model: nn.Module, x: Tensor) -> Tensor:
    return model(x).float().softmax(dim=1)[:, 1].cpu()


def deletion_rows(model: nn.Module, dataset: Dataset, indices: Sequence[int], *,
                  batch_size: int = 4, device: torch.device | str = "cpu"
                  ) -> list[tuple[float, float, float, float]]:
    """``(area, p_image, p_deleted, p_random_box)`` of each of ``indices`` of ``dataset``, whose
    samples carry their pseudo-label as ``mask`` at the image's size
    (:class:`racam.pseudo.labels.PseudoLabelDataset`). The control box of image ``i`` is drawn
    from the seed ``(BOX_SEED, i)``, so rows do not depend on how the images are batched or
    sharded."""
    rows: list[tuple[float, float, float, float]] = []
    dev = torch.device(device)
    for start in range(0, len(indices), batch_size):
        chunk = list(indices[start:start + batch_size])
        samples = [dataset[i] for i in chunk]
        x = torch.stack([s.image for s in samples])
        m = torch.stack([s.mask for s in samples]).bool()
        h, w = m.shape[-2:]
        area = m.float().mean(dim=(1, 2))
        box = torch.stack([random_box((h, w), float(a),
                                      np.random.default_rng([BOX_SEED, i]))
                           for a, i in zip(area, chunk)])
        blur = blurred(x)
        p = [_p_defect(model, v.to(dev)) for v in
             (x, torch.where(m[:, None], blur, x), torch.where(box[:, None], blur, x))]
        rows += [(float(a), float(p0), float(p1), float(p2))
                 for a, p0, p1, p2 in zip(area, *p)]
    return rows


def summarise(rows: Sequence[tuple[float, float, float, float]]) -> DeletionCheck | None:
    """The means of :func:`deletion_rows` (``None`` without rows)."""
    if not rows:
        return None
    a, p0, p1, p2 = np.asarray(rows, dtype=np.float64).mean(axis=0)
    return DeletionCheck(images=len(rows), area=float(a), p_image=float(p0),
                         p_deleted=float(p1), p_random_box=float(p2))
