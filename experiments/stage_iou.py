"""Diagnostic: CAM quality of each VGG16 stage map (S1..S5) and of max / mean fusion.

For a finished run folder (``racam run`` / ``racam reproduce`` output), computes, for LayerCAM
and RA-CAM on one fold's defective images, the pooled IoU of the Otsu mask of every per-stage
map (``cam.layer_maps``) and of the max- and mean-fused maps. Diagnostic only: the pipeline's
choices are not tuned on these numbers.

    python experiments/stage_iou.py ksdd-cpu runs/ksdd-cpu --fold 0 --split train --delta 70
"""

from __future__ import annotations

import argparse

import torch

from racam.engine import Engine, load_run_config
from racam.evaluation.metrics import SegmentationMeter
from racam.pseudo.heatmaps import to_original_size
from racam.pseudo.otsu import otsu_threshold


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("config")
    ap.add_argument("out")
    ap.add_argument("--set", dest="sets", action="append", default=[],
                    help="config overrides the run folder was made with")
    ap.add_argument("--fold", type=int, default=0)
    ap.add_argument("--split", choices=["train", "test"], default="train")
    ap.add_argument("--delta", type=float, default=50)
    args = ap.parse_args()
    engine = Engine(load_run_config(args.config, args.sets, args.out), progress=False,
                    log=lambda s: None)
    fd = engine.data(args.fold)
    ds = fd.test if args.split == "test" else fd.train_all
    idx = [i for i, y in enumerate(ds.labels) if y == 1]
    for method in ("layercam", "racam"):
        cam = engine.cam(args.fold, method, args.delta if method == "racam" else None)
        meters = {name: SegmentationMeter()
                  for name in ["S1", "S2", "S3", "S4", "S5", "max", "mean"]}
        for start in range(0, len(idx), 4):
            chunk = idx[start:start + 4]
            samples = [ds[i] for i in chunk]
            images = torch.stack([s.image for s in samples]).to(engine.device)
            cam(images, targets=1)
            layers = [m.detach().float().cpu() for m in cam.layer_maps]
            fused = {"max": torch.stack(layers).amax(0), "mean": torch.stack(layers).mean(0)}
            for b, (i, s) in enumerate(zip(chunk, samples)):
                true = torch.from_numpy(ds.true_mask(i))[None]
                maps = {f"S{k + 1}": layers[k][b] for k in range(len(layers))}
                maps.update({k: v[b] for k, v in fused.items()})
                for name, m in maps.items():
                    big = to_original_size(m[None], s.original_size)
                    meters[name].update(big > otsu_threshold(big)[:, None, None], true)
        row = "  ".join(f"{n} {100 * m.total.iou:5.2f}" for n, m in meters.items())
        print(f"{method:9s} fold {args.fold} {args.split} IoU%: {row}")


if __name__ == "__main__":
    main()
