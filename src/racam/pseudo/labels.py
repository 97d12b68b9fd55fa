"""Pseudo-labels: Otsu masks of heat maps for the training images, written as PNG.

Defective training images get the Otsu mask of their heat map; defect-free ones an empty mask.
Masks are written at each image's original size as 0/255 PNGs under ``masks/`` (file name
= sample id with ``/`` replaced by ``__``) of a work folder ``<out_dir>.partial`` holding
``key.json`` (the stage key the masks are computed under); ``manifest.json`` is written last, and
the work folder is then renamed to ``out_dir``. An interrupted run resumes the work folder only
under the same key (otherwise it starts it again), so masks of two configs are never mixed, and
a folder named ``out_dir`` is always complete. Rules with an uncertain band
(``band``) also write the band as 0/255 PNGs under ``ignore/``; training leaves those pixels out
of the loss.
Under ``torchrun`` each rank computes and writes the masks of 1/N of the images (distinct
files) and rank 0 writes the manifest and renames the folder once every rank is done.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset

from racam import distributed
from racam.data.decoded import decoded, file_id
from racam.data.sample import Sample
from racam.errors import ConfigError
from racam.io import atomic_write_json, read_json
from racam.pseudo.heatmaps import CamFn, iter_heatmaps
from racam.pseudo.otsu import pseudo_trimap

MANIFEST = "manifest.json"
IGNORE = "ignore"  # sub-folder of the ignore bands
KEY_FILE = "key.json"
PARTIAL_SUFFIX = ".partial"


def mask_filename(sample_id: str) -> str:
    """File name of a sample's pseudo-label PNG."""
    return sample_id.replace("/", "__").replace("\\", "__") + ".png"


def save_mask_png(path: Path, mask: np.ndarray) -> None:
    """A bool mask as a 0/255 PNG at ``path``, written whole (a temporary file renamed)."""
    tmp = path.with_suffix(".tmp.png")
    Image.fromarray(mask.astype(np.uint8) * 255).save(tmp)
    tmp.replace(path)


def save_mask(folder: Path, sample_id: str, mask: Tensor, ignore: Tensor | None) -> None:
    """Write a sample's pseudo-label (and its ignore band) as 0/255 PNGs under ``folder``'s
    ``masks/`` (and ``ignore/``); the band first, so a mask on disk has its band."""
    if ignore is not None:
        (folder / IGNORE).mkdir(parents=True, exist_ok=True)
        save_mask_png(folder / IGNORE / mask_filename(sample_id), ignore.numpy())
    (folder / "masks").mkdir(parents=True, exist_ok=True)
    save_mask_png(folder / "masks" / mask_filename(sample_id), mask.numpy())


def _work_dir(out_dir: Path, key: Any) -> Path:
    """``<out_dir>.partial``, emptied unless it holds masks computed under ``key``."""
    import shutil

    work = out_dir.with_name(out_dir.name + PARTIAL_SUFFIX)
    key_path = work / KEY_FILE
    if work.exists() and not (key_path.exists() and read_json(key_path) == key):
        shutil.rmtree(work)
    if not work.exists():
        (work / "masks").mkdir(parents=True)
        atomic_write_json(key_path, key)
    return work


def iter_pseudo_masks(cam: CamFn, dataset: Dataset, indices: Sequence[int], *,
                      threshold: str | Callable[[Tensor], Tensor] = "otsu",
                      batch_size: int = 4,
                      device: torch.device | str = "cpu",
                      refine: Callable[[Tensor, Tensor], Tensor] | None = None
                      ) -> Iterator[tuple[Sample, Tensor, Tensor | None]]:
    """Yield ``(sample, mask, ignore band or None)`` at original size for each of ``indices``:
    the heat map of :func:`iter_heatmaps` (``refine`` applied) thresholded by ``threshold``:
    a rule of :func:`racam.pseudo.otsu.pseudo_trimap`, or a function ``map -> bool mask``
    (a segmentation network's cut, :func:`racam.segmentation.mask_cut.cut_mask`)."""
    for _, sample, heat, mask in iter_heatmaps(cam, dataset, indices, batch_size=batch_size,
                                               device=device, refine=refine):
        ignore = None
        if callable(threshold):
            mask = threshold(heat)
        elif threshold != "otsu":
            mask, ignore = pseudo_trimap(heat, threshold)
        yield sample, mask, ignore


def write_pseudo_labels(cam: CamFn, dataset: Dataset, out_dir: Path, *, meta: dict[str, Any],
                        batch_size: int = 4, device: torch.device | str = "cpu",
                        progress: bool = True,
                        threshold: str | Callable[[Tensor], Tensor] = "otsu",
                        key: Any = None,
                        refine: Callable[[Tensor, Tensor], Tensor] | None = None
                        ) -> dict[str, Any]:
    """Write one pseudo-label mask per image of ``dataset`` and return the manifest.

    ``meta`` (method, delta, checkpoint, ...) is recorded in the manifest with the image list,
    and ``key`` (JSON data: everything the masks depend on) as ``"key"``. ``threshold`` turns a
    map into a mask (:func:`racam.pseudo.otsu.pseudo_trimap`: ``otsu``, the protocol, ``otsu2``
    or ``band``; or a function, see :func:`iter_pseudo_masks`); ``refine`` changes the maps
    first (:func:`iter_heatmaps`). Masks already
    written under the same key are kept when the run resumes (see the module docstring). A
    finished ``out_dir`` is returned as it is when its manifest has the same
    key (or none, written before keys were kept), else it is a :class:`ConfigError`.
    """
    import json
    import shutil

    out_dir = Path(out_dir)
    key = json.loads(json.dumps(key, default=str))  # as stored
    manifest_path = out_dir / MANIFEST
    if manifest_path.exists():
        done = read_json(manifest_path)
        if "key" in done and done["key"] != key:
            raise ConfigError(f"{out_dir}: pseudo-labels computed with a different config; use "
                              "another output folder or delete that folder to recompute")
        return done
    if distributed.is_main():
        if out_dir.exists():  # no manifest: empty, or unfinished by an earlier racam version
            if {p.name for p in out_dir.iterdir()} - {"masks", IGNORE}:
                raise ConfigError(f"{out_dir}: exists, has no {MANIFEST} and holds other files "
                                  "than masks/ and ignore/; not a pseudo-label folder, delete or "
                                  "move it")
            shutil.rmtree(out_dir)
        _work_dir(out_dir, key)
    distributed.barrier()  # the work folder is ready
    work = out_dir.with_name(out_dir.name + PARTIAL_SUFFIX)
    masks_dir = work / "masks"
    labels = list(dataset.labels)  # type: ignore[attr-defined]  # racam datasets have .labels
    records = dataset.records  # type: ignore[attr-defined]  # racam datasets have .records
    # rank 0's list: the other ranks may look after some masks of this run are written
    todo = distributed.broadcast([i for i, lab in enumerate(labels) if lab == 1 and not (
        masks_dir / mask_filename(records[i].id)).exists()])
    todo = distributed.shard(todo, block=batch_size)
    t0 = time.perf_counter()
    it = iter_pseudo_masks(cam, dataset, todo, threshold=threshold, batch_size=batch_size,
                           device=device, refine=refine)
    if progress and distributed.is_main():
        from tqdm import tqdm
        it = tqdm(it, total=len(todo), desc="pseudo-labels", leave=False)
    for sample, mask, ignore in it:
        save_mask(work, sample.id, mask, ignore)
    for i in distributed.shard([i for i, lab in enumerate(labels) if lab == 0]):
        path = masks_dir / mask_filename(records[i].id)
        if not path.exists():
            from racam.data import image_size
            width, height = image_size(records[i].image_path)
            save_mask_png(path, np.zeros((height, width), dtype=bool))
    images = [{"id": rec.id, "image": str(rec.image_path), "label": labels[i],
               "mask": f"masks/{mask_filename(rec.id)}"} for i, rec in enumerate(records)]
    distributed.barrier()  # every rank's masks are written
    manifest = {**meta, "num_images": len(images),
                "num_defective": int(sum(labels)), "seconds": round(time.perf_counter() - t0, 2),
                "images": images, "key": key}
    if distributed.is_main():
        atomic_write_json(work / MANIFEST, manifest)
        (work / KEY_FILE).unlink()
        work.rename(out_dir)
    distributed.barrier()  # the folder is complete
    return manifest


def _read_pseudo(path: Path, ignore_path: Path, size: tuple[int, int]
                 ) -> tuple[Tensor, Tensor | None]:
    """A pseudo-label and its ignore band (``None`` without one) resized to ``size``."""
    from racam.data import read_mask, resize_mask

    mask = resize_mask(read_mask(path), size)
    return mask, resize_mask(read_mask(ignore_path), size) if ignore_path.exists() else None


class PseudoLabelDataset(Dataset):
    """Wraps a (non-augmented) dataset, replacing each mask by its pseudo-label (and setting
    ``Sample.ignore`` where the pseudo-labels have an ignore band).

    The pseudo-label is resized to the sample's size with nearest neighbour; with
    ``augment=True`` random horizontal and vertical flips are applied to image and mask together.
    """

    def __init__(self, base: Dataset, labels_dir: Path, augment: bool = False) -> None:
        self.base = base
        self.augment = augment
        self.labels_dir = Path(labels_dir)
        if not (self.labels_dir / MANIFEST).exists():
            from racam.errors import DataError
            raise DataError(f"{self.labels_dir}: no {MANIFEST}; pseudo-labels are incomplete")
        self.records = base.records  # type: ignore[attr-defined]  # racam datasets have .records
        self.labels = base.labels  # type: ignore[attr-defined]  # racam datasets have .labels

    def __len__(self) -> int:
        return len(self.base)  # type: ignore[arg-type]  # torch's Dataset type has no __len__

    def __getitem__(self, index: int) -> Sample:
        sample: Sample = self.base[index]
        path = self.labels_dir / "masks" / mask_filename(sample.id)
        h, w = sample.image.shape[-2:]
        ignore_path = self.labels_dir / IGNORE / mask_filename(sample.id)
        key = ("pseudo", file_id(path), file_id(ignore_path) if ignore_path.exists() else "-",
               (w, h))
        mask, ignore = decoded(key, lambda: _read_pseudo(path, ignore_path, (w, h)))
        if self.augment:  # flip the mask and its band together
            from racam.data.transforms import random_flips
            both = mask[None] if ignore is None else torch.stack([mask, ignore])
            sample.image, flipped = random_flips(sample.image, both)
            assert flipped is not None
            mask, ignore = flipped[0], (None if ignore is None else flipped[1])
        sample.mask, sample.ignore = mask, ignore
        sample.mask_path = str(path)
        return sample
