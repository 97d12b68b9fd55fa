"""Heat maps of dataset images at original size, and their Otsu masks (docs/protocol.md)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset

from racam.data.sample import Sample
from racam.pseudo.otsu import otsu_threshold

CamFn = Callable[..., Tensor]


def to_original_size(maps: Tensor, size: tuple[int, int]) -> Tensor:
    """Bilinear resize of ``(B, h, w)`` maps in [0, 1] to ``size = (width, height)``."""
    width, height = size
    out = F.interpolate(maps[:, None].float(), size=(height, width), mode="bilinear",
                        align_corners=False)[:, 0]
    return out.clamp_(0.0, 1.0)


def iter_heatmaps(cam: CamFn, dataset: Dataset, indices: Sequence[int], *, batch_size: int = 4,
                  device: torch.device | str = "cpu", target: int = 1,
                  refine: Callable[[Tensor, Tensor], Tensor] | None = None
                  ) -> Iterator[tuple[int, Sample, Tensor, Tensor]]:
    """Yield ``(index, sample, heat map, mask)`` for each of ``indices``.

    The map is computed at the model's input size, resized to the image's original size
    (bilinear), and thresholded there with Otsu: ``mask = map > otsu_threshold(map)``.
    ``refine(maps, images)`` (e.g. :func:`racam.pseudo.guided.guided_refiner`) changes the maps
    at the model's input size, before the resize.
    Maps and masks are returned on the CPU.
    """
    indices = list(indices)
    for start in range(0, len(indices), batch_size):
        chunk = indices[start:start + batch_size]
        samples: list[Sample] = [dataset[i] for i in chunk]
        images = torch.stack([s.image for s in samples]).to(device)
        maps = cam(images, targets=target).detach().float()
        if refine is not None:
            maps = refine(maps, images)
        maps = maps.cpu()
        for i, s, m in zip(chunk, samples, maps):
            big = to_original_size(m[None], s.original_size)
            thr = otsu_threshold(big)
            yield i, s, big[0], big[0] > thr[0]
