"""Classifier stability across seeds, with and without a learning-rate warm-up; or a learning
rate chosen on validation images.

Trains the config's classifier on one fold for each seed, variant and learning rate (its own
output folder per run, so a killed call resumes) and prints, per run, the *validation* AUROC of
the epoch the trainer keeps, the last epoch's validation AUROC and the training losses; then, per
variant and rate, the mean, spread and worst seed, and the rate with the highest mean validation
AUROC. Test images are never read. Variants (``--variants``):

- ``config``: the config as it is (``ksdd-cpu``: SGD, lr 0.01, no warm-up);
- ``warmup``: a linear warm-up of ``--warmup`` epochs, then the constant rate;
- ``warmup+cosine``: the same warm-up, then a per-step cosine decay to 0.

    OMP_NUM_THREADS=1 python experiments/classifier_stability.py ksdd-cpu \\
        --out runs/classifier-stability --fold 0 --seeds 0 1 2 [--set classifier.epochs=12]
    python experiments/classifier_stability.py ksdd-paper-offline --out DIR --seeds 0 \\
        --variants config --lrs 0.003 0.01     # choose the learning rate on validation images
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import time
from pathlib import Path
from typing import Any

from racam.classifier.train import train_classifier
from racam.config import ClassifierConfig, RunConfig
from racam.engine import load_run_config
from racam.stages.folds import fold_datasets

VARIANTS: dict[str, dict[str, Any]] = {
    "config": {},
    "warmup": {"schedule": "constant"},
    "warmup+cosine": {"schedule": "cosine"},
}


def variant_config(cfg: ClassifierConfig, variant: str, warmup: float) -> ClassifierConfig:
    """``cfg`` with ``variant``'s warm-up and schedule (``config``: unchanged)."""
    if variant == "config":
        return cfg
    return dataclasses.replace(cfg, warmup_epochs=warmup, **VARIANTS[variant])


def run_one(cfg: RunConfig, clf: ClassifierConfig, fold: int, seed: int,
            out: Path) -> dict[str, Any]:
    """Train (or read back) one classifier; its validation summary."""
    fd = fold_datasets(cfg.data, fold, seed)
    t0 = time.perf_counter()
    res = train_classifier(clf, fd.train, fd.val, out, seed=seed + fold, device=cfg.device,
                           in_channels=cfg.data.channels, progress=False)
    hist = res.history
    best = hist[res.best_epoch - 1]
    return {"best_epoch": res.best_epoch, "best_val_auroc": best["val_auroc"],
            "last_val_auroc": hist[-1]["val_auroc"],
            "val_aurocs": [None if h["val_auroc"] is None else round(h["val_auroc"], 3)
                           for h in hist],
            "loss_epoch1": round(hist[0]["loss"], 4),
            "max_loss": round(max(h["loss"] for h in hist), 4),
            "last_loss": round(hist[-1]["loss"], 4), "seconds": round(time.perf_counter() - t0, 1)}


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean, population sd and minimum of the kept epochs' validation AUROC over seeds."""
    best = [r["best_val_auroc"] for r in rows if r["best_val_auroc"] is not None]
    last = [r["last_val_auroc"] for r in rows if r["last_val_auroc"] is not None]
    if not best:
        return {"runs": len(rows)}
    return {"runs": len(rows), "best_mean": round(statistics.fmean(best), 4),
            "best_sd": round(statistics.pstdev(best), 4), "best_min": round(min(best), 4),
            "last_mean": round(statistics.fmean(last), 4) if last else None,
            "last_min": round(min(last), 4) if last else None}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("config")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--fold", type=int, default=0)
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    ap.add_argument("--warmup", type=float, default=2.0, help="warm-up epochs (default 2)")
    ap.add_argument("--lrs", nargs="+", type=float, default=None,
                    help="learning rates to compare (default: the config's)")
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    a = ap.parse_args()
    cfg = load_run_config(a.config, a.overrides)
    lrs = a.lrs or [cfg.classifier.lr]
    rows: dict[tuple[str, float], list[dict[str, Any]]] = {}
    for seed in a.seeds:
        for lr in lrs:
            for variant in a.variants:
                clf = dataclasses.replace(variant_config(cfg.classifier, variant, a.warmup),
                                          lr=lr)
                folder = a.out / variant / (f"seed{seed}" if a.lrs is None
                                            else f"lr{lr:g}-seed{seed}")
                row = {"variant": variant, "lr": lr, "seed": seed, "fold": a.fold,
                       **run_one(cfg, clf, a.fold, seed, folder)}
                rows.setdefault((variant, lr), []).append(row)
                print(json.dumps(row), flush=True)
    summaries = [{"variant": v, "lr": lr, **summarise(r)} for (v, lr), r in rows.items()]
    for summary in summaries:
        print("summary:", json.dumps(summary), flush=True)
    ranked = [s for s in summaries if "best_mean" in s]
    if len(ranked) > 1:
        top = max(ranked, key=lambda s: (s["best_mean"], s["best_min"]))
        print("highest mean validation AUROC:", json.dumps(top), flush=True)


if __name__ == "__main__":
    main()
