"""Does a label-free score tell which input scale gives the better pseudo-labels? (issue 29)

``cam.scale_candidates`` keeps the input scale whose pseudo-labels mark the least of the
defective training images. This script puts that area next to the deletion check
(:mod:`racam.pseudo.deletion`: the classifier's p(defect) once the labels' pixels are blurred
away, and once a random box of the same area is) for each scale, on one stored classifier
checkpoint, with the labels' IoU against the true masks (scored only, never a choice).

    OMP_NUM_THREADS=1 python experiments/scale_deletion.py folder-example \
        --set data.root=/work/datasets/bsdata-folder --out /work/runs/any \
        --checkpoint RUN/fold0/classifier/best.pt --scales 1 2 [--images 60]

``--images N`` scores N evenly spaced defective training images (the same ones at each scale).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from run_args import run_parser

from racam.classifier import load_classifier
from racam.data import read_mask
from racam.engine import load_run_config
from racam.evaluation.bootstrap import bootstrap_iou, paired_bootstrap_iou_difference
from racam.pseudo.deletion import blurred, random_box
from racam.pseudo.labels import iter_pseudo_masks
from racam.run_cam import build_run_cam
from racam.stages.folds import fold_datasets


@torch.no_grad()
def p_defect(model: torch.nn.Module, x: torch.Tensor) -> float:
    return float(model(x).float().softmax(dim=1)[0, 1])


def score_scale(cfg: Any, model: torch.nn.Module, ds: Any, idx: list[int], scale: float
                ) -> dict[str, list[Any]]:
    """Per image: [tp, fp, fn], area, p(defect) as is, labels deleted, random box deleted."""
    cam = build_run_cam(cfg, model, cfg.cam.method, cfg.cam.delta, scales=[scale])
    by_id = {ds.records[i].id: ds.records[i] for i in idx}
    rows: dict[str, list[Any]] = {"counts": [], "area": [], "p": [], "deleted": [], "box": []}
    rng = np.random.default_rng(0)
    for sample, mask, _ in iter_pseudo_masks(cam, ds, idx, threshold=cfg.cam.pseudo_threshold,
                                             batch_size=cfg.cam.batch_size):
        pred = mask.numpy().astype(bool)
        true = read_mask(by_id[sample.id].mask_path).astype(bool)
        rows["counts"].append([int((pred & true).sum()), int((pred & ~true).sum()),
                               int((~pred & true).sum())])
        x = sample.image[None]
        small = F.interpolate(mask[None, None].float(), size=x.shape[-2:], mode="nearest") > 0.5
        area = float(small.float().mean())
        box = random_box(tuple(x.shape[-2:]), area, rng)[None, None]
        blur = blurred(x)
        rows["area"].append(float(pred.mean()))
        rows["p"].append(p_defect(model, x))
        rows["deleted"].append(p_defect(model, torch.where(small, blur, x)))
        rows["box"].append(p_defect(model, torch.where(box, blur, x)))
    return rows


def main() -> None:
    ap = run_parser(__doc__)
    ap.add_argument("--checkpoint", type=Path, required=True)
    ap.add_argument("--scales", type=float, nargs="+", default=[1.0, 2.0])
    ap.add_argument("--images", type=int, help="evenly spaced defective training images")
    args = ap.parse_args()
    cfg = load_run_config(args.config, args.set_, args.out)
    ds = fold_datasets(cfg.data, args.fold, cfg.seed).train_all
    idx = [i for i, y in enumerate(ds.labels) if y == 1 and ds.records[i].mask_path]
    if args.images and args.images < len(idx):
        idx = [idx[int(k)] for k in np.linspace(0, len(idx) - 1, args.images).round()]
    model, _ = load_classifier(args.checkpoint)
    model.eval()
    torch.set_grad_enabled(True)
    res = {s: score_scale(cfg, model, ds, idx, s) for s in args.scales}
    base = np.array(res[args.scales[0]]["counts"])
    print(f"{len(idx)} defective training images; classifier {args.checkpoint}")
    print("| scale | area % | IoU | minus first scale [95 %] | p as is | p, labels deleted | "
          "p, box deleted |\n| ---: |" + " ---: |" * 6)
    for s, r in res.items():
        c = np.array(r["counts"])
        d = paired_bootstrap_iou_difference(c, base)
        print(f"| {s:g} | {100 * np.mean(r['area']):.2f} | {100 * bootstrap_iou(c).estimate:.2f} "
              f"| {100 * d.estimate:+.2f} [{100 * d.low:+.2f}, {100 * d.high:+.2f}] | "
              f"{np.mean(r['p']):.3f} | {np.mean(r['deleted']):.3f} | {np.mean(r['box']):.3f} |")
    if args.json:
        args.json.write_text(json.dumps({str(s): r for s, r in res.items()}))


if __name__ == "__main__":
    main()
