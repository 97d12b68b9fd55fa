"""Pseudo-labels: Otsu masks of heat maps for the training images, written as PNG (PROTOCOL §6).

Defective training images get the Otsu mask of their heat map; defect-free ones an empty mask.
Masks are written at each image's original size as 0/255 PNGs under ``out_dir/masks`` (file name
= sample id with ``/`` replaced by ``__``), then ``manifest.json`` is written last and atomically:
a folder without a manifest is an unfinished run and is recomputed. Under ``torchrun`` each rank
computes and writes the masks of 1/N of the images (distinct files) and rank 0 writes the
manifest once every rank is done.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from racam import distributed
from racam.data.sample import Sample
from racam.io import atomic_write_json, read_json
from racam.pseudo.heatmaps import CamFn, iter_heatmaps
from racam.pseudo.otsu import pseudo_mask

MANIFEST = "manifest.json"


def mask_filename(sample_id: str) -> str:
    """File name of a sample's pseudo-label PNG."""
    return sample_id.replace("/", "__").replace("\\", "__") + ".png"


def _save_png(path: Path, mask: np.ndarray) -> None:
    tmp = path.with_suffix(".tmp.png")
    Image.fromarray(mask.astype(np.uint8) * 255).save(tmp)
    tmp.replace(path)


def write_pseudo_labels(cam: CamFn, dataset: Dataset, out_dir: Path, *, meta: dict[str, Any],
                        batch_size: int = 4, device: torch.device | str = "cpu",
                        progress: bool = True, threshold: str = "otsu") -> dict[str, Any]:
    """Write one pseudo-label mask per image of ``dataset`` and return the manifest.

    ``meta`` (method, delta, checkpoint, ...) is recorded in the manifest with the image list.
    ``threshold`` turns a map into a mask (:func:`racam.pseudo.otsu.pseudo_mask`: ``otsu``, the
    protocol, or ``otsu2``). Already-written masks are kept when the run resumes.
    """
    out_dir = Path(out_dir)
    manifest_path = out_dir / MANIFEST
    if manifest_path.exists():
        return read_json(manifest_path)
    masks_dir = out_dir / "masks"
    masks_dir.mkdir(parents=True, exist_ok=True)
    labels = list(dataset.labels)  # type: ignore[attr-defined]  # racam datasets have .labels
    records = dataset.records  # type: ignore[attr-defined]  # racam datasets have .records
    # rank 0's list: the other ranks may look after some masks of this run are written
    todo = distributed.broadcast([i for i, lab in enumerate(labels) if lab == 1 and not (
        masks_dir / mask_filename(records[i].id)).exists()])
    todo = distributed.shard(todo, block=batch_size)
    t0 = time.perf_counter()
    it = iter_heatmaps(cam, dataset, todo, batch_size=batch_size, device=device)
    if progress and distributed.is_main():
        from tqdm import tqdm
        it = tqdm(it, total=len(todo), desc="pseudo-labels", leave=False)
    for _, sample, heat, mask in it:
        if threshold != "otsu":
            mask = pseudo_mask(heat, threshold)
        _save_png(masks_dir / mask_filename(sample.id), mask.numpy())
    for i in distributed.shard([i for i, lab in enumerate(labels) if lab == 0]):
        path = masks_dir / mask_filename(records[i].id)
        if not path.exists():
            from racam.data import image_size
            width, height = image_size(records[i].image_path)
            _save_png(path, np.zeros((height, width), dtype=bool))
    images = [{"id": rec.id, "image": str(rec.image_path), "label": labels[i],
               "mask": f"masks/{mask_filename(rec.id)}"} for i, rec in enumerate(records)]
    distributed.barrier()  # every rank's masks are written
    manifest = {**meta, "num_images": len(images),
                "num_defective": int(sum(labels)), "seconds": round(time.perf_counter() - t0, 2),
                "images": images}
    if distributed.is_main():
        atomic_write_json(manifest_path, manifest)
    distributed.barrier()  # the manifest is written
    return manifest


class PseudoLabelDataset(Dataset):
    """Wraps a (non-augmented) dataset, replacing each mask by its pseudo-label.

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
        from racam.data import read_mask, resize_mask
        h, w = sample.image.shape[-2:]
        sample.mask = resize_mask(read_mask(path), (w, h))
        if self.augment:
            from racam.data.transforms import random_flips
            sample.image, sample.mask = random_flips(sample.image, sample.mask)
        sample.mask_path = str(path)
        return sample
