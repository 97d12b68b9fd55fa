"""Compare ways to threshold heat maps into pseudo-labels, on defective *training* images only.

For each fold: RA-CAM maps (the config's fusion, ``--delta``) of the defective training images at
original size, thresholded by Otsu (the protocol), by Otsu applied again inside the Otsu
foreground ("otsu2", a smaller, more confident mask), and by fixed fractions of each map's
maximum. Prints pooled IoU / precision / recall against the true training masks.

    python scripts/pseudo_thresholds.py ksdd-cpu RUN_DIR --set cam.fusion=mean --delta 10
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from racam.cam import build_cam
from racam.checkpoint import load_classifier
from racam.cli.options import load
from racam.evaluation.metrics import SegmentationMeter
from racam.models import classifier_target_layers
from racam.pipeline.folds import fold_datasets
from racam.pseudo.heatmaps import iter_heatmaps
from racam.pseudo.otsu import otsu_threshold


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("config")
    ap.add_argument("run", type=Path)
    ap.add_argument("--set", dest="sets", action="append", default=[])
    ap.add_argument("--delta", type=float, default=10)
    ap.add_argument("--folds", type=int, nargs="+", default=[0, 1, 2])
    a = ap.parse_args()
    cfg = load(a.config, a.sets)
    rules = ["otsu", "otsu2", "0.3max", "0.5max", "0.7max"]
    meters = {r: SegmentationMeter() for r in rules}
    for k in a.folds:
        fd = fold_datasets(cfg.data, k, cfg.seed)
        model, _ = load_classifier(a.run / f"fold{k}" / "classifier" / "best.pt")
        layers = list(classifier_target_layers(model).values())
        cam = build_cam("racam", model.eval(), target_layers=layers, delta=a.delta,
                        fusion=cfg.cam.fusion)
        ds = fd.train_all
        idx = [i for i, y in enumerate(ds.labels) if y == 1]
        for i, _s, big, otsu in iter_heatmaps(cam, ds, idx, batch_size=4, device="cpu"):
            true = torch.from_numpy(ds.true_mask(i))[None]
            inner = big[otsu]
            t2 = otsu_threshold(inner[None, None, :].float())[0] if inner.numel() > 1 else 0.0
            masks = {"otsu": otsu, "otsu2": big > t2}
            for f in (0.3, 0.5, 0.7):
                masks[f"{f}max"] = big > f * big.max()
            for r in rules:
                meters[r].update(masks[r][None], true, ids=[str(i)])
    for r in rules:
        c = meters[r].total
        print(f"{r:<7} IoU {100 * c.iou:6.2f}  P {100 * c.precision:6.2f}  R {100 * c.recall:6.2f}")


if __name__ == "__main__":
    main()
