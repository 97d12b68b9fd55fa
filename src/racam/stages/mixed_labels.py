"""The training labels of ``segmentation.train_masks`` (mixed supervision) for one fold: the
labels a segmentation network would learn (the pseudo-labels, or a self-training round's
masks) with the chosen defective training images' true masks in place of theirs
(:mod:`racam.pseudo.mixed`). Stored next to those labels as
``fold<k>/pseudo/<their folder>-mixed-<tag>/`` (:func:`racam.layout.train_masks_tag`).

``train_masks_choice: typical`` clusters the eligible images' embeddings by the fold's
classifier (:func:`classifier_embed`: its stage ``S5`` output, the layer of the single-layer
heat-map methods, pooled and normalised; images read without their masks)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from torch import nn
from torch.utils.data import Subset

from racam import distributed
from racam.config import RunConfig
from racam.errors import ConfigError
from racam.io import read_json
from racam.layout import train_masks_tag
from racam.pseudo.labels import MANIFEST
from racam.pseudo.mixed import (
           Embed,
           TrainMasks,
           choose_images,
           eligible_ids,
           write_mixed_labels,
)
from racam.stages.context import StageContext

#: ``fold -> image ids, best first``: the label-next list of ``train_masks_choice: ranked``.
Ranking = Callable[[int], list[str]]
#: ``fold -> its trained classifier`` (:meth:`racam.stages.classifier.ClassifierStage.model`):
#: the embeddings of ``train_masks_choice: typical``.
Classifier = Callable[[int], nn.Module]
#: The stage layer whose pooled output embeds an image for ``typical`` (in the mixed key).
EMBED_LAYER = "S5"


def classifier_embed(ctx: StageContext, fold: int, model: nn.Module) -> Embed:
    """``ids -> embeddings``: :func:`racam.classifier.embeddings.pooled_features` of
    ``model``'s :data:`EMBED_LAYER` on those training images of the fold (read without any
    mask file)."""
    from racam.classifier.embeddings import pooled_features
    from racam.models import classifier_target_layers

    layer = classifier_target_layers(model)[EMBED_LAYER]
    images = ctx.data(fold).train_all.without_masks()

    def embed(ids: list[str]) -> np.ndarray:
        index = {rec.id: i for i, rec in enumerate(images.records)}
        return pooled_features(model, Subset(images, [index[i] for i in ids]), layer,
                               batch_size=ctx.cfg.cam.batch_size, device=ctx.device)
    return embed


def draw_seed(cfg: RunConfig) -> int:
    """The seed of the choice (before the fold is added): ``segmentation.train_masks_seed``,
    else the run's seed."""
    seed = cfg.segmentation.train_masks_seed
    return cfg.seed if seed is None else int(seed)


def chosen_ids(ctx: StageContext, fold: int, ranking: Ranking | None = None,
               classifier: Classifier | None = None) -> tuple[str, list[str], int]:
    """``(choice, ids, eligible)``: how and which defective training images of the fold learn
    from their true mask (:func:`racam.pseudo.mixed.choose_images`; reads no mask file) and
    how many have a usable one. ``ranking`` gives the list of ``ranked``, ``classifier`` the
    network whose embeddings ``typical`` clusters."""
    s = ctx.cfg.segmentation
    eligible = eligible_ids(ctx.data(fold).train_all)
    choice = "all" if s.train_mask_count() is None else s.train_masks_choice
    if choice == "ranked" and ranking is None:
        raise ConfigError("segmentation.train_masks_choice: ranked needs the label-next list "
                          "of the run with train_masks: none, which this engine lacks")
    if choice == "typical" and classifier is None:
        raise ConfigError("segmentation.train_masks_choice: typical needs the fold's "
                          "classifier, which this engine lacks")
    order = ranking(fold) if choice == "ranked" and ranking is not None else None
    embed = (classifier_embed(ctx, fold, classifier(fold))
             if choice == "typical" and classifier is not None else None)
    ids = choose_images(eligible, s.train_masks, choice, seed=draw_seed(ctx.cfg) + fold,
                        ranking=order, embed=embed)
    return choice, ids, len(eligible)


def mixed_labels(ctx: StageContext, fold: int, base: Path, ranking: Ranking | None = None,
                 classifier: Classifier | None = None) -> tuple[Path, TrainMasks]:
    """The folder of the fold's mixed labels built from the labels in ``base`` (written once;
    rank 0 writes) and which images carry a true mask. ``ranking`` gives the list of
    ``train_masks_choice: ranked``, ``classifier`` the network of ``typical``
    (:func:`chosen_ids`)."""
    s = ctx.cfg.segmentation
    tag = train_masks_tag(ctx.cfg)
    assert tag is not None, "segmentation.train_masks: none trains on the labels themselves"
    fd = ctx.data(fold)
    choice, ids, n_eligible = chosen_ids(ctx, fold, ranking, classifier)
    out = base.with_name(f"{base.name}-mixed-{tag}")
    ctx.log(f"[racam] fold {fold}: {len(ids)} of {n_eligible} defective training images "
            f"with a true mask learn from it (segmentation.train_masks: {s.train_masks}"
            + (f", {choice}" if choice != "all" else "") + ")")
    count = s.train_mask_count()
    if count is not None and len(ids) < count:
        ctx.log(f"[racam] warning: fold {fold}: segmentation.train_masks asks for {count} "
                f"images, only {len(ids)} have a usable true mask")
    rest = s.train_masks_rest
    if rest == "ignore" and not ids:  # ignoring every defective image would teach no defect
        rest = "pseudo"
        ctx.log(f"[racam] fold {fold}: no training image has a true mask, so every defective "
                "one learns its pseudo-label (segmentation.train_masks_rest: ignore needs one)")
    key = {"base": read_json(base / MANIFEST).get("key"), "train_masks": s.train_masks,
           "choice": choice, "ids": ids, **({"rest": rest} if rest != "pseudo" else {}),
           **({"embedding": EMBED_LAYER} if choice == "typical" else {})}
    if distributed.is_main():
        write_mixed_labels(base, fd.train_all, ids, out, test=fd.test, key=key,
                           rest=rest)
    distributed.barrier()  # the folder is complete
    return out, TrainMasks(s.train_masks, choice, ids, n_eligible, str(out))
