"""Segmentation quality (paper Table III; docs/protocol.md, "Metrics"): defect IoU and mIoU."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from racam import distributed
from racam.evaluation.metrics import Counts, SegmentationMeter, confusion_counts
from racam.pseudo.heatmaps import to_original_size
from racam.segmentation.mask_cut import cut_mask
from racam.segmentation.probability import defect_probability


@torch.no_grad()
def evaluate_segmentation(model: nn.Module, dataset: Dataset, *, batch_size: int = 4,
                          device: torch.device | str = "cpu", keep: tuple[int, ...] = (),
                          bf16: bool = False, cut: str = "half") -> dict[str, Any]:
    """Predict every image, upsample the defect probability to the original size, cut it into
    a mask by ``cut`` (:mod:`racam.segmentation.mask_cut`; ``half``: p > 0.5). Images whose
    record has ``mask_usable=False`` are left out.

    ``bf16`` runs the network under bfloat16 autocast on a CPU (the CPU recipe trains that way).
    Under ``torchrun`` every rank calls this and predicts 1/N of the images (whole batches of
    the single-process run); every rank returns the full result.

    Returns ``{"summary": ..., "counts": Counts, "per_image": [(image id, Counts)],
    "examples": {index: mask}}`` (``per_image`` in dataset order, for the bootstrap).
    """
    model.eval()
    cpu_bf16 = bf16 and torch.device(device).type == "cpu"
    n = len(dataset)  # type: ignore[arg-type]  # torch's Dataset type has no __len__

    def scored(indices: list[int]) -> list[tuple[str, Counts | None, Tensor | None]]:
        """(id, counts, kept mask) of each of ``indices``, batch by batch."""
        out: list[tuple[str, Counts | None, Tensor | None]] = []
        for start in range(0, len(indices), batch_size):
            idx = indices[start:start + batch_size]
            samples = [dataset[i] for i in idx]
            images = torch.stack([s.image for s in samples]).to(device)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cpu_bf16):
                logits = model(images)
            prob = defect_probability(logits).cpu()
            for i, s, p in zip(idx, samples, prob):
                pred = cut_mask(to_original_size(p[None], s.original_size)[0], cut)
                true_np = dataset.true_mask(i)  # type: ignore[attr-defined]  # racam datasets have .true_mask
                if true_np is None and not getattr(dataset.records[i], "mask_usable", True):  # type: ignore[attr-defined]  # racam datasets have .records
                    out.append((s.id, None, None))  # left out of pixel metrics (data.audit)
                    continue
                true = torch.from_numpy(true_np)
                counts = Counts(*confusion_counts(pred[None], true[None])[0].tolist())
                out.append((s.id, counts, pred if i in keep else None))
        return out

    meter = SegmentationMeter()
    examples = {}
    rows = distributed.sharded_map(scored, range(n), batch_size)
    for i, (sid, counts, pred) in enumerate(rows):
        if counts is None:
            continue
        meter.add(counts, sid)
        if pred is not None:
            examples[i] = pred
    return {"summary": meter.summary(), "counts": meter.total, "per_image": meter.per_image,
            "examples": examples}
