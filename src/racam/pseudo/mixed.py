"""Mixed supervision (``segmentation.train_masks``): training labels that are the pseudo-labels,
except for chosen defective training images whose true mask replaces their pseudo-label.

:func:`choose_images` picks the images (``all`` of those with a usable true mask, ``N`` of
them at random, seeded, the top ``N`` of a ranking such as ``fold<k>/label-next.csv``, or
``N`` typical and diverse ones of their embeddings, :mod:`racam.pseudo.typical`);
:func:`write_mixed_labels` writes the labels in the layout
:class:`racam.pseudo.labels.PseudoLabelDataset` reads (0/255 PNGs at each image's original
size under ``masks/``; the true masks read as :meth:`racam.data.io.RecordDataset.true_mask`
reads them, at the same size), built in ``<out_dir>.partial``, ``manifest.json`` (with
``true_mask_ids``) written last, then renamed into place, so a folder named ``out_dir`` is
complete. Defect-free images keep their (empty) pseudo-label.

A fold's held-out test images never give a mask to training: :func:`check_held_out` refuses
(:class:`HeldOutLeak`) a chosen image that is not a training image or shares an id, image or
mask file with a test image, and :func:`write_mixed_labels` calls it before writing anything.
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from racam.errors import ConfigError
from racam.io import atomic_write_json, read_json
from racam.pseudo.labels import IGNORE, MANIFEST, PARTIAL_SUFFIX, mask_filename, save_mask_png
from racam.pseudo.typical import choose_typical

__all__ = ["Embed", "HeldOutLeak", "TrainMasks", "check_held_out", "choose_images",
           "eligible_ids", "write_mixed_labels"]

#: ``ids -> (len(ids), d)`` embeddings, one row per id in that order (``typical``'s points).
Embed = Callable[[list[str]], np.ndarray]


class HeldOutLeak(AssertionError):
    """A test image (or a file of one) was about to give its mask to training: a bug, never
    a user's input (the splits are disjoint)."""


@dataclasses.dataclass(frozen=True)
class TrainMasks:
    """Which training images of a fold learned from their true mask: ``setting``
    (``segmentation.train_masks``: ``all`` or ``N``), ``choice`` (``all``, ``random``,
    ``ranked`` or ``typical``), ``ids`` (sorted), ``eligible`` (defective training images with
    a usable true mask) and ``folder`` (the mixed labels)."""

    setting: str
    choice: str
    ids: list[str]
    eligible: int
    folder: str

    def to_json(self) -> dict[str, Any]:
        return {"setting": self.setting, "choice": self.choice, "count": len(self.ids),
                "ids": list(self.ids), "eligible": self.eligible, "folder": self.folder}

    @classmethod
    def from_json(cls, v: dict[str, Any]) -> TrainMasks:
        return cls(str(v["setting"]), str(v["choice"]), list(v.get("ids", [])),
                   int(v.get("eligible", 0)), str(v.get("folder", "")))


def eligible_ids(dataset: Any) -> list[str]:
    """Ids of the defective images of ``dataset`` with a usable true mask file (dataset
    order): the only images a true mask can be given to."""
    return [rec.id for rec, label in zip(dataset.records, dataset.labels)
            if label == 1 and rec.mask_path is not None and rec.mask_usable]


def choose_images(eligible: Sequence[str], setting: str, choice: str, *, seed: int,
                  ranking: Sequence[str] | None = None,
                  embed: Embed | None = None) -> list[str]:
    """The ids (sorted) that get their true mask: every one of ``eligible`` for ``all``; for
    ``N``, ``N`` of them drawn without replacement by ``numpy.random.default_rng(seed)`` from
    the sorted ids (``random``), the first ``N`` of ``ranking`` that are eligible
    (``ranked``), or :func:`~racam.pseudo.typical.choose_typical` (``random_state=seed``) of
    ``embed`` of the sorted ids (``typical``); fewer when fewer are eligible."""
    pool = sorted(set(eligible))
    if setting == "all":
        return pool
    n = min(int(setting), len(pool))
    if choice == "random":
        picked = np.random.default_rng(seed).choice(len(pool), size=n, replace=False)
        return sorted(pool[int(i)] for i in picked)
    if choice == "typical" and embed is not None:
        if n == len(pool):  # every one: no embedding needed
            return pool
        return sorted(pool[i] for i in choose_typical(embed(pool), n, seed=seed))
    if choice != "ranked" or ranking is None:
        raise ValueError(f"choice {choice!r} needs a ranking" if choice == "ranked"
                         else f"choice {choice!r} needs embeddings" if choice == "typical"
                         else f"unknown choice {choice!r}")
    allowed = set(pool)
    return sorted([i for i in ranking if i in allowed][:n])


def check_held_out(ids: Sequence[str], train: Any, test: Any) -> None:
    """Raise :class:`HeldOutLeak` when one of ``ids`` is not an image of ``train`` or shares
    its id, image file or mask file with an image of ``test``."""
    def files(rec: Any) -> set[str]:
        return {str(Path(p).resolve()) for p in (rec.image_path, rec.mask_path)
                if p is not None}

    by_id = {rec.id: rec for rec in train.records}
    test_ids = {rec.id for rec in test.records}
    test_files = set().union(*(files(rec) for rec in test.records))
    leaked = [i for i in ids
              if i not in by_id or i in test_ids or files(by_id[i]) & test_files]
    if leaked:
        raise HeldOutLeak(f"true masks of {leaked} would enter training, but they are not "
                          "training images of this fold or belong to its test images")


def write_mixed_labels(base_dir: Path, train: Any, ids: Sequence[str], out_dir: Path, *,
                       test: Any, key: Any, rest: str = "pseudo") -> dict[str, Any]:
    """Write the labels of ``train`` into ``out_dir``: the true mask of each image of ``ids``
    (:meth:`~racam.data.io.RecordDataset.true_mask`), the labels of ``base_dir`` (masks and
    ignore bands) for the others (``rest="ignore"``: a defective image without a true mask
    gets an empty mask whose every pixel is in its ignore band); returns the manifest
    (``base_dir``'s, with ``base``,
    ``true_mask_ids``, a ``true_mask`` flag per image and ``key``). A finished ``out_dir`` is
    returned as it is under the same ``key`` and refused (:class:`ConfigError`) under another.
    """
    import json

    check_held_out(ids, train, test)
    key = json.loads(json.dumps(key, default=str))  # as stored
    out_dir = Path(out_dir)
    if (out_dir / MANIFEST).exists():
        done = read_json(out_dir / MANIFEST)
        if done.get("key") != key:
            raise ConfigError(f"{out_dir}: mixed training labels written with other images or "
                              "pseudo-labels; use another output folder or delete that folder")
        return done
    if out_dir.exists():
        raise ConfigError(f"{out_dir}: exists without {MANIFEST}; not racam's mixed labels, "
                          "delete or move it")
    work = out_dir.with_name(out_dir.name + PARTIAL_SUFFIX)
    if work.exists():  # an interrupted call's (racam's own) work folder
        shutil.rmtree(work)
    (work / "masks").mkdir(parents=True)
    chosen = set(ids)
    for i, rec in enumerate(train.records):
        name = mask_filename(rec.id)
        if rec.id in chosen:
            save_mask_png(work / "masks" / name, train.true_mask(i))
            continue
        if rest == "ignore" and train.labels[i] == 1:
            shape = np.asarray(Image.open(base_dir / "masks" / name)).shape[:2]
            (work / IGNORE).mkdir(exist_ok=True)
            save_mask_png(work / IGNORE / name, np.ones(shape, dtype=bool))
            save_mask_png(work / "masks" / name, np.zeros(shape, dtype=bool))
            continue
        shutil.copyfile(base_dir / "masks" / name, work / "masks" / name)
        if (base_dir / IGNORE / name).exists():
            (work / IGNORE).mkdir(exist_ok=True)
            shutil.copyfile(base_dir / IGNORE / name, work / IGNORE / name)
    base = read_json(base_dir / MANIFEST)
    manifest = {**{k: v for k, v in base.items() if k not in ("key", "images")},
                "base": str(base_dir), "true_mask_ids": sorted(chosen),
                "images": [{**e, "true_mask": e["id"] in chosen} for e in base["images"]],
                "key": key}
    atomic_write_json(work / MANIFEST, manifest)
    work.rename(out_dir)
    return manifest
