"""Names inside a run folder, shared by training (:mod:`racam.stages`) and by the models'
users (:mod:`racam.deploy`): ``fold<k>/classifier``,
``fold<k>/pseudo/<pseudo key>``, ``fold<k>/segmentation/<segmentation tag>``."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from racam.cam.registry import method_key, method_options
from racam.config import DataConfig, RunConfig
from racam.data import registry

__all__ = ["fold_list", "in_run_folder", "pseudo_key", "scales_tag", "segmentation_tag",
           "train_masks_tag"]

_FOLD = re.compile(r"fold\d+")


def in_run_folder(stored: str, out: Path) -> str:
    """A file path a stage stored (absolute, as written), read in the run folder ``out``: its
    part from the last ``fold<k>`` folder on, under ``out``, when that file exists there (the
    run's own file, also after the folder was moved or copied: a copy never reads the files of
    the folder it was copied from, which may have been trained again since); else ``stored``
    unchanged (a path without a ``fold<k>`` part, or a file the run lacks: loading it names
    it)."""
    path = Path(stored)
    if not path.is_absolute():
        return stored
    for i in range(len(path.parts) - 1, -1, -1):
        if _FOLD.fullmatch(path.parts[i]):
            found = Path(out, *path.parts[i:])
            return str(found) if found.exists() else stored
    return stored


def scales_tag(scales: list[float], flips: list[str]) -> str:
    """File-name suffix of the heat maps' input scales and flips (``cam.scales``,
    ``cam.flips``, :mod:`racam.pseudo.tta`): ``""`` at their defaults (earlier names stay
    valid), else ``-s<scales><flips>``, e.g. ``-s2`` or ``-s1_2h``."""
    if list(scales) == [1.0] and not flips:
        return ""
    return "-s" + "_".join(f"{s:g}" for s in scales) + "".join(flips)


def pseudo_key(cfg: RunConfig, scales: Sequence[float] | None = None) -> str:
    """File-name key of the config's pseudo-label method (:func:`method_key`, plus the threshold
    rule when it is not ``otsu``); also names the segmentation folder ``<arch>-<key>``. With
    ``cam.scale_candidates`` it names them (``-sc1_2``; ``-sm1_2`` with ``cam.scale_rule:
    mean``), or the input ``scales`` given (those whose maps are averaged); ``-gp`` marks
    ``cam.good_prior``."""
    c = cfg.cam
    key = method_key(c.method, c.delta, **method_options(c.method, c.weighting, c.fgbp_head))
    if c.guided_radius is not None:
        key += f"-g{c.guided_radius}e{c.guided_eps:g}"
    if c.good_prior:
        key += "-gp"
    if scales is not None:
        key += scales_tag(list(scales), c.flips)
    elif c.scale_candidates:
        key += ("-sm" if c.scale_rule == "mean" else "-sc") + "_".join(
            f"{s:g}" for s in c.scale_candidates) + "".join(c.flips)
    else:
        key += scales_tag(c.scales, c.flips)
    return key if c.pseudo_threshold == "otsu" else f"{key}-{c.pseudo_threshold}"


def train_masks_tag(cfg: RunConfig) -> str | None:
    """How ``segmentation.train_masks`` names folders: ``None`` for ``none`` (names as before
    the key existed), ``all``, or ``<N>-<choice>`` (``random``, ``ranked``, ``typical``);
    ``-draw<seed>`` added with ``train_masks_seed`` (with a count), ``-restignore`` with
    ``train_masks_rest: ignore``."""
    s = cfg.segmentation
    if s.train_masks == "none":
        return None
    tag = s.train_masks if s.train_masks == "all" else f"{s.train_masks}-{s.train_masks_choice}"
    if s.train_masks != "all" and s.train_masks_seed is not None:
        tag += f"-draw{s.train_masks_seed}"
    return tag + ("-restignore" if s.train_masks_rest == "ignore" else "")


def segmentation_tag(cfg: RunConfig, arch: str | None = None, source: str = "pseudo",
                     round: int | None = None) -> str:
    """Folder name of a segmentation network under ``fold<k>/segmentation/``: ``<arch>-true``,
    ``<arch>-<pseudo key>`` or, for self-training round ``r > 0``, ``<arch>-<pseudo key>-st<r>``
    (``round=None``: the config's last round, ``segmentation.self_training``), followed by
    ``-<mask cut>`` when its labels were cut by another ``segmentation.mask_cut`` than
    ``half`` (``...-st1-foreground_otsu``); with true masks
    in training (:func:`train_masks_tag`) ``-tm<tag>`` follows the pseudo key
    (``unet-racam-d50-tm5-ranked``)."""
    arch = arch or cfg.segmentation.arch
    if source == "true":
        return f"{arch}-true"
    r = cfg.segmentation.self_training if round is None else round
    tm = train_masks_tag(cfg)
    cut = cfg.segmentation.mask_cut
    return (f"{arch}-{pseudo_key(cfg)}" + (f"-tm{tm}" if tm else "")
            + (f"-st{r}" if r else "") + (f"-{cut}" if r and cut != "half" else ""))


def fold_list(cfg: DataConfig) -> list[int]:
    """Folds to run (the dataset's :meth:`~racam.data.spec.DatasetSpec.folds`): ``cfg.folds``
    for KolektorSDD, ``[0]`` for the single-split datasets."""
    return registry.get(cfg.dataset).folds(cfg)
