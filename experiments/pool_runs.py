"""Pool finished single-fold runs (one run folder per fold of one dataset, e.g. KolektorSDD's
three folds laid out as folders): the pseudo-labels of the defective training images and the
segmentation of the defective / all test images, each as pooled defect IoU with its 95 %
bootstrap interval over the images of every fold (:mod:`racam.evaluation.bootstrap`), and per
run. Reads the stage results and masks only; nothing is chosen here.

    python experiments/pool_runs.py runs/ksdd-fold0 runs/ksdd-fold1 runs/ksdd-fold2
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from compare_runs import pct, pseudo_counts, stage_results

from racam.evaluation.bootstrap import bootstrap_iou


def counts(run: Path) -> dict[str, np.ndarray]:
    """Per-image ``[tp, fp, fn]`` of ``run``'s fold 0: ``pseudo`` (defective training images),
    ``defective`` and ``all`` (test images)."""
    clf, seg = stage_results(run, 0)
    ids = clf["test_ids"]
    bad = [k for k, y in zip(ids, clf["test_labels"]) if y == 1]
    pseudo = pseudo_counts(run, 0)
    return {"pseudo": np.array([pseudo[k] for k in sorted(pseudo)]),
            "defective": np.array([seg["per_image"][k] for k in bad]),
            "all": np.array([seg["per_image"][k] for k in ids])}


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("runs", type=Path, nargs="+")
    args = ap.parse_args()
    per_run = {run: counts(run) for run in args.runs}
    names = {"pseudo": "pseudo-labels, defective training images",
             "defective": "segmentation, defective test images",
             "all": "segmentation, all test images"}
    for key, name in names.items():
        cells = [f"{run.name} {100 * bootstrap_iou(c[key]).estimate:.2f}"
                 for run, c in per_run.items()]
        pooled = np.concatenate([c[key] for c in per_run.values()])
        print(f"{name}: pooled over {len(pooled)} images {pct(bootstrap_iou(pooled))}; "
              + ", ".join(cells))


if __name__ == "__main__":
    main()
