"""What Table III's networks would score if the masks of images the classifier calls defect-free
(probability < threshold) were emptied, from a reproduction's stored per-image counts (no
network is run).

    python experiments/gate_by_classifier.py results-folder-of-a-run [--threshold 0.5]

Prints, per segmentation network of the config's seed, the pooled defect IoU, precision and
recall with and without the gate, and where the false-positive pixels lie.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def _scores(tp: int, fp: int, fn: int) -> str:
    return (f"IoU {100 * tp / max(tp + fp + fn, 1):6.2f}  P {100 * tp / max(tp + fp, 1):6.2f}  "
            f"R {100 * tp / max(tp + fn, 1):6.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path, help="output folder of racam run / reproduce")
    ap.add_argument("--threshold", type=float, default=0.5)
    a = ap.parse_args()
    folds = sorted(a.run.glob("fold*"))
    tags = sorted({p.parent.name for f in folds for p in f.glob("segmentation/*/result.json")})
    for tag in tags:
        plain, gated, fp_free, fp_defective = [0, 0, 0], [0, 0, 0], 0, 0
        for f in folds:
            seg = json.loads((f / "segmentation" / tag / "result.json").read_text())
            clf = json.loads((f / "classifier" / "result.json").read_text())
            label = dict(zip(clf["test_ids"], clf["test_labels"]))
            prob = dict(zip(clf["test_ids"], clf["test_probs"]))
            if not seg.get("per_image"):
                raise SystemExit(f"{f / 'segmentation' / tag}: no per-image counts; run "
                                 "racam reproduce on the folder once to add them")
            for image, (tp, fp, fn, _) in seg["per_image"].items():
                plain = [plain[0] + tp, plain[1] + fp, plain[2] + fn]
                kept = prob[image] >= a.threshold
                gated = [gated[0] + tp * kept, gated[1] + fp * kept,
                         gated[2] + fn + tp * (not kept)]
                if label[image]:
                    fp_defective += fp
                else:
                    fp_free += fp
        print(f"{tag:40s} plain  {_scores(*plain)}")
        print(f"{tag:40s} gated  {_scores(*gated)}")
        print(f"{tag:40s} false-positive pixels: {fp_free} on defect-free images, "
              f"{fp_defective} on defective ones")


if __name__ == "__main__":
    main()
