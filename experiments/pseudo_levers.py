"""Pseudo-label levers on the defective TRAINING images of KolektorSDD (issue 25, item 1).

Each lever changes how a stored classifier's heat maps become pseudo-labels; each is scored
against the true masks of the fold's defective training images (never a test fold): pooled
defect IoU, and the paired bootstrap interval of (lever - baseline) over the images
(racam.evaluation.bootstrap.paired_bootstrap_iou_difference). The baseline is the config's own
rule (the `racam pseudo-labels` stage): the RA-CAM map at the input size, the guided filter,
bilinear resize to the original size, the `cam.pseudo_threshold` cut.

Levers:
- test-time augmentation: maps of flipped inputs (flipped back) and of inputs resized by 1.5x
  and 2x (the classifier is fully convolutional), averaged with the plain map;
- full resolution: the map of the image read at twice the config's size (the original pixels,
  not an enlarged half-size image), alone and averaged with the plain map;
- refinement with the image: SLIC superpixel averaging of the map (before the guided filter, or
  instead of it), and a random walk (skimage) that labels the band between the two Otsu
  thresholds from the confident pixels on either side.

Usage (classifiers trained first with `racam train-classifier ksdd-cpu --out RUNS`):

    PYTHONPATH=src OMP_NUM_THREADS=1 RACAM_DATA=/work/shared/data \
      python experiments/pseudo_levers.py RUNS --fold 0 [--set classifier.candidates=1]

Raw maps are kept in RUNS/levers/fold<F>.npz so that a second call only re-scores.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from racam.classifier import load_classifier
from racam.config import load_config
from racam.data import read_mask
from racam.evaluation.bootstrap import bootstrap_iou, paired_bootstrap_iou_difference
from racam.pseudo.guided import guided_refiner
from racam.pseudo.heatmaps import to_original_size
from racam.pseudo.otsu import otsu_threshold, pseudo_trimap
from racam.run_cam import build_run_cam
from racam.stages.folds import fold_datasets

#: raw map variants computed per image, at the config's input size
VARIANTS = ("id", "h", "v", "s1.5", "s2", "full")
#: map combinations scored (mean of the named variants)
COMBOS = {
    "baseline": ("id",),
    "flip h": ("id", "h"),
    "flip h+v": ("id", "h", "v"),
    "scales 1/1.5/2": ("id", "s1.5", "s2"),
    "scale 2 alone": ("s2",),
    "flips+scales": ("id", "h", "v", "s1.5", "s2"),
    "full res alone": ("full",),
    "full res + half": ("id", "full"),
}


def _flip(x: Tensor, dim: int) -> Tensor:
    return torch.flip(x, dims=(dim,))


def _resize(x: Tensor, size: tuple[int, int]) -> Tensor:
    """Bilinear resize of (B, C, H, W) to size = (H, W)."""
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


def raw_variants(cam: Callable[..., Tensor], images: Tensor, full: Tensor) -> dict[str, Tensor]:
    """Each variant's maps (B, H, W) at the size of ``images``; ``full`` is the same batch
    read at twice the size."""
    size = (images.shape[-2], images.shape[-1])

    def at(x: Tensor) -> Tensor:
        return _resize(cam(x, targets=1).detach().float()[:, None], size)[:, 0]

    out = {"id": cam(images, targets=1).detach().float(),
           "h": _flip(cam(_flip(images, -1), targets=1).detach().float(), -1),
           "v": _flip(cam(_flip(images, -2), targets=1).detach().float(), -2),
           "full": at(full)}
    for s in (1.5, 2.0):
        big = (round(size[0] * s), round(size[1] * s))
        out[f"s{s:g}"] = at(_resize(images, big))
    return out


def compute_maps(cfg_name: str, overrides: dict, runs: Path, fold: int
                 ) -> dict[str, np.ndarray]:
    """Raw variant maps of the fold's defective training images (cached in runs/levers)."""
    cache = runs / "levers" / f"fold{fold}.npz"
    if cache.exists():
        return dict(np.load(cache, allow_pickle=False))
    cfg = load_config(cfg_name, overrides)
    w, h = cfg.data.size
    cfg_full = load_config(cfg_name, {**overrides, "data.size": [2 * w, 2 * h]})
    ds = fold_datasets(cfg.data, fold, cfg.seed).train_all
    ds_full = fold_datasets(cfg_full.data, fold, cfg.seed).train_all
    ckpt = json.loads((runs / f"fold{fold}" / "classifier" / "result.json").read_text())
    model, _ = load_classifier(ckpt["checkpoint"])
    cam = build_run_cam(cfg, model.eval(), cfg.cam.method, cfg.cam.delta)
    idx = [i for i, y in enumerate(ds.labels) if y == 1]
    maps: dict[str, list[np.ndarray]] = {v: [] for v in VARIANTS}
    images, ids = [], []
    for k in range(0, len(idx), 2):
        chunk = idx[k:k + 2]
        x = torch.stack([ds[i].image for i in chunk])
        xf = torch.stack([ds_full[i].image for i in chunk])
        assert [ds[i].id for i in chunk] == [ds_full[i].id for i in chunk]
        for name, m in raw_variants(cam, x, xf).items():
            maps[name] += [a.numpy().astype(np.float16) for a in m]
        images += [a.numpy() for a in x]
        ids += [ds[i].id for i in chunk]
        print(f"fold {fold}: maps of {len(ids)}/{len(idx)} images", flush=True)
    masks = [read_mask(ds.records[i].mask_path) for i in idx]
    out = {**{f"map_{v}": np.stack(maps[v]) for v in VARIANTS},
           "images": np.stack(images), "ids": np.array(ids),
           "mask_shapes": np.array([m.shape for m in masks])}
    for i, m in zip(ids, masks):
        out[f"mask_{i}"] = m
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(cache, **out)
    return out


def slic_average(heat: np.ndarray, image: np.ndarray, n_segments: int = 1500) -> np.ndarray:
    """Mean of ``heat`` (H, W) over each SLIC superpixel of ``image`` (C, H, W)."""
    from skimage.segmentation import slic

    seg = slic(image.transpose(1, 2, 0).astype(np.float64), n_segments=n_segments,
               compactness=0.1, channel_axis=-1, start_label=0)
    sums = np.bincount(seg.ravel(), weights=heat.ravel().astype(np.float64))
    counts = np.bincount(seg.ravel())
    return (sums / np.maximum(counts, 1))[seg].astype(np.float32)


def random_walk_mask(heat: Tensor, image: np.ndarray, beta: float = 130.0) -> Tensor:
    """Mask of ``heat`` (H, W): above the second Otsu threshold is defect, below the first
    background, the band between them labelled by skimage's random walker on the image."""
    from skimage.segmentation import random_walker

    t1 = float(otsu_threshold(heat[None])[0])
    core, _ = pseudo_trimap(heat, "otsu2")
    seeds = np.zeros(heat.shape, dtype=np.int32)
    seeds[(heat <= t1).numpy()] = 1
    seeds[core.numpy()] = 2
    if not (seeds == 2).any() or not (seeds == 1).any() or (seeds > 0).all():
        return core
    grey = image.mean(axis=0).astype(np.float64)
    grey = (grey - grey.min()) / max(float(np.ptp(grey)), 1e-12)
    labels = random_walker(grey, seeds, beta=beta, mode="cg", tol=1e-3)
    return torch.from_numpy(labels == 2)


def counts(pred: np.ndarray, true: np.ndarray) -> list[int]:
    """``[tp, fp, fn]`` of a predicted mask against the true mask (same shape)."""
    t = true.astype(bool)
    return [int((pred & t).sum()), int((pred & ~t).sum()), int((~pred & t).sum())]


def to_mask(heat: Tensor, shape: tuple[int, int], rule: str) -> np.ndarray:
    """The pseudo-label of a map at input size: bilinear resize to ``shape`` = (H, W) of the
    original image, then ``rule`` (the pseudo-label stage's order)."""
    big = to_original_size(heat[None], (shape[1], shape[0]))[0]
    return pseudo_trimap(big, rule)[0].numpy()


def upsample_mask(mask: Tensor, shape: tuple[int, int]) -> np.ndarray:
    return F.interpolate(mask[None, None].float(), size=shape, mode="nearest")[0, 0].numpy() > 0.5


def score_fold(data: dict[str, np.ndarray], cfg_name: str, overrides: dict,
               refinements: bool = True) -> dict[str, np.ndarray]:
    """Per-image ``[tp, fp, fn]`` (N, 3) of every lever on one fold's cached maps."""
    cfg = load_config(cfg_name, overrides)
    c = cfg.cam
    guided = guided_refiner(c.guided_radius, c.guided_eps)
    rule = c.pseudo_threshold
    images = torch.from_numpy(data["images"])
    out: dict[str, list[list[int]]] = {}
    for n, image_id in enumerate(data["ids"]):
        true = data[f"mask_{image_id}"]
        shape = (int(true.shape[0]), int(true.shape[1]))
        img = images[n:n + 1]
        raw = {v: torch.from_numpy(data[f"map_{v}"][n].astype(np.float32)) for v in VARIANTS}
        refined = {}
        for name, parts in COMBOS.items():
            heat = torch.stack([raw[p] for p in parts]).mean(0)
            refined[name] = guided(heat[None], img)[0]
            out.setdefault(name, []).append(counts(to_mask(refined[name], shape, rule), true))
        if not refinements:
            continue
        base = raw["id"]
        sl = torch.from_numpy(slic_average(base.numpy(), data["images"][n]))
        out.setdefault("slic, then guided", []).append(
            counts(to_mask(guided(sl[None], img)[0], shape, rule), true))
        out.setdefault("slic instead of guided", []).append(counts(to_mask(sl, shape, rule), true))
        out.setdefault("no guided filter", []).append(counts(to_mask(base, shape, rule), true))
        rw = random_walk_mask(refined["baseline"], data["images"][n])
        out.setdefault("random walk in the otsu band", []).append(
            counts(upsample_mask(rw, shape), true))
    return {k: np.array(v) for k, v in out.items()}


def table(per_fold: dict[int, dict[str, np.ndarray]]) -> list[str]:
    """Markdown rows: pooled IoU per fold, and lever - baseline with its 95 % interval."""
    folds = sorted(per_fold)
    head = "| lever | " + " | ".join(f"fold {f} IoU | fold {f} minus baseline [95 %]"
                                       for f in folds) + " |"
    rows = [head, "| --- |" + " ---: | ---: |" * len(folds)]
    for name in per_fold[folds[0]]:
        cells = []
        for f in folds:
            a, b = per_fold[f][name], per_fold[f]["baseline"]
            iou = bootstrap_iou(a).estimate
            d = paired_bootstrap_iou_difference(a, b)
            cells += [f"{100 * iou:.2f}",
                      f"{100 * d.estimate:+.2f} [{100 * d.low:+.2f}, {100 * d.high:+.2f}]"]
        rows.append(f"| {name} | " + " | ".join(cells) + " |")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("runs", type=Path, help="output folder of racam train-classifier")
    ap.add_argument("--fold", type=int, action="append", required=True)
    ap.add_argument("--config", default="ksdd-cpu")
    ap.add_argument("--set", action="append", default=[], help="key=value (YAML value)")
    ap.add_argument("--tta-only", action="store_true",
                    help="score the map combinations only (no SLIC / random walk)")
    ap.add_argument("--pairs", nargs=2, action="append", default=[], metavar=("A", "B"),
                    help="also print lever A minus lever B, images of every fold pooled")
    args = ap.parse_args()
    import yaml
    overrides = {k: yaml.safe_load(v) for k, v in (s.split("=", 1) for s in args.set)}
    torch.set_grad_enabled(True)
    per_fold = {}
    for f in args.fold:
        data = compute_maps(args.config, overrides, args.runs, f)
        per_fold[f] = score_fold(data, args.config, overrides, not args.tta_only)
        n = len(data["ids"])
        print(f"fold {f}: {n} defective training images scored", flush=True)
    print("\n".join(table(per_fold)))
    for a, b in args.pairs:
        ca = np.concatenate([per_fold[f][a] for f in sorted(per_fold)])
        cb = np.concatenate([per_fold[f][b] for f in sorted(per_fold)])
        d = paired_bootstrap_iou_difference(ca, cb)
        print(f"folds {sorted(per_fold)} pooled: {a} {100 * bootstrap_iou(ca).estimate:.2f}, "
              f"{b} {100 * bootstrap_iou(cb).estimate:.2f}, {a} minus {b} "
              f"{100 * d.estimate:+.2f} [{100 * d.low:+.2f}, {100 * d.high:+.2f}]")


if __name__ == "__main__":
    main()
