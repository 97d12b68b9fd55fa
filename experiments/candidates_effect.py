"""Table III's weakly supervised row with ``classifier.candidates: 2`` against without, from
finished run folders (no training here).

For every classifier seed ``s`` and fold ``k``, ``CAND/seed<s>/fold<k>/classifier/result.json``
(written by ``racam train-classifier ... --set classifier.candidates=2``) says which candidate
the pipeline kept. Attempt 0 is the classifier of the base run (the same seed, the same
checkpoint), so its segmentation result is the base run's; another attempt's segmentation result
is read from ``CAND``. Prints per seed and fold which candidate was kept (with both pseudo-label
areas), the weakly supervised network's pooled defect IoU per seed, mean +- sd over seeds, a 95 %
bootstrap interval over the test images, and the paired interval of "with candidates" minus
"without" (the same seeds and images).

    python experiments/candidates_effect.py --base /work/runs/repro-new --cand /work/runs/cand \\
        --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any

import numpy as np

from racam.evaluation.bootstrap import (
    BOOTSTRAP_SEED,
    align_per_image,
    bootstrap_iou,
    paired_bootstrap_iou_difference,
    pooled_iou,
)
from racam.evaluation.pooling import merged_per_image

KEY = "unet-racam-d70-g16e0.0001-otsu2"


def seed_dir(root: Path, seed: int, base: bool) -> Path:
    """A seed's run folder: the reproduction keeps seed 0 at its root, ``seed<s>`` beside."""
    return root if base and seed == 0 else root / f"seed{seed}"


def read(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", type=Path, required=True, help="reproduction folder (without)")
    ap.add_argument("--cand", type=Path, required=True, help="folder of the candidates runs")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--folds", type=int, nargs="+", default=[0, 1, 2])
    a = ap.parse_args()
    with_c: list[dict[str, Any]] = []
    without: list[dict[str, Any]] = []
    for s in a.seeds:
        folds: dict[int, dict[str, Any]] = {}
        for k in a.folds:
            clf = read(seed_dir(a.cand, s, False) / f"fold{k}" / "classifier" / "result.json")
            attempts = clf.get("attempts", [])
            kept = next(x for x in attempts if x["chosen"]) if attempts else {"attempt": 0}
            base_seg = seed_dir(a.base, s, True) / f"fold{k}" / "segmentation" / KEY
            seg = base_seg if kept["attempt"] == 0 else (
                seed_dir(a.cand, s, False) / f"fold{k}" / "segmentation" / KEY)
            folds[k] = {"with": read(seg / "result.json")["per_image"],
                        "without": read(base_seg / "result.json")["per_image"]}
            areas = ", ".join(f"seed {x['seed']} {100 * x['pseudo_area']:.2f} %"
                              for x in attempts if "pseudo_area" in x)
            fold_iou = {n: 100 * float(pooled_iou(np.array(list(per.values()))))
                        for n, per in folds[k].items()}
            print(f"seed {s} fold {k}: kept attempt {kept['attempt']} ({areas or 'not scored'})"
                  f"  IoU with {fold_iou['with']:.2f}  without {fold_iou['without']:.2f}")
        for n, out in (("with", with_c), ("without", without)):
            merged = merged_per_image(folds, lambda f, n=n: f[n], fold_prefix=True)
            assert merged is not None
            out.append(merged)
    ca, cb, ids = align_per_image(with_c, without)
    per_seed = {n: [100 * float(x) for x in pooled_iou(c)] for n, c in (("with", ca),
                                                                       ("without", cb))}
    for n, v in per_seed.items():
        iv = bootstrap_iou(ca if n == "with" else cb, seed=BOOTSTRAP_SEED)
        sd = statistics.stdev(v) if len(v) > 1 else 0.0
        print(f"{n:>8} candidates: per seed {' / '.join(f'{x:.2f}' for x in v)}  mean "
              f"{statistics.mean(v):.2f} +- {sd:.2f}  95% CI [{100 * iv.low:.2f}, "
              f"{100 * iv.high:.2f}] ({len(ids)} test images)")
    d = paired_bootstrap_iou_difference(ca, cb, seed=BOOTSTRAP_SEED)
    print(f"with minus without: {100 * d.estimate:+.2f} [{100 * d.low:+.2f}, "
          f"{100 * d.high:+.2f}]")


if __name__ == "__main__":
    main()
