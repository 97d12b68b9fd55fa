"""The segmentation stage: train a segmentation network of a fold on its pseudo-labels (or on
the true masks, the fully supervised baseline), with ``segmentation.self_training`` rounds on
top and, with ``segmentation.train_masks``, some training images' true masks in place of their
labels (:mod:`racam.stages.mixed_labels`), and score it on the fold's test images. Stored as
``fold<k>/segmentation/<segmentation tag>/result.json`` (:func:`racam.layout.segmentation_tag`).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from racam import compat, distributed
from racam.config import SegmentationConfig
from racam.errors import DataError
from racam.io import atomic_write_json
from racam.layout import segmentation_tag
from racam.pseudo.ranking import RULE
from racam.stages.classifier import ClassifierStage
from racam.stages.context import StageContext
from racam.stages.heatmaps import per_image_counts
from racam.stages.mixed_labels import Ranking, mixed_labels
from racam.stages.pseudo_labels import PseudoLabelStage, stored_key
from racam.stages.results import StageResult, optional


@dataclasses.dataclass(frozen=True, kw_only=True)
class SegmentationStageResult(StageResult):
    """A trained segmentation network and its pooled ``counts`` on the test images (``None``
    without true masks); ``per_image``: ``{image id: [tp, fp, fn, tn]}`` of every test image
    (``None`` in results stored before they were kept); ``rescored_counts``: the pooled counts
    of scoring a stored network again, where they differ from the stored ones;
    ``train_masks``: which training images learned from their true mask
    (:meth:`racam.pseudo.mixed.TrainMasks.to_json`; absent with ``train_masks: none``);
    ``mask_cut``: the ``segmentation.mask_cut`` the counts were scored with (absent: ``half``)."""

    arch: str
    source: str = "pseudo"
    round: int = 0
    checkpoint: str
    counts: dict[str, int] | None = None
    per_image: dict[str, list[int]] | None = optional()
    rescored_counts: dict[str, int] | None = optional()
    train_masks: dict[str, Any] | None = optional()
    mask_cut: str | None = optional()

    @property
    def cut(self) -> str:
        """The mask cut of ``counts``."""
        return self.mask_cut or "half"


def evaluates_in_bf16(cfg: SegmentationConfig, device: torch.device) -> bool:
    """Whether the network is scored (and draws self-training masks) under bfloat16 autocast:
    when it trains so on ``device`` (:func:`racam.precision.resolve_precision`)."""
    from racam.precision import resolve_precision

    return resolve_precision(cfg.precision, device).name == "bf16"


class SegmentationStage:
    """Trains, stores, scores and re-scores the segmentation networks of a run's folds."""

    def __init__(self, ctx: StageContext, classifier: ClassifierStage,
                 pseudo: PseudoLabelStage) -> None:
        self.ctx = ctx
        self.classifier = classifier
        self.pseudo = pseudo
        #: the label-next list of ``train_masks_choice: ranked`` (set by the engine:
        #: :meth:`racam.stages.label_next.LabelNextStage.ranked_ids`)
        self.ranking: Ranking | None = None

    def _round(self, source: str, round: int | None) -> int:
        if source == "true":
            return 0
        return self.ctx.cfg.segmentation.self_training if round is None else round

    def path_key(self, fold: int, arch: str, source: str = "pseudo",
                 round: int = 0) -> tuple[Path, dict[str, Any]]:
        """Folder and stage key of a network (round ``r > 0`` of self-training: the key holds
        ``self_training_round``; round 0's key holds no self-training setting). The key holds
        ``train_masks`` (and ``train_masks_choice`` with a count) unless it is ``none`` or the
        network learns the true masks anyway (``source="true"``)."""
        ctx = self.ctx
        tag = segmentation_tag(ctx.cfg, arch, source, round)
        drop = {"arch", "num_workers", "self_training"}
        if source == "true" or ctx.cfg.segmentation.train_mask_count() is None:
            drop.update(("train_masks_choice", "train_masks_seed"))
        if source == "true" or ctx.cfg.segmentation.train_masks == "none":
            drop.add("train_masks_rest")
        if source == "true":
            drop.add("train_masks")
        seg = compat.without_added("segmentation", {
            k: v for k, v in dataclasses.asdict(ctx.cfg.segmentation).items()
            if k not in drop | {"gate", "mask_cut"}})  # evaluation rules, not trained
        if seg.get("train_masks_choice") == "ranked":  # the list it takes its top N from
            seg["train_masks_list"] = RULE
        if round:
            seg["self_training_round"] = round
            if ctx.cfg.segmentation.mask_cut != "half":  # the cut of its labels
                seg["self_training_cut"] = ctx.cfg.segmentation.mask_cut
        parts = ("data", "classifier", "cam") if source == "pseudo" else ("data",)
        checkpoint = (lambda: self.classifier.checkpoint(fold)) if source == "pseudo" else None
        return (ctx.fold_dir(fold) / "segmentation" / tag,
                {**ctx.key(*parts), "segmentation": seg,
                 "inputs": ctx.inputs(fold, checkpoint)})

    def run(self, fold: int, arch: str | None = None, source: str = "pseudo",
            round: int | None = None, *, per_image: bool = False) -> SegmentationStageResult:
        """The network of ``arch`` (the config's when ``None``) trained on pseudo-labels (or
        true masks): stored, or trained and scored.

        With pseudo-labels, ``round`` is the self-training round (``None``: the config's last):
        round 0 learns the heat maps' pseudo-labels, round ``r > 0`` the masks round ``r - 1``
        draws on the training images (:meth:`self_training_labels`). ``per_image=True`` adds
        the per-image counts to a result stored before they were kept, by scoring its network
        again (:meth:`rescore`)."""
        arch = arch or self.ctx.cfg.segmentation.arch
        r = self._round(source, round)
        d, key = self.path_key(fold, arch, source, r)
        value = self.ctx.stage(SegmentationStageResult, f"fold {fold}: segmentation {d.name}",
                               d / "result.json",
                               lambda: self._compute(fold, arch, source, r, d), key)
        if value.counts is not None and value.cut != self.ctx.cfg.segmentation.mask_cut:
            value = self.recut(fold, arch, d, value)  # per-image counts included
        elif per_image and value.counts is not None and value.per_image is None:
            value = self.rescore(fold, arch, d, value)
        return value

    @staticmethod
    def stored_network(d: Path, value: SegmentationStageResult) -> Path:
        """The network of the stored result ``value`` in folder ``d``: the folder's own
        ``last.pt`` (also after the run was moved), else the path the result records."""
        checkpoint = d / "last.pt"
        if not checkpoint.exists() and value.checkpoint:
            checkpoint = Path(value.checkpoint)
        return checkpoint

    def _config(self, arch: str) -> SegmentationConfig:
        scfg = dataclasses.replace(self.ctx.cfg.segmentation, arch=arch)
        if not arch.startswith("deeplab"):
            scfg = dataclasses.replace(scfg, output_stride=None)
        return scfg

    def _compute(self, fold: int, arch: str, source: str, r: int,
                 d: Path) -> SegmentationStageResult:
        from racam.pseudo.labels import PseudoLabelDataset
        from racam.segmentation import train_segmentation

        ctx = self.ctx
        fd = ctx.data(fold)
        crops = ctx.cfg.segmentation.crop
        train: Dataset
        mixed = None
        if source == "pseudo":
            if r:
                labels = self.self_training_labels(fold, arch, r)
            else:
                self.pseudo.run(fold)
                labels = self.pseudo.folder(fold)
            if ctx.cfg.segmentation.train_masks != "none":
                labels, mixed = mixed_labels(ctx, fold, labels, self.ranking,
                                             self.classifier.model)
            train = PseudoLabelDataset(fd.train_all, labels, augment=crops is None)
        else:
            train = fd.train_all_aug if crops is None else fd.train_all  # crops flip
        scfg = self._config(arch)
        ctx.note_precision("segmentation.precision", scfg.precision)
        res = train_segmentation(scfg, train, d, seed=ctx.cfg.seed + fold, device=ctx.device,
                                 in_channels=ctx.cfg.data.channels, progress=ctx.progress)
        cut = scfg.mask_cut
        counts, per_image = (self.score(fold, res.last_path, scfg, cut) if ctx.has_masks(fold)
                             else (None, None))
        return SegmentationStageResult(arch=arch, source=source, round=r,
                                       checkpoint=str(res.last_path), counts=counts,
                                       per_image=per_image,
                                       mask_cut=None if cut == "half" else cut,
                                       train_masks=None if mixed is None else mixed.to_json())

    def score(self, fold: int, checkpoint: Path, scfg: SegmentationConfig, cut: str = "half"
              ) -> tuple[dict[str, int], dict[str, list[int]]]:
        """Pooled counts and per-image counts (``{image id: [tp, fp, fn, tn]}``) of the network
        at ``checkpoint`` on the fold's test images, its masks cut by ``cut``."""
        from racam.evaluation.pooling import counts_dict
        from racam.evaluation.segmentation_quality import evaluate_segmentation
        from racam.segmentation import load_segmentation

        ctx = self.ctx
        model, _ = load_segmentation(checkpoint, map_location=ctx.device)
        scored = evaluate_segmentation(model, ctx.data(fold).test, device=ctx.device,
                                       bf16=evaluates_in_bf16(scfg, ctx.device),
                                       batch_size=ctx.cfg.segmentation.batch_size, cut=cut)
        return counts_dict(scored["counts"]), per_image_counts(scored["per_image"])

    def rescore(self, fold: int, arch: str, d: Path,
                value: SegmentationStageResult) -> SegmentationStageResult:
        """A result stored before per-image counts were kept (:data:`racam.compat.LATER_FIELDS`),
        with them added by scoring its stored network again (no training). Its pooled
        ``counts`` stay; when the new scoring sums to other counts, that is logged and recorded
        as ``rescored_counts``."""
        ctx = self.ctx
        checkpoint = self.stored_network(d, value)
        if not checkpoint.exists():
            ctx.log(f"[racam] fold {fold}: {d.name}: no per-image counts and no network at "
                    f"{checkpoint} to score again; its Table III interval is n/a")
            return value
        ctx.log(f"[racam] fold {fold}: segmentation {d.name}: scoring the stored network "
                "again for per-image counts ...")
        counts, per_image = self.score(fold, checkpoint,
                                       dataclasses.replace(ctx.cfg.segmentation, arch=arch),
                                       value.cut)
        value = value.replace(per_image=per_image)
        if counts != value.counts:
            value = value.replace(rescored_counts=counts)
            ctx.log(f"[racam] warning: fold {fold}: {d.name}: scored again, the pooled counts "
                    f"differ from the stored ones ({counts} vs {value.counts}); the table "
                    "keeps the stored counts, the interval uses the new ones")
        if distributed.is_main():
            atomic_write_json(d / "result.json", value.to_json())
        return value

    def recut(self, fold: int, arch: str, d: Path,
              value: SegmentationStageResult) -> SegmentationStageResult:
        """``value`` scored again with the config's ``segmentation.mask_cut`` (the same stored
        network, no training): its counts and per-image counts replaced and stored."""
        ctx = self.ctx
        cut = ctx.cfg.segmentation.mask_cut
        checkpoint = self.stored_network(d, value)
        if not checkpoint.exists():
            raise DataError(f"{d / 'result.json'}: scored with mask_cut {value.cut}, and no "
                            f"network at {checkpoint} to score again with {cut}")
        ctx.log(f"[racam] fold {fold}: segmentation {d.name}: scoring the stored network "
                f"again with segmentation.mask_cut {cut} (was {value.cut}) ...")
        counts, per_image = self.score(fold, checkpoint,
                                       dataclasses.replace(ctx.cfg.segmentation, arch=arch), cut)
        value = value.replace(counts=counts, per_image=per_image, rescored_counts=None,
                              mask_cut=None if cut == "half" else cut)
        if distributed.is_main():
            atomic_write_json(d / "result.json", value.to_json())
        return value

    def self_training_labels(self, fold: int, arch: str, round: int) -> Path:
        """Folder of round ``round``'s training labels: the masks round ``round - 1``'s network
        draws on the training images, cut by the run's ``segmentation.mask_cut``
        (:meth:`network_masks`)."""
        return self.network_masks(fold, arch, round - 1, self.ctx.cfg.segmentation.mask_cut)

    def network_masks(self, fold: int, arch: str, round: int, cut: str = "half") -> Path:
        """Folder of the masks (cut by ``cut``, :mod:`racam.segmentation.mask_cut`, on each
        image's map at its original size) that round ``round``'s network draws on the
        defective training images; defect-free training images keep an empty mask (their
        image label is known). Self-training round ``round + 1`` learns them (with the run's
        cut); the label-next list compares them (``p > 0.5``) with the pseudo-labels."""
        from racam.pseudo.labels import MANIFEST, write_pseudo_labels
        from racam.segmentation import load_segmentation
        from racam.segmentation.mask_cut import cut_mask
        from racam.segmentation.probability import probability_fn

        ctx = self.ctx
        prev = self.run(fold, arch, "pseudo", round)
        d = ctx.fold_dir(fold) / "pseudo" / (
            segmentation_tag(ctx.cfg, arch, "pseudo", round) + "-masks"
            + ("" if cut == "half" else f"-{cut}"))
        prev_dir, prev_key = self.path_key(fold, arch, "pseudo", round)
        network = self.stored_network(prev_dir, prev)  # the run's own file, also in a copy
        model, _ = load_segmentation(network, map_location=ctx.device)
        bf16 = evaluates_in_bf16(ctx.cfg.segmentation, ctx.device)
        write_pseudo_labels(  # returns at once when the folder is complete under this key
            probability_fn(model, bf16=bf16), ctx.data(fold).train_all.without_masks(), d,
            meta={"source": "self-training", "round": round + 1, "network": str(network)},
            batch_size=ctx.cfg.segmentation.batch_size, device=ctx.device,
            progress=ctx.progress, threshold=lambda heat: cut_mask(heat, cut),
            key=stored_key(d / MANIFEST, {"network": prev_key, "rule": cut}))
        return d
