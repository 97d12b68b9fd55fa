"""Does the classifier still see the defects on an enlarged input? (issue 29)

For each stored classifier checkpoint: its validation AUROC (image labels), its mean p(defect) and
the share of images it calls defective (p >= 0.5), on the input as it is and enlarged twice
(:func:`racam.pseudo.tta.resized`, as the heat maps of ``cam.scales`` / ``cam.scale_candidates``
see it), over the fold's validation images and its defective training images. Image labels
only; nothing is chosen here (``racam.pseudo.scale_choice`` uses the defective training images'
share).

    OMP_NUM_THREADS=1 python experiments/scale_called.py folder-example \
        --set data.root=/work/datasets/bsdata-folder --out /work/runs/any \
        --checkpoint RUN/fold0/classifier/epochs/epoch3.pt [--checkpoint ...]
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from run_args import run_parser
from sklearn.metrics import roc_auc_score

from racam.classifier import load_classifier
from racam.engine import load_run_config
from racam.pseudo.tta import resized
from racam.stages.folds import fold_datasets

SCALES = (1.0, 2.0)


@torch.no_grad()
def p_defect(model: torch.nn.Module, ds, indices: list[int], scale: float) -> np.ndarray:
    return np.array([float(model(resized(ds[i].image[None], scale)).float().softmax(1)[0, 1])
                     for i in indices])


def main() -> None:
    ap = run_parser(__doc__)
    ap.add_argument("--checkpoint", type=Path, action="append", required=True)
    ap.add_argument("--scales", type=float, nargs="+", default=list(SCALES))
    ap.add_argument("--training-only", action="store_true", help="skip the validation images")
    args = ap.parse_args()
    cfg = load_run_config(args.config, args.set_, args.out)
    fd = fold_datasets(cfg.data, args.fold, cfg.seed)
    for ck in args.checkpoint:
        model = load_classifier(ck)[0].eval()
        parts = [("validation", fd.val)] * (not args.training_only)
        for part, ds in (*parts, ("defective training", fd.train_all)):
            labels = np.array(ds.labels)
            idx = list(range(len(ds))) if part == "validation" else list(np.flatnonzero(labels))
            y = labels[idx]
            for s in args.scales:
                p = p_defect(model, ds, idx, s)
                auroc = f"AUROC {roc_auc_score(y, p):.4f}, " if 0 < y.sum() < len(y) else ""
                print(f"{ck} | {part} ({len(idx)} images, {int(y.sum())} defective) | scale "
                      f"{s:g}: {auroc}mean p(defect) of the defective {p[y == 1].mean():.3f}, "
                      f"called defective {(p[y == 1] >= 0.5).mean():.3f}", flush=True)


if __name__ == "__main__":
    main()
