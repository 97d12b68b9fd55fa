"""Does a finished run's segmentation network score better when its defect probability is the
mean over the image and its three mirror images (left-right, up-down, both; nnU-Net's default
test-time augmentation)? No network is trained again; nothing here chooses a setting.

Scores the fold's stored network twice, plain and mirrored, on the fold's test images (every
one, and the defective ones; gated by the classifier at the run's threshold as the product
gates), and on its defective training images, against the folder's true masks (evaluation
only). Prints the pooled defect IoU of each and the paired bootstrap interval of mirrored
minus plain.

    OMP_NUM_THREADS=2 python experiments/seg_mirror_tta.py folder-example \\
        --set data.root=/work/datasets/ksdd-folder-f1 --set segmentation.train_masks=none \\
        --set seed=1 --out /work/runs/ks-f1-s1
"""

from __future__ import annotations

import json

import numpy as np
import torch
from run_args import finished_run, run_parser
from torch import Tensor, nn

from racam.data import RecordDataset
from racam.evaluation.bootstrap import bootstrap_iou, paired_bootstrap_iou_difference
from racam.evaluation.gate import gated_per_image
from racam.evaluation.segmentation_quality import evaluate_segmentation
from racam.segmentation import load_segmentation
from racam.stages.folds import fold_datasets


class MirrorMean(nn.Module):
    """``model``'s two-class log-probabilities averaged (as probabilities) over the input and
    its mirror images, each mapped back before averaging."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: Tensor) -> Tensor:
        probs = [self.model(x.flip(d) if d else x).float().softmax(1) for d in
                 ((), (-1,), (-2,), (-2, -1))]
        back = [p.flip(d) if d else p for p, d in zip(probs, ((), (-1,), (-2,), (-2, -1)))]
        return torch.stack(back).mean(0).clamp_min(1e-12).log()


def scored(model: nn.Module, dataset, batch: int) -> dict[str, list[int]]:
    """``{image id: [tp, fp, fn, tn]}`` of ``model`` on ``dataset``."""
    out = evaluate_segmentation(model, dataset, batch_size=batch)
    return {k: [c.tp, c.fp, c.fn, c.tn] for k, c in out["per_image"]}


def report(name: str, plain: dict[str, list[int]], mirror: dict[str, list[int]],
           keep: set[str] | None = None, names: tuple[str, str] = ("plain", "mirrored")
           ) -> dict[str, list[float]]:
    """Print and return the two IoUs (``names``) and their paired difference (the second minus
    the first) over the images ``keep`` (all: None)."""
    ids = [k for k in plain if keep is None or k in keep]
    a, b = np.array([mirror[k] for k in ids]), np.array([plain[k] for k in ids])
    ia, ib = bootstrap_iou(a), bootstrap_iou(b)
    d = paired_bootstrap_iou_difference(a, b)
    print(f"{name:28s} ({len(ids):3d} images): {names[0]} {100 * ib.estimate:6.2f} "
          f"[{100 * ib.low:.2f}, {100 * ib.high:.2f}]  {names[1]} {100 * ia.estimate:6.2f} "
          f"[{100 * ia.low:.2f}, {100 * ia.high:.2f}]  difference {100 * d.estimate:+.2f} "
          f"[{100 * d.low:+.2f}, {100 * d.high:+.2f}]")
    return {names[0]: [ib.estimate, ib.low, ib.high], names[1]: [ia.estimate, ia.low, ia.high],
            "difference": [d.estimate, d.low, d.high]}


def main() -> None:
    args = run_parser(__doc__).parse_args()
    cfg, clf, seg = finished_run(args)
    data = fold_datasets(cfg.data, args.fold, cfg.seed)
    net, _ = load_segmentation(seg["checkpoint"])
    nets = {"plain": net, "mirrored": MirrorMean(net).eval()}
    batch = cfg.segmentation.batch_size
    test = {k: scored(m, data.test, batch) for k, m in nets.items()}
    labels = dict(zip(clf["test_ids"], clf["test_labels"]))
    defective = {k for k, y in labels.items() if y == 1}
    t = (clf.get("threshold_choice") or {}).get("threshold", cfg.classifier.threshold)
    gated = {}
    for k, per in test.items():
        g = gated_per_image(per, clf["test_ids"], clf["test_probs"], t)
        assert g is not None
        gated[k] = g.per_image
    every = data.train_all
    train_def = RecordDataset([r for r in every.records if r.label == 1], every.size,
                              every.channels, has_masks=every.has_masks)
    out = {"defective test": report("defective test images", test["plain"], test["mirrored"],
                                    defective),
           "all test": report("all test images", test["plain"], test["mirrored"]),
           "all test, gated": report(f"all test images, gated {t:.4g}", gated["plain"],
                                     gated["mirrored"])}
    if train_def.records:
        tr = {k: scored(m, train_def, batch) for k, m in nets.items()}
        out["defective training"] = report("defective training images", tr["plain"],
                                           tr["mirrored"])
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
