"""Where a segmentation network's defect probability map is cut into a mask
(``segmentation.mask_cut``; one place for the rule: scoring, reports, ``predict``, bundles).

- ``half``: ``p > 0.5``, the two-class argmax (the paper's rule; the default).
- ``foreground_otsu``: ``p > max(0.5, t)`` with ``t`` Otsu's threshold of the pixels above 0.5
  of the same image (the second cut of ``cam.pseudo_threshold: otsu2``, applied to the
  network's foreground). It reads no label and only narrows a ``half`` mask; an image with
  fewer than two pixels above 0.5, or all of them of one value (saturated), keeps its
  ``half`` mask. A network copies the width of its
  pseudo-labels while its probability may still peak on the defect (docs/results.md).

Each cut is a function ``threshold(p) -> float`` of one map at the image's size, so a mask is
``p > threshold(p)`` everywhere; ``bundle.json`` records ``half`` as the number 0.5 (older
readers) and any other cut by its name (:func:`bundle_threshold`). Self-training's labels
(``segmentation.self_training``) are cut by the run's cut too; the label-next list and the
report's agreement figure read ``p > 0.5``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from torch import Tensor

from racam.registry import Registry

#: ``name -> threshold(map) -> float`` for one probability map (any shape, values in [0, 1]).
MASK_CUTS: Registry[Callable[[Tensor], float]] = Registry("segmentation mask cut")

HALF = 0.5


@MASK_CUTS.register("half")
def half(p: Tensor) -> float:
    """0.5 for every map."""
    return HALF


@MASK_CUTS.register("foreground_otsu")
def foreground_otsu(p: Tensor) -> float:
    """``max(0.5, Otsu's threshold of p[p > 0.5])``; 0.5 with fewer than two such pixels or
    one value among them (Otsu would return that value and empty the mask)."""
    from racam.pseudo.otsu import otsu_threshold

    fg = p[p > HALF]
    if fg.numel() < 2 or bool(fg.min() == fg.max()):
        return HALF
    return max(HALF, float(otsu_threshold(fg.float().reshape(1, 1, -1))[0]))


def cut_threshold(p: Tensor, cut: str = "half") -> float:
    """The threshold ``cut`` puts on map ``p``."""
    return MASK_CUTS.get(cut)(p)


def cut_mask(p: Tensor, cut: str = "half") -> Tensor:
    """Bool mask ``p > cut_threshold(p, cut)`` (the shape of ``p``)."""
    return p > cut_threshold(p, cut)


def bundle_threshold(cut: str) -> float | str:
    """``MaskRule.threshold`` of ``cut``: 0.5 for ``half``, else its name."""
    MASK_CUTS.get(cut)  # an unknown name: ConfigError naming the cuts
    return HALF if cut == "half" else cut


def threshold_map(p: Tensor, threshold: float | str) -> Tensor:
    """Bool mask of map ``p`` by a ``MaskRule.threshold``: ``p > threshold`` for a number,
    :func:`cut_mask` for a cut's name."""
    if isinstance(threshold, str):
        return cut_mask(p, threshold)
    return p > float(threshold)


def numpy_threshold(p: np.ndarray, threshold: float | str) -> float:
    """The value of a ``MaskRule.threshold`` on a numpy map: the number, or the named cut's
    threshold of ``p`` (the tiled path passes the map at the run's scale, not the image's
    size, so a large image's cut is computed on the map the network drew)."""
    import torch

    if isinstance(threshold, str):
        return cut_threshold(torch.from_numpy(np.ascontiguousarray(p)), threshold)
    return float(threshold)
