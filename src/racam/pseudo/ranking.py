"""Which defective training images to label next: a ranking from image labels alone.

An image's score is the disagreement ``1 - IoU`` between its pseudo-label (the classifier's
heat map, thresholded) and the mask the weakly supervised segmentation network draws on it
(``p > 0.5``), both at the image's original size. Where the two weak sources agree, a true mask
would mostly repeat what the network already learns; where they disagree, at least one of them
is wrong on that image, and a true mask settles it for the network (the query-by-committee idea
of active learning, with the two weak sources as the committee; two empty masks agree, IoU 1).
It costs one network pass per image, whose masks the self-training rounds draw anyway.
Ties (common at 1: masks that do not overlap at all) go first to the image the classifier is
least sure is defective (lower ``classifier_prob``: its heat map is the less trustworthy), then
by id, so the order is deterministic. No true mask is read. Images that already learn from
their true mask (``exclude``) are not listed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from racam.data import read_mask
from racam.pseudo.labels import mask_filename

__all__ = ["COLUMNS", "LabelNextRow", "mask_iou", "rank_for_labelling"]

#: Decimals kept of the scores (so that the order and the CSV do not hang on float noise).
DECIMALS = 6


@dataclasses.dataclass(frozen=True)
class LabelNextRow:
    """One row of the list: ``rank`` (1 = label first), the image, its ``score`` and the
    components: ``disagreement`` (``1 - IoU`` of the two masks), ``classifier_prob`` (the
    classifier's defect probability) and the defect pixels of each mask."""

    rank: int
    id: str
    image: str
    score: float
    disagreement: float
    classifier_prob: float
    pseudo_pixels: int
    network_pixels: int

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, v: Mapping[str, Any]) -> LabelNextRow:
        return cls(**{f.name: v[f.name] for f in dataclasses.fields(cls)})


#: The CSV's columns (``fold<k>/label-next.csv``), in order.
COLUMNS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(LabelNextRow))


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Defect IoU of two bool masks of one shape (1 when both are empty)."""
    if a.shape != b.shape:
        raise ValueError(f"masks of shapes {a.shape} and {b.shape} cannot be compared")
    union = int(np.logical_or(a, b).sum())
    return 1.0 if union == 0 else int(np.logical_and(a, b).sum()) / union


def rank_for_labelling(records: list[Any], labels: list[int], pseudo_dir: Path,
                       network_dir: Path, probs: Mapping[str, float],
                       exclude: Collection[str] = ()) -> list[LabelNextRow]:
    """The defective images of ``records`` but ``exclude`` ranked (see the module docstring):
    their masks are read from ``pseudo_dir/masks`` and ``network_dir/masks`` (files of
    :func:`racam.pseudo.labels.mask_filename`), ``probs`` maps an id to the classifier's
    defect probability."""
    scored = []
    for rec, label in zip(records, labels):
        if label != 1 or rec.id in exclude:
            continue
        pseudo = read_mask(Path(pseudo_dir) / "masks" / mask_filename(rec.id))
        network = read_mask(Path(network_dir) / "masks" / mask_filename(rec.id))
        disagreement = round(1.0 - mask_iou(pseudo, network), DECIMALS)
        prob = round(float(probs[rec.id]), DECIMALS)
        scored.append((-disagreement, prob, rec.id, rec, int(pseudo.sum()), int(network.sum())))
    scored.sort(key=lambda t: t[:3])
    return [LabelNextRow(rank=n, id=rec.id, image=str(rec.image_path), score=-neg,
                         disagreement=-neg, classifier_prob=prob, pseudo_pixels=pp,
                         network_pixels=npx)
            for n, (neg, prob, _, rec, pp, npx) in enumerate(scored, 1)]
