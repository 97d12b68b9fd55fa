"""A run's heat maps on its test images, every method scored so far, with intervals.

Reads the ``fold<k>/cam/test/<method>.json`` files that ``racam run`` (the config's method) and
``racam evaluate --method M`` (the others) wrote into the run folder, and prints one table row
per method: defect IoU over the defective test images (Table I's view: Otsu on each map), its
95 % bootstrap interval over the images, and the paired difference against RA-CAM
(:mod:`racam.evaluation.bootstrap`, 10000 resamples, seed 0). Nothing is chosen here.

    python experiments/heatmap_table.py /work/runs/ksdd-folder-keep [--fold 0]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from compare_runs import pct

from racam.evaluation.bootstrap import bootstrap_iou, paired_bootstrap_iou_difference


def per_image(path: Path) -> tuple[str, dict[str, list[int]]]:
    """The method's display key and its per-image ``[tp, fp, fn, tn]`` (paper view)."""
    d = json.loads(path.read_text())
    name = d["method"] + ("" if d.get("delta") is None else f" (delta {d['delta']:g})")
    return name, d["paper_per_image"]


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("--fold", type=int, default=0)
    args = ap.parse_args()
    files = sorted((args.run / f"fold{args.fold}" / "cam" / "test").glob("*.json"))
    scored = dict(per_image(f) for f in files)
    (ref,) = [k for k in scored if k.startswith("racam")]
    ids = sorted(scored[ref])
    base = np.array([scored[ref][i][:3] for i in ids])
    print(f"| method | defect IoU [95 %] | minus {ref} [95 %] | images |")
    print("| --- | ---: | ---: | ---: |")
    for name, counts in sorted(scored.items(), key=lambda kv: kv[0] != ref):
        if set(counts) != set(ids):
            raise SystemExit(f"{name}: scored other test images than {ref}")
        c = np.array([counts[i][:3] for i in ids])
        diff = "" if name == ref else pct(paired_bootstrap_iou_difference(c, base), "+")
        print(f"| {name} | {pct(bootstrap_iou(c))} | {diff} | {len(ids)} |")


if __name__ == "__main__":
    main()
