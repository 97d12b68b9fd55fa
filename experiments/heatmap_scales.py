"""Heat maps of enlarged inputs on the TEST images of a fold (issue 25, item 2).

The pseudo-label levers (``experiments/pseudo_levers.py``) chose the map of the input enlarged
twice on the defective *training* images. This script only measures what that choice gives on
the test images for each heat-map method, with the protocol's Table I rule (Otsu at each image's
original size; paper view: defective test images): pooled defect IoU per method and scale, and
the paired bootstrap interval of (scale s - scale 1) over the images
(racam.evaluation.bootstrap.paired_bootstrap_iou_difference). Nothing here chooses a setting.

``--average 1 1.5 2`` also scores the mean of those scales' maps (printed as scale 0).
``--split train`` scores the defective training images instead (the pseudo-label view where
the config's pseudo-label rule is plain Otsu) and prints the share of pixels each scale marks,
a label-free quantity.

Usage (a folder with ``fold<k>/classifier/result.json``, e.g. from `racam train-classifier`):

    PYTHONPATH=src OMP_NUM_THREADS=1 RACAM_DATA=/work/shared/data \
      python experiments/heatmap_scales.py RUNS --fold 0 --methods racam gradcam \
        --scales 1 2 [--config ksdd-cpu] [--set key=value]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from racam.classifier import load_classifier
from racam.config import load_config
from racam.evaluation.bootstrap import bootstrap_iou, paired_bootstrap_iou_difference
from racam.evaluation.cam_quality import evaluate_cam
from racam.pseudo.tta import tta_cam
from racam.run_cam import build_run_cam
from racam.stages.folds import fold_datasets


def per_image(result: dict) -> tuple[list[str], np.ndarray]:
    """Image ids and ``(N, 4)`` counts of the paper view of an :func:`evaluate_cam` result."""
    items = result["paper_per_image"]
    ids = [str(i) for i, _ in items]
    return ids, np.array([[c.tp, c.fp, c.fn, c.tn] for _, c in items])


#: the "scale" under which the mean of the ``--average`` scales' maps is reported
AVERAGE = 0.0


def score(runs: Path, fold: int, cfg_name: str, overrides: dict, methods: list[str],
          scales: list[float], split: str = "test", average: list[float] | None = None
          ) -> dict[tuple[str, float], np.ndarray]:
    """Per-image paper-view counts of every method at every scale on the fold's defective
    ``split`` images (``train``: the training images, as the pseudo-label stage sees them)."""
    # the config's own cam.scales / flips off: this script applies each scale itself
    cfg = load_config(cfg_name, {**overrides, "cam.scales": [1.0], "cam.flips": []})
    parts = fold_datasets(cfg.data, fold, cfg.seed)
    ds = parts.test if split == "test" else parts.train_all
    clf = json.loads((runs / f"fold{fold}" / "classifier" / "result.json").read_text())
    model, _ = load_classifier(clf["checkpoint"])
    probs = clf["test_probs"] if split == "test" else None
    out: dict[tuple[str, float], np.ndarray] = {}
    for method in methods:
        cam = build_run_cam(cfg, model.eval(), method)
        ref_ids: list[str] | None = None
        for s in scales:
            parts = average if s == AVERAGE else [s]
            r = evaluate_cam(tta_cam(cam, parts), ds, probs, batch_size=cfg.cam.batch_size)
            ids, counts = per_image(r)
            assert ref_ids is None or ids == ref_ids
            ref_ids = ids
            out[(method, s)] = counts
            area = counts[:, :2].sum() / counts.sum()  # share of pixels marked (label-free)
            print(f"fold {fold}: {method} scale {s:g}: IoU "
                  f"{100 * bootstrap_iou(counts).estimate:.2f}, {100 * area:.2f} % of the pixels "
                  f"marked, on {len(ids)} defective {split} images", flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("runs", type=Path)
    ap.add_argument("--fold", type=int, action="append", required=True)
    ap.add_argument("--config", default="ksdd-cpu")
    ap.add_argument("--set", action="append", default=[], help="key=value (YAML value)")
    ap.add_argument("--methods", nargs="+", default=["racam"])
    ap.add_argument("--scales", nargs="+", type=float, default=[1.0, 2.0])
    ap.add_argument("--split", choices=["test", "train"], default="test")
    ap.add_argument("--average", nargs="+", type=float,
                    help="also score the mean of these scales' maps (reported as scale 0)")
    ap.add_argument("--save", type=Path, help="write every per-image count array to this .npz")
    ap.add_argument("--pairs", nargs=2, action="append", default=[], metavar=("A", "B"),
                    help="also print method A minus method B at each scale, folds pooled")
    args = ap.parse_args()
    import yaml
    overrides = {k: yaml.safe_load(v) for k, v in (s.split("=", 1) for s in args.set)}
    torch.set_grad_enabled(True)
    if args.average:
        args.scales = [*args.scales, AVERAGE]
    per_fold = [score(args.runs, f, args.config, overrides, args.methods, args.scales,
                      args.split, args.average)
                for f in args.fold]
    if args.save:
        np.savez_compressed(args.save, **{f"fold{f}_{m}_s{s:g}": c for f, p in
                                          zip(args.fold, per_fold) for (m, s), c in p.items()})
    for a, b in args.pairs:
        for s in args.scales:
            ca = np.concatenate([p[(a, s)] for p in per_fold])
            cb = np.concatenate([p[(b, s)] for p in per_fold])
            d = paired_bootstrap_iou_difference(ca, cb)
            print(f"scale {s:g}, folds {args.fold} pooled: {a} minus {b} {100 * d.estimate:+.2f} "
                  f"[{100 * d.low:+.2f}, {100 * d.high:+.2f}]")
    base = args.scales[0]
    print(f"| method | scale | IoU, folds {args.fold} pooled [95 %] "
          f"| minus scale {base:g} [95 %] |")
    print("| --- | ---: | ---: | ---: |")
    for method in args.methods:
        ref = np.concatenate([p[(method, base)] for p in per_fold])
        for s in args.scales:
            a = np.concatenate([p[(method, s)] for p in per_fold])
            iou, d = bootstrap_iou(a), paired_bootstrap_iou_difference(a, ref)
            print(f"| {method} | {s:g} | {100 * iou.estimate:.2f} [{100 * iou.low:.2f}, "
                  f"{100 * iou.high:.2f}] | {100 * d.estimate:+.2f} [{100 * d.low:+.2f}, "
                  f"{100 * d.high:+.2f}] |")


if __name__ == "__main__":
    main()
