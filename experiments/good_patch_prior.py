"""Pseudo-labels from the heat map and the good images' patches (issues 25, 29).

A folder run has good training images, and a defect is what no good image holds. For each patch
of a defective training image this takes the distance to its nearest patch of the good training
images in the classifier's features (:mod:`racam.pseudo.good_patches`). The map is compared with
the run's pseudo-label map (its method, delta, fusion and scales) and combined with it (each map
scaled to [0, 1] per image first):

- ``cam``: the run's map (the reference);
- ``patch``: the nearest-neighbour distance map alone;
- ``cam*patch``: their product (the heat map where the image is also unlike any good image);
- ``mean``: their mean.

Each is thresholded by the config's rule (``otsu2``) and scored against the true masks of the
defective training images (scored only, never a choice), with the share each marks (label-free).

    OMP_NUM_THREADS=1 python experiments/good_patch_prior.py folder-example \
        --set data.root=/work/datasets/ksdd-folder --out /tmp/any \
        --checkpoint RUN/fold0/classifier/epochs/epoch4.pt --scales 1 1.5 --json f0.json
    python experiments/scale_average.py --pool f0.json f1.json   # the same table, pooled
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import torch
from run_args import run_parser
from scale_average import print_table

from racam.cam.maps import normalize_maps
from racam.classifier import load_classifier
from racam.data import read_mask
from racam.engine import load_run_config
from racam.pseudo.good_patches import GoodPatches
from racam.pseudo.labels import iter_pseudo_masks
from racam.run_cam import build_run_cam
from racam.stages.folds import fold_datasets


def variants(cam_fn: Any, patches: GoodPatches) -> dict[str, Any]:
    memo: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def both(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        key = hash(images.float().numpy().tobytes())
        if key not in memo:
            c = normalize_maps(cam_fn(images, targets=1).detach().float())
            p = patches.distance(images)
            memo.clear()
            memo[key] = (c, normalize_maps(p))
        return memo[key]

    return {"cam": lambda x, targets=1: both(x)[0],
            "patch": lambda x, targets=1: both(x)[1],
            "cam*patch": lambda x, targets=1: normalize_maps(both(x)[0] * both(x)[1]),
            "mean": lambda x, targets=1: (both(x)[0] + both(x)[1]) / 2}


def main() -> None:
    import json

    ap = run_parser(__doc__)
    ap.add_argument("--checkpoint", type=Path, required=True)
    ap.add_argument("--scales", type=float, nargs="+", default=[1.0])
    args = ap.parse_args()
    cfg = load_run_config(args.config, args.set_, args.out)
    ds = fold_datasets(cfg.data, args.fold, cfg.seed).train_all
    defect = [i for i, y in enumerate(ds.labels) if y == 1 and ds.records[i].mask_path]
    good = [i for i, y in enumerate(ds.labels) if y == 0]
    model, _ = load_classifier(args.checkpoint)
    model.eval()
    patches = GoodPatches(model, ds, good, batch_size=cfg.cam.batch_size)
    print(f"bank: {len(patches.bank)} of the good images' patches ({len(good)} images)",
          file=sys.stderr)
    torch.set_grad_enabled(True)
    cam_fn = build_run_cam(cfg, model, cfg.cam.method, cfg.cam.delta, scales=args.scales)
    # the four variants of a batch share one memo of its two maps
    fns = variants(cam_fn, patches)
    rows: dict[str, dict[str, list[Any]]] = {name: {"counts": [], "area": []} for name in fns}
    by_id = {ds.records[i].id: ds.records[i] for i in defect}
    bs = cfg.cam.batch_size
    for s in range(0, len(defect), bs):
        chunk = defect[s:s + bs]
        for name, fn in fns.items():
            for sample, mask, _ in iter_pseudo_masks(fn, ds, chunk, threshold=cfg.cam
                                                     .pseudo_threshold, batch_size=bs):
                pred = mask.numpy().astype(bool)
                true = read_mask(by_id[sample.id].mask_path).astype(bool)
                rows[name]["counts"].append([int((pred & true).sum()), int((pred & ~true).sum()),
                                             int((~pred & true).sum())])
                rows[name]["area"].append(float(pred.mean()))
        print(f"{min(s + bs, len(defect))}/{len(defect)}", file=sys.stderr, flush=True)
    print_table(rows, f"{args.checkpoint} at scales {args.scales}")
    if args.json:
        args.json.write_text(json.dumps(rows))


if __name__ == "__main__":
    main()
