"""Pool a cached segmentation stage over folds: per-fold and pooled defect IoU, mIoU, P, R.

    python experiments/pool_stage.py RUN_DIR unet-true [--folds 0 1 2]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from racam.evaluation.metrics import Counts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("tag", help="segmentation folder name, e.g. unet-true or unet-racam-d10")
    ap.add_argument("--folds", type=int, nargs="+", default=[0, 1, 2])
    a = ap.parse_args()
    total = Counts(0, 0, 0, 0)
    rows = []
    for k in a.folds:
        d = json.loads((a.run / f"fold{k}" / "segmentation" / a.tag / "result.json").read_text())
        v = d.get("value", d)
        c = Counts(**v["counts"])
        total = Counts(total.tp + c.tp, total.fp + c.fp, total.fn + c.fn, total.tn + c.tn)
        rows.append((f"fold {k}", c, v.get("seconds")))
    rows.append(("pooled", total, sum(r[2] or 0 for r in rows)))
    for name, c, sec in rows:
        print(f"{name:<8} defect IoU {100 * c.iou:6.2f}  mIoU {100 * c.miou:6.2f}  "
              f"P {100 * c.precision:6.2f}  R {100 * c.recall:6.2f}  seconds {sec}")


if __name__ == "__main__":
    main()
