"""Diagnostic: per-fold IoU, recall, precision, Otsu-mask area and pointing accuracy of
single-layer heat-map methods on one run's defective test images.

Pointing accuracy: share of images whose heat-map maximum lies within ``--radius`` pixels of a
true defect pixel. Diagnostic only: the pipeline's choices are not tuned on these numbers.

    python experiments/cam_pointing.py ksdd-cpu runs/ksdd-cpu --folds 0 1 2
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from scipy import ndimage

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
    ap.add_argument("--folds", type=int, nargs="+", default=[0])
    ap.add_argument("--methods", nargs="+", default=["gradcam", "gradcam++", "xgradcam"])
    ap.add_argument("--radius", type=int, default=20)
    args = ap.parse_args()
    engine = Engine(load_run_config(args.config, args.sets, args.out), progress=False,
                    log=lambda s: None)
    for fold in args.folds:
        ds = engine.data(fold).test
        idx = [i for i, y in enumerate(ds.labels) if y == 1]
        for method in args.methods:
            cam = engine.cam(fold, method, None)
            meter, area, hits = SegmentationMeter(), [], []
            for i in idx:
                s = ds[i]
                m = cam(s.image[None].to(engine.device), targets=1).float().cpu()
                big = to_original_size(m, s.original_size)
                pred = big > otsu_threshold(big)[:, None, None]
                true = torch.from_numpy(ds.true_mask(i))[None]
                meter.update(pred, true)
                area.append(pred.float().mean().item())
                near = ndimage.binary_dilation(true[0].numpy(), iterations=args.radius)
                peak = np.unravel_index(int(big[0].argmax()), tuple(big[0].shape))
                hits.append(bool(near[peak]))
            t = meter.total
            print(f"{method:10s} fold {fold}: IoU {100 * t.iou:5.2f}  R {100 * t.recall:5.2f}  "
                  f"P {100 * t.precision:5.2f}  mask area {100 * np.mean(area):5.2f}%  "
                  f"peak within {args.radius} px {np.mean(hits):.2f}  (n={len(idx)})",
                  flush=True)


if __name__ == "__main__":
    main()
