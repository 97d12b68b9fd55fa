"""How much of the defective training images a classifier's pseudo-labels mark: a label-free
sign of a weak classifier (``classifier.candidates``).

``A = mean_i |M_i| / |I_i|`` over the defective training images ``i``, with ``M_i`` the
pseudo-label mask of image ``i`` at its original size and ``|I_i|`` its pixel count. It needs the
image-level labels only. A classifier that did not learn where the defects are spreads its heat
maps, and Otsu then marks more of the image: on KolektorSDD at CPU scale the two weakest of nine
classifiers marked 1.7-2.0 % of the image against 0.7-1.1 % for the others, and ``A`` ranked the
nine classifiers' pseudo-label IoU with Spearman -0.83. A check written down before nine new
classifiers were trained (``experiments/pseudo_area_check.py``) found Spearman -0.75 on them, and
the smallest ``A`` per fold gave pseudo-labels of 27.32 % IoU against 25.31 on average
(``docs/results.md``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor
from torch.utils.data import Dataset

from racam.data.sample import Sample
from racam.pseudo.heatmaps import CamFn
from racam.pseudo.labels import iter_pseudo_masks


def pseudo_label_area(cam: CamFn, dataset: Dataset, indices: Sequence[int], *,
                      threshold: str = "otsu", batch_size: int = 4,
                      device: torch.device | str = "cpu",
                      refine: Callable[[Tensor, Tensor], Tensor] | None = None,
                      keep: Callable[[Sample, Tensor, Tensor | None], None] | None = None
                      ) -> float:
    """Mean share of image pixels (0-1) that the pseudo-labels of ``indices`` mark (``A`` of the
    module docstring); the arguments as :func:`racam.pseudo.labels.iter_pseudo_masks`.
    ``keep(sample, mask, ignore band)`` receives each mask (the pipeline keeps them for the
    pseudo-label stage: :mod:`racam.pseudo.stash`)."""
    if not len(indices):
        raise ValueError("pseudo_label_area: no images to score")
    shares = []
    for sample, mask, ignore in iter_pseudo_masks(cam, dataset, indices, threshold=threshold,
                                                  batch_size=batch_size, device=device,
                                                  refine=refine):
        shares.append(int(mask.sum()) / mask.numel())
        if keep is not None:
            keep(sample, mask, ignore)
    return sum(shares) / len(shares)
