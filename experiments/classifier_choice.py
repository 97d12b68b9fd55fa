"""Compare classifiers for a config by validation AUROC and training-image heat-map IoU.

Chooses the CPU classifier without looking at a test fold: for each fold it trains (or reads
back) the classifier of the config with the given overrides, and prints its best validation
AUROC (the epoch the trainer keeps) and the Otsu-mask IoU of RA-CAM and LayerCAM on the
defective *training* images, pooled over the folds. Stages are cached in ``--out``, so the
run folder can be reused by ``racam reproduce`` with the same settings.

    python experiments/classifier_choice.py ksdd-cpu --out runs/ksdd-cpu \\
        [--set classifier.backbone=efficientnet_lite0 --set classifier.weights=imagenet
         --set classifier.batch_norm=false]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from racam.engine import Engine, load_run_config
from racam.evaluation.pooling import counts_from


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("config")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    ap.add_argument("--methods", nargs="+", default=["racam", "layercam"])
    ap.add_argument("--folds", nargs="+", type=int, default=None,
                    help="folds to compare on (default: the config's; the stages keep the "
                         "config's keys, so the run folder stays reusable)")
    a = ap.parse_args()
    cfg = load_run_config(a.config, a.overrides)
    engine = Engine(cfg, a.out, progress=False, log=lambda _: None)
    folds = engine.folds if a.folds is None else [k for k in engine.folds if k in a.folds]
    row: dict[str, object] = {"overrides": a.overrides}
    aurocs, seconds = [], 0.0
    for k in folds:
        t0 = time.perf_counter()
        clf = engine.classifier(k)
        seconds += time.perf_counter() - t0
        best = clf.history[clf.best_epoch - 1]
        aurocs.append(best["val_auroc"])
        print(json.dumps({"fold": k, "best_epoch": clf.best_epoch,
                          "val_auroc": best["val_auroc"], "val_ap": best["val_ap"],
                          "seconds": clf.seconds}), flush=True)
    row["val_auroc_per_fold"] = aurocs
    row["val_auroc_mean"] = round(sum(aurocs) / len(aurocs), 4)
    for method in a.methods:
        tp = fp = fn = 0
        for k in folds:
            quality = engine.cam_quality(k, method, None, "train").paper
            assert quality is not None, f"fold {k}: no defective training image"
            r = counts_from(quality)
            tp, fp, fn = tp + r.tp, fp + r.fp, fn + r.fn
        row[f"{method}_train_iou"] = round(100 * tp / max(tp + fp + fn, 1), 2)
        print(json.dumps({method: row[f"{method}_train_iou"]}), flush=True)
    print("summary:", json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
