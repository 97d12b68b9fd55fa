"""The label-next stage: which defective training images of a fold to label first
(:mod:`racam.pseudo.ranking`: the typical images of the classifier's features first, then by
the disagreement of the pseudo-labels and a segmentation network's masks). Stored as
``fold<k>/label-next/<that network's segmentation tag>/result.json``; ``racam run`` writes its
list as ``fold<k>/label-next.csv`` too.

``train_masks_choice: ranked`` takes the top ``N`` of the list of the weak run (the run with
``segmentation.train_masks: none``: same classifier, heat map and segmentation settings;
:meth:`LabelNextStage.ranked_ids`), and ``racam run`` of such a config writes that list. A run
with ``train_masks: all`` or a ``random`` count writes the list of its own network instead,
without the images that already learn from their true mask: the next ones to label.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import Subset

from racam import distributed
from racam.config import RunConfig
from racam.data.io import RecordDataset
from racam.io import atomic_write_text
from racam.pseudo.ranking import COLUMNS, RULE, TYPICAL_FIRST, LabelNextRow, rank_for_labelling
from racam.stages.classifier import ClassifierStage
from racam.stages.context import StageContext
from racam.stages.mixed_labels import classifier_embed, draw_seed
from racam.stages.pseudo_labels import PseudoLabelStage
from racam.stages.results import StageResult
from racam.stages.segmentation import SegmentationStage

CSV_NAME = "label-next.csv"


@dataclasses.dataclass(frozen=True, kw_only=True)
class LabelNextResult(StageResult):
    """The fold's list, best first (``rows``: :meth:`LabelNextRow.to_json`), and what it was
    computed from: the weak run's ``network`` checkpoint, the ``pseudo`` labels and the
    ``network_masks`` folder."""

    network: str
    pseudo: str
    network_masks: str
    rows: list[dict[str, Any]]

    def ranked(self) -> list[LabelNextRow]:
        return [LabelNextRow.from_json(r) for r in self.rows]


def weak_config(cfg: RunConfig) -> RunConfig:
    """``cfg`` with ``segmentation.train_masks: none`` (the run the list is drawn from)."""
    return dataclasses.replace(cfg, segmentation=dataclasses.replace(
        cfg.segmentation, train_masks="none"))


def typical_first(ctx: StageContext, fold: int, model: nn.Module,
                  learned: Collection[str]) -> list[str]:
    """The :data:`~racam.pseudo.ranking.TYPICAL_FIRST` defective training images that head
    the list: :func:`~racam.pseudo.typical.choose_typical` of the classifier's embeddings of
    every defective training image (sorted ids, as ``train_masks_choice: typical`` embeds
    them, with its seed), a TypiClust round around those in ``learned``."""
    from racam.pseudo.typical import choose_typical

    images = ctx.data(fold).train_all
    pool = sorted(rec.id for rec, y in zip(images.records, images.labels) if y == 1)
    if not pool:
        return []
    points = classifier_embed(ctx, fold, model)(pool)
    done = set(learned)
    labelled = [k for k, image_id in enumerate(pool) if image_id in done]
    picks = choose_typical(points, TYPICAL_FIRST, seed=draw_seed(ctx.cfg) + fold,
                           labelled=labelled)
    return [pool[k] for k in picks]


def rank_fold(model: nn.Module, train: RecordDataset, pseudo_dir: Path, network_dir: Path, *,
              batch_size: int, device: torch.device, exclude: Collection[str] = (),
              first: Sequence[str] = ()) -> list[LabelNextRow]:
    """The list of ``train``'s defective images but ``exclude``: the classifier ``model``'s
    defect probabilities on them (images read without their masks) and
    :func:`~racam.pseudo.ranking.rank_for_labelling` of the masks in the two folders, the
    ids in ``first`` at the head."""
    from racam.classifier import predict_proba

    images = train.without_masks()
    defective = [i for i, y in enumerate(images.labels) if y == 1]
    probs = predict_proba(model, Subset(images, defective), batch_size=batch_size,
                          device=device).tolist() if defective else []
    return rank_for_labelling(images.records, images.labels, pseudo_dir, network_dir,
                              {images.records[i].id: p for i, p in zip(defective, probs)},
                              exclude, first)


def csv_text(rows: list[LabelNextRow]) -> str:
    """The list as CSV text (:data:`racam.pseudo.ranking.COLUMNS`)."""
    import csv
    import io

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow([getattr(row, c) for c in COLUMNS])
    return buf.getvalue()


class LabelNextStage:
    """Computes, stores and writes the label-next lists of a run's folds."""

    def __init__(self, ctx: StageContext, classifier: ClassifierStage,
                 pseudo: PseudoLabelStage, seg: SegmentationStage) -> None:
        self.ctx = ctx
        self.classifier = classifier
        self.pseudo = pseudo
        self.seg = seg

    def run(self, fold: int, *, weak: bool = True) -> LabelNextResult:
        """The fold's list: stored, or computed (training the stages it lacks); ``weak``: of
        the weak run's network, else of the config's own."""
        ctx = self.ctx
        with ctx.config_as(weak_config(ctx.cfg) if weak else ctx.cfg):
            s = ctx.cfg.segmentation
            d, key = self.seg.path_key(fold, s.arch, "pseudo", s.self_training)
            path = ctx.fold_dir(fold) / "label-next" / d.name / "result.json"
            return ctx.stage(LabelNextResult, f"fold {fold}: label-next list", path,
                             lambda: self._compute(fold), {**key, "label_next": RULE},
                             recompute=("label_next",))  # a new rule: the list, in seconds

    def _compute(self, fold: int) -> LabelNextResult:
        ctx, s = self.ctx, self.ctx.cfg.segmentation
        network = self.seg.run(fold, s.arch, "pseudo", s.self_training)
        self.pseudo.run(fold)
        masks = self.seg.network_masks(fold, s.arch, s.self_training)
        learned = (network.train_masks or {}).get("ids", [])  # labelled already
        model = self.classifier.model(fold)
        rows = rank_fold(model, ctx.data(fold).train_all,
                         self.pseudo.folder(fold), masks, batch_size=ctx.cfg.cam.batch_size,
                         device=ctx.device, exclude=set(learned),
                         first=typical_first(ctx, fold, model, learned))
        return LabelNextResult(network=network.checkpoint, pseudo=str(self.pseudo.folder(fold)),
                               network_masks=str(masks), rows=[r.to_json() for r in rows])

    def ranked_ids(self, fold: int) -> list[str]:
        """The fold's defective training images, best to label first."""
        return [row["id"] for row in self.run(fold).rows]

    def write_csv(self, fold: int, result: LabelNextResult) -> Path:
        """``fold<k>/label-next.csv`` (atomically; rank 0)."""
        path = self.ctx.fold_dir(fold) / CSV_NAME
        if distributed.is_main():
            text = csv_text(result.ranked())
            if not path.is_file() or path.read_text() != text:  # unchanged: left as it is
                atomic_write_text(path, text)
        return path
