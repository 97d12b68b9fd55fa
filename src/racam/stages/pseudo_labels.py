"""The pseudo-label stage: masks of the config's heat map (threshold rule, guided filter) for a
fold's training images (:func:`racam.pseudo.labels.write_pseudo_labels`), and their quality
against the true masks of the defective ones. Stored as ``fold<k>/pseudo/<pseudo key>/``."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from racam import compat, distributed
from racam.io import read_json
from racam.layout import pseudo_key
from racam.run_cam import build_run_cam
from racam.stages.classifier import ClassifierStage, scales_entry
from racam.stages.context import StageContext
from racam.stages.folds import FoldData
from racam.stages.results import StageResult, optional


@dataclasses.dataclass(frozen=True, kw_only=True)
class PseudoLabelResult(StageResult):
    """Where the masks are (``manifest``), how many, and their pooled counts against the
    true masks of the defective training images (``None`` without true masks)."""

    manifest: str
    num_images: int
    pseudo_vs_true_defective: dict[str, int] | None = None
    #: label-free: :class:`racam.pseudo.deletion.DeletionCheck` of the masks, as JSON
    deletion: dict[str, Any] | None = optional()


def stored_key(manifest: Path, key: dict[str, Any]) -> Any:
    """The key a finished or started mask folder must be given so that
    :func:`~racam.pseudo.labels.write_pseudo_labels` takes it as its own: the stored one when
    it reads as ``key`` today (:func:`racam.compat.comparable`), else ``key``."""
    import json

    now = json.loads(json.dumps(key, default=str))
    if manifest.exists():
        stored = read_json(manifest).get("key")
        if stored is not None and compat.comparable(stored, now) == now:
            return stored
    return now


def labels_cam(ctx: StageContext, fold: int, model: nn.Module,
               scales: list[float] | None) -> Callable[..., Tensor]:
    """The pseudo-labels' heat-map callable on ``model``: the config's method at ``scales`` (the
    config's when ``None``), times the good-patch distance with ``cam.good_prior``
    (:mod:`racam.pseudo.good_patches`, its bank from the fold's good training images)."""
    c = ctx.cfg.cam
    cam = build_run_cam(ctx.cfg, model, c.method, c.delta, scales=scales)
    if not c.good_prior:
        return cam
    from racam.pseudo.good_patches import GoodPatches, with_good_prior

    ds = ctx.data(fold).train_all
    good = [i for i, y in enumerate(ds.labels) if y == 0]
    return with_good_prior(cam, GoodPatches(model, ds, good, batch_size=c.batch_size,
                                            device=ctx.device))


class PseudoLabelStage:
    """Writes, stores and scores the pseudo-labels of a run's folds."""

    def __init__(self, ctx: StageContext, classifier: ClassifierStage) -> None:
        self.ctx = ctx
        self.classifier = classifier

    def folder(self, fold: int) -> Path:
        return self.ctx.fold_dir(fold) / "pseudo" / pseudo_key(self.ctx.cfg)

    def key(self, fold: int) -> dict[str, Any]:
        """The stage key: :func:`~racam.stages.classifier.pseudo_labels_key` of the fold's
        kept classifier (the key its candidates' masks are kept under)."""
        return {**self.ctx.key("data", "classifier", "cam"),
                "inputs": self.ctx.inputs(fold, lambda: self.classifier.checkpoint(fold)),
                **scales_entry(self.classifier.pseudo_scales(fold))}

    def run(self, fold: int) -> PseudoLabelResult:
        """The fold's pseudo-labels: stored, or written and scored."""
        d = self.folder(fold)
        return self.ctx.stage(PseudoLabelResult, f"fold {fold}: pseudo-labels",
                              d / "result.json", lambda: self._compute(fold), self.key(fold))

    def _compute(self, fold: int) -> PseudoLabelResult:
        from racam.pseudo.labels import MANIFEST, write_pseudo_labels
        from racam.pseudo.stash import adopt_stash, stash_dir

        ctx, c = self.ctx, self.ctx.cfg.cam
        d = self.folder(fold)
        fd = ctx.data(fold)
        key = stored_key(d / MANIFEST, self.key(fold))
        checkpoint = self.classifier.checkpoint(fold)
        chosen = self.classifier.pseudo_scales(fold)
        scales = c.scales if chosen is None else list(chosen)
        if adopt_stash(stash_dir(checkpoint, pseudo_key(ctx.cfg, chosen)), d, key):
            ctx.log(f"[racam] fold {fold}: pseudo-labels: the masks computed when the "
                    "classifier was chosen are reused")
        manifest = write_pseudo_labels(
            labels_cam(ctx, fold, self.classifier.model(fold), scales), fd.train_all, d,
            meta={"method": c.method, "delta": c.delta, "fusion": c.fusion,
                  **({"scales": scales, "flips": c.flips}
                     if scales != [1.0] or c.flips or chosen is not None else {}),
                  **ctx.method_options(c.method),
                  "threshold": c.pseudo_threshold,
                  "guided": None if c.guided_radius is None else [c.guided_radius,
                                                                  c.guided_eps],
                  "checkpoint": checkpoint},
            progress=ctx.progress, key=key,
            **ctx.pseudo_mask_options())
        return PseudoLabelResult(manifest=str(d / "manifest.json"),
                                 num_images=manifest["num_images"],
                                 pseudo_vs_true_defective=pseudo_quality(fd, d),
                                 deletion=self.deletion(fold, d))

    def deletion(self, fold: int, d: Path) -> dict[str, Any] | None:
        """:mod:`racam.pseudo.deletion`'s check of the masks in ``d`` on the fold's defective
        training images (label-free; each rank 1/N of them)."""
        from racam.pseudo.deletion import deletion_rows, summarise
        from racam.pseudo.labels import PseudoLabelDataset

        ds = PseudoLabelDataset(self.ctx.data(fold).train_all, d)
        bs, model = self.ctx.cfg.cam.batch_size, self.classifier.model(fold)
        rows = distributed.sharded_map(
            lambda idx: deletion_rows(model, ds, idx, batch_size=bs, device=self.ctx.device),
            [i for i, y in enumerate(ds.labels) if y == 1], block=bs)
        check = summarise(rows)
        return None if check is None else check.to_json()


def pseudo_quality(fd: FoldData, d: Path) -> dict[str, int] | None:
    """Pooled counts of the masks in ``d`` against the true masks of the fold's defective
    training images (``None`` when none has a mask)."""
    from racam.data import read_mask
    from racam.evaluation.metrics import SegmentationMeter
    from racam.evaluation.pooling import counts_dict
    from racam.pseudo.labels import mask_filename

    def score(recs: list[Any]) -> list[tuple[str, Any]]:
        part = SegmentationMeter()
        for rec in recs:
            pred = torch.from_numpy(read_mask(d / "masks" / mask_filename(rec.id)))
            part.update(pred[None], torch.from_numpy(read_mask(rec.mask_path))[None],
                        ids=[rec.id])
        return part.per_image

    meter = SegmentationMeter()
    defective = [rec for rec, lab in zip(fd.train_all.records, fd.train_all.labels)
                 if lab == 1 and rec.mask_path is not None]
    for image_id, counts in distributed.sharded_map(score, defective):  # 1/N per rank
        meter.add(counts, image_id)
    return counts_dict(meter.total) if meter.per_image else None
