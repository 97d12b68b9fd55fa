"""Would the epoch choice by area survive scoring only a subsample of the images? (issue 29)

``classifier.keep_epoch: pseudo_area`` scores every eligible epoch on all defective training
images; at heat-map scale 2 that is costly on a large dataset. This script reads the per-image
counts that ``experiments/classifier_epoch_area.py`` stored (``OUT/epoch-area/fold<F>/
epoch<k>.json``), rebuilds each image's pseudo-label area, and prints how often the smallest
mean area over a subsample of N images keeps the same epoch as all images (1000 random draws
per N, and one evenly spaced subsample). Label-free: the area needs no mask.

    python experiments/area_subsample.py folder-example \
        --set data.root=/work/datasets/bsdata-folder --set segmentation.train_masks=none \
        --out /work/runs/epoch-area-bsdata --epochs 6
"""

from __future__ import annotations

import json

import numpy as np
from PIL import Image
from run_args import run_parser

from racam.engine import load_run_config
from racam.stages.folds import fold_datasets


def main() -> None:
    ap = run_parser(__doc__)
    ap.add_argument("--epochs", type=int, required=True)
    ap.add_argument("--sizes", type=int, nargs="+", default=[32, 48, 64, 96])
    args = ap.parse_args()
    cfg = load_run_config(args.config, args.set_, args.out)
    ds = fold_datasets(cfg.data, args.fold, cfg.seed).train_all
    idx = [i for i, y in enumerate(ds.labels) if y == 1 and ds.records[i].mask_path]
    pixels = np.array([np.prod(Image.open(ds.records[i].mask_path).size) for i in idx])
    folder = args.out / "epoch-area" / f"fold{args.fold}"
    areas = {}
    for e in range(1, args.epochs + 1):
        c = np.array(json.loads((folder / f"epoch{e}.json").read_text())["counts"])
        areas[e] = (c[:, 0] + c[:, 1]) / pixels  # tp + fp: the pixels the label marks
    whole = min(areas, key=lambda e: areas[e].mean())
    print(f"{len(idx)} images; mean area % by epoch: "
          + ", ".join(f"{e}: {100 * a.mean():.3f}" for e, a in areas.items())
          + f"; all images keep epoch {whole}")
    rng = np.random.default_rng(0)
    for n in (s for s in args.sizes if s < len(idx)):
        even = np.linspace(0, len(idx) - 1, n).round().astype(int)
        kept_even = min(areas, key=lambda e: areas[e][even].mean())
        draws = (rng.choice(len(idx), n, replace=False) for _ in range(1000))
        same = sum(min(areas, key=lambda e: areas[e][d].mean()) == whole for d in draws)
        print(f"N = {n}: evenly spaced keeps epoch {kept_even}; random draws keep epoch "
              f"{whole} in {same / 10:.1f} %")


if __name__ == "__main__":
    main()
