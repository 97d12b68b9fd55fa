"""The training labels of ``segmentation.train_masks`` (mixed supervision) for one fold: the
labels a segmentation network would learn (the pseudo-labels, or a self-training round's
masks) with the chosen defective training images' true masks in place of theirs
(:mod:`racam.pseudo.mixed`). Stored next to those labels as
``fold<k>/pseudo/<their folder>-mixed-<tag>/`` (:func:`racam.layout.train_masks_tag`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from racam import distributed
from racam.errors import ConfigError
from racam.io import read_json
from racam.layout import train_masks_tag
from racam.pseudo.labels import MANIFEST
from racam.pseudo.mixed import TrainMasks, choose_images, eligible_ids, write_mixed_labels
from racam.stages.context import StageContext

#: ``fold -> image ids, best first``: the label-next list of ``train_masks_choice: ranked``.
Ranking = Callable[[int], list[str]]


def mixed_labels(ctx: StageContext, fold: int, base: Path,
                 ranking: Ranking | None = None) -> tuple[Path, TrainMasks]:
    """The folder of the fold's mixed labels built from the labels in ``base`` (written once;
    rank 0 writes) and which images carry a true mask. ``ranking`` gives the list of
    ``train_masks_choice: ranked``."""
    s = ctx.cfg.segmentation
    tag = train_masks_tag(ctx.cfg)
    assert tag is not None, "segmentation.train_masks: none trains on the labels themselves"
    fd = ctx.data(fold)
    eligible = eligible_ids(fd.train_all)
    choice = "all" if s.train_mask_count() is None else s.train_masks_choice
    if choice == "ranked" and ranking is None:
        raise ConfigError("segmentation.train_masks_choice: ranked needs the label-next list "
                          "of the run with train_masks: none, which this engine lacks")
    order = ranking(fold) if choice == "ranked" and ranking is not None else None
    ids = choose_images(eligible, s.train_masks, choice, seed=ctx.cfg.seed + fold,
                        ranking=order)
    out = base.with_name(f"{base.name}-mixed-{tag}")
    ctx.log(f"[racam] fold {fold}: {len(ids)} of {len(eligible)} defective training images "
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
           "choice": choice, "ids": ids, **({"rest": rest} if rest != "pseudo" else {})}
    if distributed.is_main():
        write_mixed_labels(base, fd.train_all, ids, out, test=fd.test, key=key,
                           rest=rest)
    distributed.barrier()  # the folder is complete
    return out, TrainMasks(s.train_masks, choice, ids, len(eligible), str(out))
