"""Pseudo-label rules of a folder run, scored on its defective TRAINING images (issue 29, item 2).

A stored folder run's kept classifier gives RA-CAM per-layer maps (S1..S5, each min-max
normalised) for every defective training image. Each rule turns them into a pseudo-label the way
the pseudo-label stage does (fusion, optional guided filter at input size, bilinear resize to the
original size, the threshold rule there):

    fusion   max | mean         threshold   otsu | otsu2         guided filter  off | on

Printed per rule, against the baseline (the run's own rule, or ``--baseline``):
- true-mask scores (report only, never a choice): pooled IoU, precision, recall, and the paired
  bootstrap interval of (rule - baseline) over the images;
- label-free statistics a folder run could compute: mean pseudo-label area, and the deletion
  score: the classifier's mean p(defect) once the pseudo-label's pixels are replaced by a
  heavily blurred copy of the image ("delete the defect and the classifier should stop seeing
  one"), and the same for a random box of the same area (the control).

Usage (a finished folder run; the same --set as the run):

    OMP_NUM_THREADS=1 python experiments/folder_pseudo_rules.py folder-example \
        --set data.root=/work/datasets/ksdd-folder --set classifier.epochs=3 \
        --out /work/runs/ksdd-folder-e3 [--baseline max/otsu/plain] [--json OUT.json]

Maps are cached in OUT/rules/fold<F>.npz, so a second call only re-scores.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from run_args import run_parser
from torch import Tensor

from racam.cam.maps import fuse_maps
from racam.classifier import load_classifier
from racam.data import read_mask
from racam.engine import load_run_config
from racam.evaluation.bootstrap import bootstrap_iou, paired_bootstrap_iou_difference
from racam.pseudo.deletion import blurred, random_box
from racam.pseudo.guided import guided_refiner
from racam.pseudo.heatmaps import to_original_size
from racam.pseudo.otsu import pseudo_trimap
from racam.run_cam import build_run_cam
from racam.stages.folds import fold_datasets

RULES = [dict(fusion=f, threshold=t, guided=g)
         for f, t, g in itertools.product(("max", "mean"), ("otsu", "otsu2"), (False, True))]


def rule_name(r: dict[str, Any]) -> str:
    return f"{r['fusion']}/{r['threshold']}/{'guided' if r['guided'] else 'plain'}"


def compute_maps(cfg: Any, out: Path, fold: int) -> dict[str, np.ndarray]:
    """Per-layer maps (N, L, H, W) of the fold's defective training images, cached."""
    cache = out / "rules" / f"fold{fold}.npz"
    if cache.exists():
        return dict(np.load(cache, allow_pickle=False))
    ds = fold_datasets(cfg.data, fold, cfg.seed).train_all
    ckpt = json.loads((out / f"fold{fold}" / "classifier" / "result.json").read_text())
    model, _ = load_classifier(ckpt["checkpoint"])
    cam = build_run_cam(cfg, model.eval(), "racam", cfg.cam.delta)
    idx = [i for i, y in enumerate(ds.labels) if y == 1 and ds.records[i].mask_path]
    layers, images, ids, masks = [], [], [], {}
    for k in range(0, len(idx), 2):
        chunk = idx[k:k + 2]
        x = torch.stack([ds[i].image for i in chunk])
        cam(x, targets=1)
        per = torch.stack(cam.layer_maps, dim=1)  # type: ignore[attr-defined]
        layers += [a.numpy().astype(np.float16) for a in per]
        images += [a.numpy() for a in x]
        for i in chunk:
            ids.append(ds[i].id)
            masks[f"mask_{len(ids) - 1}"] = read_mask(ds.records[i].mask_path)
        print(f"fold {fold}: maps of {len(ids)}/{len(idx)} images", flush=True)
    data = {"layers": np.stack(layers), "images": np.stack(images), "ids": np.array(ids), **masks}
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(cache, **data)
    return data


@torch.no_grad()
def p_defect(model: torch.nn.Module, x: Tensor) -> float:
    return float(model(x).float().softmax(dim=1)[0, 1])


def score(cfg: Any, out: Path, fold: int, data: dict[str, np.ndarray], deletion: int
          ) -> dict[str, dict[str, Any]]:
    """Per rule: per-image [tp, fp, fn] and areas; deletion scores of the first ``deletion``
    images (every ``len / deletion``-th image)."""
    ckpt = json.loads((out / f"fold{fold}" / "classifier" / "result.json").read_text())
    model, _ = load_classifier(ckpt["checkpoint"])
    model.eval()
    guided = guided_refiner(cfg.cam.guided_radius or 16, cfg.cam.guided_eps or 1e-4)
    res: dict[str, dict[str, Any]] = {rule_name(r): {"counts": [], "area": [], "del": [],
                                                     "ctrl": []} for r in RULES}
    base_p = []
    rng = np.random.default_rng(0)
    step = max(1, len(data["ids"]) // max(1, deletion))
    for n in range(len(data["ids"])):
        true = data[f"mask_{n}"]
        x = torch.from_numpy(data["images"][n])[None]
        blur = blurred(x)
        probe = n % step == 0 and len(base_p) < deletion
        if probe:
            base_p.append(p_defect(model, x))
        per = [torch.from_numpy(m.astype(np.float32))[None] for m in data["layers"][n]]
        for r in RULES:
            heat = fuse_maps(per, r["fusion"])
            if r["guided"]:
                heat = guided(heat, x)
            big = to_original_size(heat, (true.shape[1], true.shape[0]))[0]
            mask = pseudo_trimap(big, r["threshold"])[0]
            pred = mask.numpy()
            t = true.astype(bool)
            d = res[rule_name(r)]
            d["counts"].append([int((pred & t).sum()), int((pred & ~t).sum()),
                                int((~pred & t).sum())])
            area = float(pred.mean())
            d["area"].append(area)
            if not probe:
                continue
            small = F.interpolate(mask[None, None].float(), size=x.shape[-2:], mode="nearest")
            d["del"].append(p_defect(model, torch.where(small > 0.5, blur, x)))
            box = random_box(tuple(x.shape[-2:]), area, rng)[None, None]
            d["ctrl"].append(p_defect(model, torch.where(box, blur, x)))
        if n % 10 == 0:
            print(f"fold {fold}: scored {n + 1}/{len(data['ids'])}", flush=True)
    for d in res.values():
        d["counts"] = np.array(d["counts"])
    res["_base_p"] = {"p": base_p}
    return res


def table(res: dict[str, dict[str, Any]], baseline: str) -> list[str]:
    rows = ["| rule | IoU | P | R | minus baseline [95 %] | area % | p after deletion | "
            "p after a random box of that area |", "| --- |" + " ---: |" * 7]
    b = res[baseline]["counts"]
    for name, d in res.items():
        if name.startswith("_"):
            continue
        c = d["counts"]
        tp, fp, fn = c.sum(axis=0)
        diff = paired_bootstrap_iou_difference(c, b)
        rows.append(
            f"| {name} | {100 * bootstrap_iou(c).estimate:.2f} | {100 * tp / max(1, tp + fp):.1f}"
            f" | {100 * tp / max(1, tp + fn):.1f} | {100 * diff.estimate:+.2f} "
            f"[{100 * diff.low:+.2f}, {100 * diff.high:+.2f}] | {100 * np.mean(d['area']):.2f} | "
            f"{np.mean(d['del']):.3f} | {np.mean(d['ctrl']):.3f} |")
    return rows


def main() -> None:
    ap = run_parser(__doc__)
    ap.add_argument("--baseline", help="rule the others are compared with, e.g. max/otsu/plain "
                    "(default: the config's own)")
    ap.add_argument("--deletion", type=int, default=1000,
                    help="deletion scores on this many images (evenly spaced)")
    args = ap.parse_args()
    cfg = load_run_config(args.config, args.set_, args.out)
    torch.set_grad_enabled(True)
    data = compute_maps(cfg, args.out, args.fold)
    res = score(cfg, args.out, args.fold, data, args.deletion)
    c = cfg.cam
    baseline = args.baseline or rule_name(dict(fusion=c.fusion, threshold=c.pseudo_threshold,
                                               guided=c.guided_radius is not None))
    print(f"{len(data['ids'])} defective training images ({len(res['_base_p']['p'])} probed "
          "by deletion); classifier mean p(defect) "
          f"{np.mean(res['_base_p']['p']):.3f}; baseline {baseline}")
    print("\n".join(table(res, baseline)))
    if args.json:
        args.json.write_text(json.dumps({k: {kk: np.asarray(vv).tolist() for kk, vv in v.items()}
                                         for k, v in res.items()}))


if __name__ == "__main__":
    main()
