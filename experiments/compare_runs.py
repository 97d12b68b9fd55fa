"""Two finished runs' segmentation on the same test images: defect IoU on the defective test
images and on all of them, each with its 95 % bootstrap interval, and the paired difference
(run A minus run B) over the images (:mod:`racam.evaluation.bootstrap`). Reads the stage results
only (``fold<k>/classifier/result.json`` for the image labels, the one
``fold<k>/segmentation/*/result.json`` for the per-image counts); nothing is chosen here.

    python experiments/compare_runs.py /work/runs/ksdd-sc /work/runs/ksdd-folder-keep [--fold 0]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from racam.evaluation.bootstrap import Interval, bootstrap_iou, paired_bootstrap_iou_difference


def stage_results(run: Path, fold: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """The classifier and segmentation stage results of ``run``'s fold."""
    folder = run / f"fold{fold}"
    (seg,) = (folder / "segmentation").glob("*/result.json")
    return (json.loads((folder / "classifier" / "result.json").read_text()),
            json.loads(seg.read_text()))


def pct(i: Interval, sign: str = "") -> str:
    """``i`` in percent: ``estimate [low, high]``."""
    return f"{100 * i.estimate:{sign}.2f} [{100 * i.low:{sign}.2f}, {100 * i.high:{sign}.2f}]"


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("a", type=Path)
    ap.add_argument("b", type=Path)
    ap.add_argument("--fold", type=int, default=0)
    args = ap.parse_args()
    (clf, a), (_, b) = stage_results(args.a, args.fold), stage_results(args.b, args.fold)
    if set(a["per_image"]) != set(b["per_image"]):
        raise SystemExit("the two runs scored different test images")
    ids = clf["test_ids"]
    defective = [k for k, y in zip(ids, clf["test_labels"]) if y == 1]
    for name, keys in (("defective test images", defective), ("all test images", ids)):
        ca, cb = (np.array([run["per_image"][k] for k in keys]) for run in (a, b))
        print(f"{name}: A {pct(bootstrap_iou(ca))}, B {pct(bootstrap_iou(cb))}, "
              f"A minus B {pct(paired_bootstrap_iou_difference(ca, cb), '+')}")


if __name__ == "__main__":
    main()
