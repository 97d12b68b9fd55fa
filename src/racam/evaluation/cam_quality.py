"""CAM quality on labelled test images (docs/protocol.md, "Metrics"): paper and deployment view.

- *paper view*: defective test images only; TP/FP/FN summed over all their pixels (micro).
- *deployment view*: all test images; an image the classifier calls defect-free
  (``prob < threshold``, ``classifier.threshold``, 0.5 by default) gets an empty mask.

Maps are thresholded with Otsu at each image's original size and compared with the true mask
at that size. Under ``torchrun`` the images are split across ranks (:mod:`racam.distributed`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import Dataset

from racam import distributed
from racam.evaluation.metrics import Counts, SegmentationMeter, confusion_counts
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


def _counts(pred: Tensor, true: Tensor) -> Counts:
    return Counts(*confusion_counts(pred[None], true[None])[0].tolist())


def evaluate_cam(cam: CamFn, dataset: Dataset, probs: Sequence[float] | Tensor | None = None, *,
                 batch_size: int = 4, device: torch.device | str = "cpu",
                 keep: Sequence[int] = (), progress: bool = False,
                 threshold: float = 0.5) -> dict[str, Any]:
    """Score a heat-map method on ``dataset``; ``probs`` are the classifier's defect probabilities
    (an image is called defective at ``prob >= threshold``).

    Returns ``{"paper": summary, "deployment": summary or None, "examples": {index: (map, mask)}}``
    where summaries come from :meth:`SegmentationMeter.summary` and ``examples`` holds the maps
    of the indices listed in ``keep`` (for figures); also ``paper_counts`` /
    ``deployment_counts`` (the micro totals) and ``paper_per_image``, the ``(image id, Counts)``
    of every defective image (paper view; for the paired bootstrap).

    Under ``torchrun`` every rank calls this and computes the heat maps of 1/N of the images
    (whole batches of the single-process run, :func:`racam.distributed.sharded_map`); every
    rank returns the full result, equal to the single-process one.
    """
    labels = list(dataset.labels)  # type: ignore[attr-defined]  # racam datasets have .labels
    predicted = None if probs is None else [float(p) >= threshold for p in probs]
    todo = [i for i, lab in enumerate(labels) if lab == 1 or (predicted and predicted[i])]
    keep_set = set(keep)
    progress = progress and distributed.is_main()

    def scored(indices: list[int]) -> list[tuple[str, Counts | None, Counts | None, Any]]:
        """(id, paper counts, deployment counts, kept example) of each of ``indices``."""
        out: list[tuple[str, Counts | None, Counts | None, Any]] = []
        it = iter_heatmaps(cam, dataset, indices, batch_size=batch_size, device=device)
        if progress:
            from tqdm import tqdm
            it = tqdm(it, total=len(indices), desc="heat maps", leave=False)
        for i, sample, heat, mask in it:
            true = _true_mask(dataset, i)
            if true is None:  # left out of pixel metrics (racam.data.audit); keeps the order
                out.append((sample.id, None, None, None))
                continue
            paper = _counts(mask, true) if labels[i] == 1 else None
            deploy = None
            if predicted is not None:
                deploy = _counts(mask if predicted[i] else torch.zeros_like(mask), true)
            out.append((sample.id, paper, deploy, (heat, mask) if i in keep_set else None))
        return out

    paper, deploy = SegmentationMeter(), SegmentationMeter()
    examples: dict[int, tuple[Tensor, Tensor]] = {}
    for i, (sid, p, d, example) in zip(todo, distributed.sharded_map(scored, todo, batch_size)):
        if p is not None:
            paper.add(p, sid)
        if d is not None:
            deploy.add(d, sid)
        if example is not None:
            examples[i] = example
    if predicted is not None:
        done = set(todo)
        rest = [i for i in range(len(labels)) if i not in done]

        def empty(indices: list[int]) -> list[Counts]:
            """Defect-free and called defect-free: an empty mask against the true mask."""
            return [_counts(torch.zeros_like(t), t)
                    for t in (_true_mask(dataset, i) for i in indices) if t is not None]

        for c in distributed.sharded_map(empty, rest):
            deploy.add(c, str(len(deploy.per_image)))
    return {"paper": paper.summary(),
            "deployment": deploy.summary() if predicted is not None else None,
            "paper_counts": paper.total, "deployment_counts": deploy.total if predicted else None,
            "paper_per_image": list(paper.per_image),
            "examples": examples}
