"""RA-CAM Otsu-mask IoU on the defective *training* images for each fusion and delta.

Picks the pseudo-label setting without looking at a test fold: prints one line per
(fusion, delta) with the IoU pooled over the folds' training images, and the best one.
Stages are cached in the run folder, as for ``racam reproduce``.

    python experiments/train_sweep.py ksdd-cpu --out runs/ksdd-cpu [--fusions max mean]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from racam.engine import Engine, load_run_config
from racam.evaluation.pooling import counts_from


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("config")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--set", dest="sets", action="append", default=[])
    ap.add_argument("--fusions", nargs="+", default=["max", "mean"])
    a = ap.parse_args()
    cfg = load_run_config(a.config, a.sets)
    rows = []
    for fusion in a.fusions:
        c = dataclasses.replace(cfg, cam=dataclasses.replace(cfg.cam, fusion=fusion))
        engine = Engine(c, a.out, progress=False, log=lambda _: None)
        for delta in cfg.reproduce.deltas:
            tp = fp = fn = 0
            for k in engine.folds:
                quality = engine.cam_quality(k, "racam", delta, "train").paper
                assert quality is not None, f"fold {k}: no defective training image"
                r = counts_from(quality)
                tp, fp, fn = tp + r.tp, fp + r.fp, fn + r.fn
            iou = tp / max(tp + fp + fn, 1)
            rows.append({"fusion": fusion, "delta": delta, "train_iou": round(100 * iou, 2),
                         "precision": round(100 * tp / max(tp + fp, 1), 2),
                         "recall": round(100 * tp / max(tp + fn, 1), 2)})
            print(json.dumps(rows[-1]), flush=True)
    best = max(rows, key=lambda r: (r["train_iou"], -abs(r["delta"] - 50)))
    print("best on training images:", json.dumps(best))


if __name__ == "__main__":
    main()
