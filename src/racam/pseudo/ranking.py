"""Which defective training images to label next: a ranked list from image labels alone.

First come the images ``segmentation.train_masks_choice: typical`` would give a true mask
(:mod:`racam.pseudo.typical`: the most typical image of each of the largest clusters of the
classifier's features, :data:`TYPICAL_FIRST` of them, ``typical_pick`` 1, 2, ...): on
KolektorSDD 5 such masks taught the segmentation network more than 5 drawn at random
(docs/results.md). The rest follow by disagreement ``1 - IoU`` between the image's
pseudo-label (the classifier's heat map, thresholded) and the mask the weakly supervised
segmentation network draws on it (``p > 0.5``), both at the image's original size: where the
two weak sources disagree, at least one of them is wrong on that image (two empty masks agree,
IoU 1). Ties (common at 1: masks that do not overlap at all) go first to the image the
classifier is least sure is defective (lower ``classifier_prob``), then by id, so the order is
deterministic. No true mask is read. Images that already learn from their true mask
(``exclude``) are not listed. Images with the same pixels (KolektorSDD photographed some items
twice) are listed once, at the best place of any of them, the others named in ``copies``: one
outline serves them all.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from racam.data import read_mask
from racam.data.images import open_image, pixel_digest
from racam.pseudo.labels import mask_filename

__all__ = ["COLUMNS", "RULE", "TYPICAL_FIRST", "LabelNextRow", "distinct", "mask_iou",
           "network_agreement", "rank_for_labelling"]

#: The list's rule in stage keys (the list's own, and a ``ranked`` network's): a new rule
#: gets a new name, so nothing drawn from an older list is reused.
RULE = "typical5-then-pseudo-vs-network-iou-distinct"
#: How many typical images head the list (the budget measured on KolektorSDD: 5 per fold).
TYPICAL_FIRST = 5
#: Decimals kept of the scores (so that the order and the CSV do not hang on float noise).
DECIMALS = 6


@dataclasses.dataclass(frozen=True)
class LabelNextRow:
    """One row of the list: ``rank`` (1 = label first), the image, its ``score`` and the
    components: ``disagreement`` (``1 - IoU`` of the two masks), ``classifier_prob`` (the
    classifier's defect probability) and the defect pixels of each mask; ``typical_pick``:
    the image's place among the typical images that head the list (``None`` below them);
    ``copies``: the ids of images with the same pixels, left out of the list (``;`` between)."""

    rank: int
    id: str
    image: str
    score: float
    disagreement: float
    classifier_prob: float
    pseudo_pixels: int
    network_pixels: int
    typical_pick: int | None = None
    copies: str = ""

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, v: Mapping[str, Any]) -> LabelNextRow:
        return cls(**{f.name: v[f.name] for f in dataclasses.fields(cls) if f.name in v})


#: The CSV's columns (``fold<k>/label-next.csv``), in order.
COLUMNS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(LabelNextRow))


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Defect IoU of two bool masks of one shape (1 when both are empty)."""
    if a.shape != b.shape:
        raise ValueError(f"masks of shapes {a.shape} and {b.shape} cannot be compared")
    union = int(np.logical_or(a, b).sum())
    return 1.0 if union == 0 else int(np.logical_and(a, b).sum()) / union


def network_agreement(rows: Sequence[LabelNextRow]) -> float | None:
    """Pooled IoU of the network's masks and the pseudo-labels over the listed images (the
    intersection of each recovered from its IoU and the two masks' pixels); ``None`` when no
    listed image has a defect pixel in either. How much of its labels the network reproduces on
    the images it learned them from; no true mask is read."""
    inter = union = 0.0
    for r in rows:
        iou, both = 1.0 - r.disagreement, r.pseudo_pixels + r.network_pixels
        common = iou * both / (1.0 + iou)
        inter, union = inter + common, union + both - common
    return inter / union if union > 0 else None


def rank_for_labelling(records: list[Any], labels: list[int], pseudo_dir: Path,
                       network_dir: Path, probs: Mapping[str, float],
                       exclude: Collection[str] = (),
                       first: Sequence[str] = ()) -> list[LabelNextRow]:
    """The defective images of ``records`` but ``exclude`` ranked (see the module docstring):
    ``first`` (the typical picks, in their order), then the others by disagreement; their
    masks are read from ``pseudo_dir/masks`` and ``network_dir/masks`` (files of
    :func:`racam.pseudo.labels.mask_filename`), ``probs`` maps an id to the classifier's
    defect probability."""
    place = {image_id: k for k, image_id in enumerate(first)}
    scored = []
    for rec, label in zip(records, labels):
        if label != 1 or rec.id in exclude:
            continue
        pseudo = read_mask(Path(pseudo_dir) / "masks" / mask_filename(rec.id))
        network = read_mask(Path(network_dir) / "masks" / mask_filename(rec.id))
        disagreement = round(1.0 - mask_iou(pseudo, network), DECIMALS)
        prob = round(float(probs[rec.id]), DECIMALS)
        scored.append((place.get(rec.id, len(place)), -disagreement, prob, rec.id, rec,
                       int(pseudo.sum()), int(network.sum())))
    scored.sort(key=lambda t: t[:4])
    copies = distinct([t[4] for t in scored])
    rows = [t for t in scored if t[3] in copies]
    return [LabelNextRow(rank=n, id=rec.id, image=str(rec.image_path), score=-neg,
                         disagreement=-neg, classifier_prob=prob, pseudo_pixels=pp,
                         network_pixels=npx,
                         typical_pick=pick + 1 if pick < len(place) else None,
                         copies=";".join(copies[rec.id]))
            for n, (pick, neg, prob, _, rec, pp, npx) in enumerate(rows, 1)]


def distinct(records: Sequence[Any]) -> dict[str, list[str]]:
    """The ids of ``records`` (in order) whose pixels equal no earlier one's
    (:func:`~racam.data.images.pixel_digest`), each with the ids of its later copies."""
    first: dict[str, str] = {}
    copies: dict[str, list[str]] = {}
    for rec in records:
        with open_image(rec.image_path) as img:
            digest = pixel_digest(img)
        if digest in first:
            copies[first[digest]].append(rec.id)
        else:
            first[digest] = rec.id
            copies[rec.id] = []
    return copies
