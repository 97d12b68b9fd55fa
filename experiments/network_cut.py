"""Would a tighter cut of a finished run's segmentation network beat its masks at p > 0.5?
The network copies its pseudo-labels' width (blobs about 2.5 times KolektorSDD's cracks); its
probability may still peak on the defect. The cut tried is label-free and only ever narrows the
mask: ``p > max(0.5, Otsu of p over the pixels above 0.5)`` per image (the second Otsu cut of
``otsu2``, applied to the network's foreground; an image with nothing above 0.5 stays empty);
since the twenty-seventh session the product's ``segmentation.mask_cut: foreground_otsu``.

Scores the fold's stored network on the defective training images and on the test images (all,
and the defective ones), both cuts, against the folder's true masks (evaluation only), with the
paired bootstrap interval of the new cut minus p > 0.5. Nothing here chooses a setting.

    OMP_NUM_THREADS=2 python experiments/network_cut.py folder-example \\
        --set data.root=/work/datasets/ksdd-folder-f1 --set segmentation.train_masks=none \\
        --set seed=1 --out /work/runs/ks-f1-s1
"""

from __future__ import annotations

import json

import numpy as np
import torch
from run_args import finished_run, run_parser
from seg_mirror_tta import report

from racam.data import RecordDataset
from racam.evaluation.metrics import confusion_counts
from racam.pseudo.heatmaps import to_original_size
from racam.segmentation import load_segmentation
from racam.segmentation.mask_cut import cut_mask
from racam.segmentation.probability import defect_probability

NAMES = ("p > 0.5", "foreground Otsu")
CUTS = ("half", "foreground_otsu")


@torch.no_grad()
def scored(model: torch.nn.Module, ds: RecordDataset, cuts: tuple[str, ...] = CUTS
           ) -> dict[str, dict[str, list[int]]]:
    """``{cut: {image id: [tp, fp, fn, tn]}}`` over ``ds``'s images with a usable mask, each
    map at the image's size cut by the product's rule (``segmentation.mask_cut``)."""
    out: dict[str, dict[str, list[int]]] = {c: {} for c in cuts}
    for i in range(len(ds)):
        true_np = ds.true_mask(i)
        if true_np is None:
            continue
        s = ds[i]
        p = to_original_size(defect_probability(model(s.image[None])), s.original_size)[0]
        true = torch.from_numpy(true_np)
        for c in cuts:
            out[c][s.id] = confusion_counts(cut_mask(p, c)[None], true[None])[0].tolist()
    return out


def main() -> None:
    args = run_parser(__doc__).parse_args()
    cfg, clf, seg = finished_run(args)
    from racam.stages.folds import fold_datasets

    data = fold_datasets(cfg.data, args.fold, cfg.seed)
    net, _ = load_segmentation(seg["checkpoint"])
    net.eval()
    every = data.train_all
    train_def = RecordDataset([r for r in every.records if r.label == 1], every.size,
                              every.channels, has_masks=every.has_masks)
    tr, te = scored(net, train_def), scored(net, data.test)
    defective = {k for k, y in zip(clf["test_ids"], clf["test_labels"]) if y == 1}
    h, f = CUTS
    out = {"defective training": report("defective training images", tr[h], tr[f],
                                        names=NAMES),
           "defective test": report("defective test images", te[h], te[f], defective, NAMES),
           "all test": report("all test images", te[h], te[f], names=NAMES)}
    area = {k: float(np.mean([c[0] + c[1] for c in tr[k].values()])) for k in tr}
    print(f"mean marked pixels per defective training image: {area}")
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
