"""Bootstrap intervals of a reproduction (:mod:`racam.evaluation.bootstrap`).

:func:`paired_interval`: a heat-map method minus another on the defective test images (Tables I
and IV). :func:`add_table_iii_intervals`: each segmentation network's pooled defect IoU gets a
percentile interval, each weakly supervised network a paired interval of its IoU minus the fully
supervised network's (the same architecture when it was trained, else the first fully supervised
row), and a self-training round one against round 0. The test images of every fold are
resampled together, with replacement; the classifier seeds are not resampled, so the intervals
cover the choice of test images, not the training run.
"""

from __future__ import annotations

from typing import Any

from racam.evaluation.bootstrap import (
    BOOTSTRAP_SEED,
    CONFIDENCE,
    align_per_image,
    bootstrap_iou,
    paired_bootstrap_iou_difference,
)


def paired_interval(images_a: dict[int, Any] | None, images_b: dict[int, Any] | None,
                    seeds: list[int], resamples: int) -> dict[str, Any]:
    """The bootstrap interval of ``IoU(a) - IoU(b)`` from per-image counts per seed.

    All seeds are resampled together when they hold the same images (KolektorSDD: fixed test
    folds); otherwise (a folder dataset's seeded test split) the first seed alone is used, and
    ``seeds_used`` says so. ``{"interval": None, "reason": ...}`` when counts are missing.
    """
    if not images_a or not images_b:
        return {"interval": None, "reason": "per-image counts missing"}
    if any(images_a.get(s) is None or images_b.get(s) is None for s in seeds):
        return {"interval": None, "reason": "per-image counts missing for a seed"}
    a = [images_a[s] for s in seeds]
    b = [images_b[s] for s in seeds]
    used = list(seeds)
    if any(sorted(x) != sorted(a[0]) for x in a + b):
        used, a, b = seeds[:1], a[:1], b[:1]
        if sorted(a[0]) != sorted(b[0]):
            return {"interval": None, "reason": "the two methods cover different images"}
    if not a[0]:
        return {"interval": None, "reason": "no defective test image"}
    ca, cb, _ = align_per_image(a, b)
    iv = paired_bootstrap_iou_difference(ca, cb, resamples=resamples, confidence=CONFIDENCE,
                                         seed=BOOTSTRAP_SEED)
    return {"interval": iv.to_dict(), "seeds_used": used}


def add_table_iii_intervals(rows: list[dict[str, Any]],
                            images: list[list[dict[str, Any] | None]],
                            resamples: int, *, confidence: float, seed: int
                            ) -> list[dict[str, Any]]:
    """``rows`` (Table III, as :meth:`Reproduction.table_iii
    <racam.paper.reproduce.Reproduction.table_iii>` builds them) with ``interval``
    (the pooled IoU's, averaged over the row's classifier seeds) and, on weakly supervised
    rows, ``minus_supervised`` and, on self-training rounds, ``minus_round0``: ``{"b": row
    name, "interval": ...}`` or ``{"interval": None, "reason": ...}``. ``images[i]`` holds row
    ``i``'s per-image counts, one mapping per seed. A row of one seed against a row of several
    is compared seed by seed with that one row: ``mean_s IoU(a_s) - IoU(b)``."""
    names = [f"{r['arch']}-{r['source']}" for r in rows]
    supervised = {r["arch"]: i for i, r in enumerate(rows) if r["source"] == "true"}
    first_fs = next(iter(supervised.values()), None)
    round0 = {r["arch"]: i for i, r in enumerate(rows) if r["source"] == "pseudo"}

    def complete(i: int) -> bool:
        return bool(images[i]) and all(images[i])

    def paired(i: int, j: int | None) -> dict[str, Any] | None:
        if j is None:
            return None
        if not complete(i) or not complete(j):
            return {"b": names[j], "interval": None, "reason": "per-image counts missing"}
        a, b = images[i], images[j]
        if len(a) != len(b):  # one side has a single seed: compare every seed with it
            if min(len(a), len(b)) != 1:
                return {"b": names[j], "interval": None,
                        "reason": "the two rows hold different classifier seeds"}
            a, b = (a * len(b), b) if len(a) == 1 else (a, b * len(a))
        try:
            ca, cb, _ = align_per_image(a, b)  # type: ignore[arg-type]  # complete: no None
        except ValueError as exc:
            return {"b": names[j], "interval": None, "reason": str(exc)}
        iv = paired_bootstrap_iou_difference(ca, cb, resamples=resamples, confidence=confidence,
                                             seed=seed)
        return {"b": names[j], "interval": iv.to_dict()}

    out = []
    for i, row in enumerate(rows):
        row = dict(row)
        row["interval"] = None
        if complete(i):
            per = images[i]
            try:
                counts, _, _ = align_per_image(per, per)  # type: ignore[arg-type]  # complete
            except ValueError:  # seeds tested different images (a folder's seeded split)
                counts, _, _ = align_per_image(per[:1], per[:1])  # type: ignore[arg-type]  # complete
                row["interval_seeds_used"] = row.get("seeds", [None])[:1]
            row["interval"] = bootstrap_iou(counts, resamples=resamples, confidence=confidence,
                                            seed=seed).to_dict()
        if row["source"] != "true":
            row["minus_supervised"] = paired(i, supervised.get(row["arch"], first_fs))
        if row.get("round"):
            row["minus_round0"] = paired(i, round0.get(row["arch"]))
        out.append(row)
    return out
