"""CAM quality on labelled test images (PROTOCOL §5): the paper's view and the deployment view.

- *paper view*: defective test images only; TP/FP/FN summed over all their pixels (micro).
- *deployment view*: all test images; an image the classifier calls defect-free
  (``prob < 0.5``) gets an empty mask.

Maps are thresholded with Otsu at each image's original size and compared with the true mask
at that size.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import Dataset

from racam.evaluation.metrics import SegmentationMeter
from racam.pseudo.heatmaps import CamFn, iter_heatmaps


def _true_mask(dataset: Dataset, index: int) -> Tensor | None:
    """The true mask; ``None`` for an image left out of pixel metrics (``mask_usable``)."""
    mask = dataset.true_mask(index)  # type: ignore[attr-defined]  # racam datasets have .true_mask
    if mask is None:
        rec = dataset.records[index]  # type: ignore[attr-defined]  # racam datasets have .records
        if not getattr(rec, "mask_usable", True):
            return None
        from racam.errors import DataError
        raise DataError(f"{rec.image_path}: no mask, cannot evaluate heat maps on this dataset")
    return torch.from_numpy(mask)


def evaluate_cam(cam: CamFn, dataset: Dataset, probs: Sequence[float] | Tensor | None = None, *,
                 batch_size: int = 4, device: torch.device | str = "cpu",
                 keep: Sequence[int] = (), progress: bool = False) -> dict[str, Any]:
    """Score a heat-map method on ``dataset``; ``probs`` are the classifier's defect probabilities.

    Returns ``{"paper": summary, "deployment": summary or None, "examples": {index: (map, mask)}}``
    where summaries come from :meth:`SegmentationMeter.summary` and ``examples`` holds the maps
    of the indices listed in ``keep`` (for figures); also ``paper_counts`` /
    ``deployment_counts`` (the micro totals) and ``paper_per_image``, the ``(image id, Counts)``
    of every defective image (paper view; for the paired bootstrap).
    """
    labels = list(dataset.labels)  # type: ignore[attr-defined]  # racam datasets have .labels
    predicted = None if probs is None else [float(p) >= 0.5 for p in probs]
    todo = [i for i, lab in enumerate(labels) if lab == 1 or (predicted and predicted[i])]
    paper, deploy = SegmentationMeter(), SegmentationMeter()
    examples: dict[int, tuple[Tensor, Tensor]] = {}
    keep_set = set(keep)
    it = iter_heatmaps(cam, dataset, todo, batch_size=batch_size, device=device)
    if progress:
        from tqdm import tqdm
        it = tqdm(it, total=len(todo), desc="heat maps", leave=False)
    for i, sample, heat, mask in it:
        true = _true_mask(dataset, i)
        if true is None:
            continue
        if labels[i] == 1:
            paper.update(mask[None], true[None], ids=[sample.id])
        if predicted is not None:
            shown = mask if predicted[i] else torch.zeros_like(mask)
            deploy.update(shown[None], true[None], ids=[sample.id])
        if i in keep_set:
            examples[i] = (heat, mask)
    if predicted is not None:
        done = set(todo)
        for i in range(len(labels)):
            if i not in done:  # defect-free and called defect-free: empty mask
                true = _true_mask(dataset, i)
                if true is None:
                    continue
                deploy.update(torch.zeros_like(true)[None], true[None])
    return {"paper": paper.summary(),
            "deployment": deploy.summary() if predicted is not None else None,
            "paper_counts": paper.total, "deployment_counts": deploy.total if predicted else None,
            "paper_per_image": list(paper.per_image),
            "examples": examples}

