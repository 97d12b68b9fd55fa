"""Pseudo-labels from heat maps averaged over input scales, against one scale (issue 29).

``cam.scales: [1.0, 1.5, 2.0]`` (the mean of the maps of the input at each scale,
:func:`racam.pseudo.tta.tta_cam`) lifted ``ksdd-cpu``'s pseudo-labels on all three folds of
KolektorSDD. Would such an average be a fixed folder default that holds on more than one dataset?
For one stored classifier checkpoint this scores the config's pseudo-labels (its method, delta,
fusion, threshold rule and guided filter) from each set of scales on the defective training
images against their true masks (scored only, never a choice), with the share of the images
each set marks (the label-free area). Each scale's maps are computed once and averaged per set,
which equals ``tta_cam`` over the set (each map lies in [0, 1]).

    OMP_NUM_THREADS=1 python experiments/scale_average.py folder-example \
        --set data.root=/work/datasets/ksdd-folder --out /tmp/any \
        --checkpoint RUN/fold0/classifier/epochs/epoch4.pt --sets 1 2 1,2 1,1.5,2 \
        --json fold0.json
    python experiments/scale_average.py --pool fold0.json fold1.json   # images pooled

The first set is the reference of the paired differences.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from run_args import run_parser

from racam.classifier import load_classifier
from racam.data import read_mask
from racam.engine import load_run_config
from racam.evaluation.bootstrap import bootstrap_iou, paired_bootstrap_iou_difference
from racam.pseudo.guided import guided_refiner
from racam.pseudo.labels import iter_pseudo_masks
from racam.run_cam import build_run_cam
from racam.stages.folds import fold_datasets


class ScaleMaps:
    """Each scale's heat maps of a batch, computed once (keyed by the batch's bytes), and the
    mean over a set of scales as a heat-map callable."""

    def __init__(self, cfg: Any, model: torch.nn.Module, scales: list[float]) -> None:
        self.cams = {s: build_run_cam(cfg, model, cfg.cam.method, cfg.cam.delta, scales=[s])
                     for s in scales}
        self.memo: dict[tuple[str, float], torch.Tensor] = {}

    def maps(self, images: torch.Tensor, targets: object, scale: float) -> torch.Tensor:
        key = (hashlib.sha1(images.float().numpy().tobytes()).hexdigest(), scale)
        if key not in self.memo:
            self.memo[key] = self.cams[scale](images, targets=targets).detach().float()
        return self.memo[key]

    def averaged(self, scales: list[float]) -> Callable[..., torch.Tensor]:
        def cam(images: torch.Tensor, targets: object = 1) -> torch.Tensor:
            return torch.stack([self.maps(images, targets, s) for s in scales]).mean(0)
        return cam


def score_sets(cfg: Any, checkpoint: Path, fold: int, sets: list[list[float]]
               ) -> dict[str, dict[str, list[Any]]]:
    """Per set (named like ``1,1.5,2``): per image [tp, fp, fn] and the share marked."""
    ds = fold_datasets(cfg.data, fold, cfg.seed).train_all
    idx = [i for i, y in enumerate(ds.labels) if y == 1 and ds.records[i].mask_path]
    by_id = {ds.records[i].id: ds.records[i] for i in idx}
    model, _ = load_classifier(checkpoint)
    model.eval()
    torch.set_grad_enabled(True)
    c = cfg.cam
    refine = None if c.guided_radius is None else guided_refiner(c.guided_radius, c.guided_eps)
    maps = ScaleMaps(cfg, model, sorted({s for one in sets for s in one}))
    out: dict[str, dict[str, list[Any]]] = {}
    for one in sets:
        rows: dict[str, list[Any]] = {"counts": [], "area": []}
        for sample, mask, _ in iter_pseudo_masks(maps.averaged(one), ds, idx,
                                                 threshold=c.pseudo_threshold,
                                                 batch_size=c.batch_size, refine=refine):
            pred = mask.numpy().astype(bool)
            true = read_mask(by_id[sample.id].mask_path).astype(bool)
            rows["counts"].append([int((pred & true).sum()), int((pred & ~true).sum()),
                                   int((~pred & true).sum())])
            rows["area"].append(float(pred.mean()))
        out[",".join(f"{s:g}" for s in one)] = rows
        print(f"set {one}: done", file=sys.stderr, flush=True)
    return out


def print_table(res: dict[str, dict[str, list[Any]]], title: str) -> None:
    names = list(res)
    base = np.array(res[names[0]]["counts"])
    print(f"{title}: {len(base)} defective training images")
    print(f"| scales | area % | IoU [95 %] | minus {names[0]} [95 %] |")
    print("| --- | ---: | ---: | ---: |")
    for name in names:
        c = np.array(res[name]["counts"])
        iou, d = bootstrap_iou(c), paired_bootstrap_iou_difference(c, base)
        print(f"| {name} | {100 * np.mean(res[name]['area']):.2f} | {100 * iou.estimate:.2f} "
              f"[{100 * iou.low:.2f}, {100 * iou.high:.2f}] | {100 * d.estimate:+.2f} "
              f"[{100 * d.low:+.2f}, {100 * d.high:+.2f}] |")


def pooled(paths: list[Path]) -> dict[str, dict[str, list[Any]]]:
    parts = [json.loads(p.read_text()) for p in paths]
    return {name: {k: [v for part in parts for v in part[name][k]] for k in ("counts", "area")}
            for name in parts[0]}


def main() -> None:
    if "--pool" in sys.argv:
        ap = argparse.ArgumentParser(description="pool the JSON of several calls")
        ap.add_argument("--pool", type=Path, nargs="+", required=True)
        paths = ap.parse_args().pool
        print_table(pooled(paths), " + ".join(p.stem for p in paths))
        return
    ap = run_parser(__doc__)
    ap.add_argument("--checkpoint", type=Path, required=True)
    ap.add_argument("--sets", nargs="+", default=["1", "2", "1,2", "1,1.5,2"])
    args = ap.parse_args()
    cfg = load_run_config(args.config, args.set_, args.out)
    sets = [[float(s) for s in one.split(",")] for one in args.sets]
    res = score_sets(cfg, args.checkpoint, args.fold, sets)
    print_table(res, str(args.checkpoint))
    if args.json:
        args.json.write_text(json.dumps(res))


if __name__ == "__main__":
    main()
