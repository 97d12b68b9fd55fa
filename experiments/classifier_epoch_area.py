"""Choosing a folder run's classifier EPOCH by its pseudo-labels' area (issue 29).

A folder run keeps the classifier epoch with the best validation AUROC. On KolektorSDD the plan's
whole schedule kept epoch 7 (validation AUROC 1.000), whose pseudo-labels marked 2.09 % of a
defective image and scored 20.62 IoU, where a 3-epoch classifier's marked 1.10 % and scored
30.50. The area is label-free (``racam.pseudo.area``); this script asks whether it would have
chosen a better epoch.

It trains the fold's classifier exactly as the run does (same config, seed and data; resumed one
epoch at a time with ``stop_after``, which continues the same RNG stream), copies each epoch's
weights, and for each epoch computes the config's pseudo-labels of the defective TRAINING
images: their mean area (label-free) and, for the report only, their IoU against the true masks.

Printed: one row per epoch, then the epoch each rule keeps and its labels' IoU:
- ``val AUROC`` (what racam does: best validation AUROC, ties -> lower validation loss);
- ``area within T`` (the smallest area among epochs whose validation AUROC is at least the best
  minus T);
- ``area`` (the smallest area among all epochs: no floor).

    OMP_NUM_THREADS=1 python experiments/classifier_epoch_area.py folder-example \
        --set data.root=/work/datasets/ksdd-folder --out /work/runs/epoch-area-ksdd --epochs 10

Resumable: epochs and scores already in OUT/epoch-area/fold<F>/ are kept.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from run_args import run_parser

from racam.classifier import load_classifier
from racam.classifier.epochs import eligible_epochs
from racam.classifier.train import best_epoch_of, train_classifier
from racam.data import read_mask
from racam.engine import load_run_config
from racam.evaluation.bootstrap import bootstrap_iou, paired_bootstrap_iou_difference
from racam.pseudo.guided import guided_refiner
from racam.pseudo.labels import iter_pseudo_masks
from racam.run_cam import build_run_cam
from racam.stages.folds import fold_datasets

TOLERANCES = (0.0, 0.01, 0.02, 0.03, 0.05, 0.1)


def train_to(cfg: Any, fd: Any, folder: Path, fold: int, k: int) -> list[dict[str, Any]]:
    """Train (resuming) up to epoch ``k`` and copy its weights to ``epoch<k>.pt``; the history."""
    ck = folder / f"epoch{k}.pt"
    if ck.exists():  # trained before: its history is in the copy's meta
        return torch.load(ck, map_location="cpu", weights_only=False)["meta"]["history"][:k]
    t0 = time.perf_counter()
    res = train_classifier(cfg.classifier, fd.train, fd.val, folder / "train",
                           seed=cfg.seed + fold, device="cpu", in_channels=cfg.data.channels,
                           progress=False, stop_after=k)
    shutil.copyfile(res.last_path, ck)
    print(f"epoch {k}: val AUROC {res.history[k - 1]['val_auroc']:.4f}, "
          f"{time.perf_counter() - t0:.0f} s", flush=True)
    return res.history[:k]


def score_epoch(cfg: Any, fd: Any, ck: Path, cache: Path) -> dict[str, Any]:
    """Area (label-free) and per-image [tp, fp, fn] of the config's pseudo-labels."""
    if cache.exists():
        return json.loads(cache.read_text())
    ds = fd.train_all
    idx = [i for i, y in enumerate(ds.labels) if y == 1 and ds.records[i].mask_path]
    model, _ = load_classifier(ck)
    c = cfg.cam
    cam = build_run_cam(cfg, model.eval(), c.method, c.delta)
    refine = None if c.guided_radius is None else guided_refiner(c.guided_radius, c.guided_eps)
    areas, counts = [], []
    by_id = {ds.records[i].id: ds.records[i] for i in idx}
    for sample, mask, _ in iter_pseudo_masks(cam, ds, idx, threshold=c.pseudo_threshold,
                                             batch_size=c.batch_size, refine=refine):
        pred = mask.numpy().astype(bool)
        true = read_mask(by_id[sample.id].mask_path).astype(bool)
        areas.append(float(pred.mean()))
        counts.append([int((pred & true).sum()), int((pred & ~true).sum()),
                       int((~pred & true).sum())])
    row = {"area": float(np.mean(areas)), "counts": counts}
    cache.write_text(json.dumps(row))
    return row


def chosen(history: list[dict[str, Any]], rows: dict[int, dict[str, Any]], tol: float | None
           ) -> int:
    """Epoch kept by validation AUROC (``tol`` None) or by smallest area within ``tol``
    (the rule of ``classifier.keep_epoch: pseudo_area``, :mod:`racam.classifier.epochs`)."""
    if tol is None:
        return best_epoch_of(history)
    return min(eligible_epochs(history, tol), key=lambda e: (rows[e]["area"], e))


def main() -> None:
    ap = run_parser(__doc__)
    ap.add_argument("--epochs", type=int, help="epochs to train (default: the config's)")
    args = ap.parse_args()
    cfg = load_run_config(args.config, args.set_, args.out)
    epochs = args.epochs or cfg.classifier.epochs
    fd = fold_datasets(cfg.data, args.fold, cfg.seed)
    folder = args.out / "epoch-area" / f"fold{args.fold}"
    folder.mkdir(parents=True, exist_ok=True)
    torch.set_grad_enabled(True)
    rows, history = {}, []
    for e in range(1, epochs + 1):  # each epoch scored as soon as it is trained
        history = train_to(cfg, fd, folder, args.fold, e)
        h = history[-1]
        rows[e] = score_epoch(cfg, fd, folder / f"epoch{e}.pt", folder / f"epoch{e}.json")
        c = np.array(rows[e]["counts"])
        print(f"| {e} | {h['val_auroc']:.4f} | {h['val_loss']:.4f} | "
              f"{100 * rows[e]['area']:.2f} | {100 * bootstrap_iou(c).estimate:.2f} |",
              flush=True)
    base = chosen(history, rows, None)
    b = np.array(rows[base]["counts"])
    print(f"\nval AUROC keeps epoch {base}: labels {100 * bootstrap_iou(b).estimate:.2f}")
    for tol in TOLERANCES + (1.0,):
        e = chosen(history, rows, tol)
        c = np.array(rows[e]["counts"])
        d = paired_bootstrap_iou_difference(c, b)
        print(f"smallest area within {tol:.2f} of the best AUROC keeps epoch {e}: labels "
              f"{100 * bootstrap_iou(c).estimate:.2f}, minus val AUROC's "
              f"{100 * d.estimate:+.2f} [{100 * d.low:+.2f}, {100 * d.high:+.2f}]")
    areas = [rows[h["epoch"]]["area"] for h in history]
    ious = [bootstrap_iou(np.array(rows[h["epoch"]]["counts"])).estimate for h in history]
    from scipy.stats import spearmanr
    print(f"Spearman(area, IoU) over the {len(history)} epochs: "
          f"{spearmanr(areas, ious).statistic:.2f}")
    if args.json:
        args.json.write_text(json.dumps({"history": history, "rows": rows}))


if __name__ == "__main__":
    main()
