"""Does one round of self-training on the network's own cut masks beat the network it starts
from? Round 1 (``segmentation.self_training: 1``) learns the masks round 0 draws on the
training images, cut by the run's ``segmentation.mask_cut`` (``foreground_otsu`` in
``folder-example``): narrower than the pseudo-labels round 0 learned.

Scores round 0 and round 1 of a finished run (both rounds trained; run it with
``--set segmentation.self_training=1``) with the run's cut on the defective training images and
on the test images (all, and the defective ones) against the folder's true masks (evaluation
only), with the paired bootstrap interval of round 1 minus round 0. Nothing here chooses a
setting.

    OMP_NUM_THREADS=2 python experiments/self_training_cut.py folder-example \\
        --set data.root=/work/datasets/ksdd-folder-f1 --set segmentation.train_masks=none \\
        --set seed=1 --set segmentation.self_training=1 --out /work/tmp/s28/ks-f1-s1
"""

from __future__ import annotations

import json

import numpy as np
from network_cut import scored
from run_args import run_parser
from seg_mirror_tta import report

from racam.data import RecordDataset
from racam.engine import Engine, load_run_config
from racam.segmentation import load_segmentation

NAMES = ("round 0", "round 1")


def scored_at(checkpoint: str, ds: RecordDataset, cut: str) -> dict[str, list[int]]:
    """``{image id: [tp, fp, fn, tn]}`` of the network at ``checkpoint`` over ``ds``'s images
    with a usable mask, its maps cut by ``cut`` (:func:`network_cut.scored`)."""
    model, _ = load_segmentation(checkpoint)
    return scored(model.eval(), ds, (cut,))[cut]


def main() -> None:
    args = run_parser(__doc__).parse_args()
    cfg = load_run_config(args.config, args.set_, args.out)
    assert cfg.segmentation.self_training == 1, "run it with segmentation.self_training=1"
    pipe = Engine(cfg, progress=False, log=lambda _: None)
    rounds = [pipe.segmentation(args.fold, round=r).checkpoint for r in (0, 1)]
    data = pipe.data(args.fold)
    every = data.train_all
    train_def = RecordDataset([r for r in every.records if r.label == 1], every.size,
                              every.channels, has_masks=every.has_masks)
    cut = cfg.segmentation.mask_cut
    print(f"cut {cut}; round 0 {rounds[0]}; round 1 {rounds[1]}")
    tr = [scored_at(c, train_def, cut) for c in rounds]
    te = [scored_at(c, data.test, cut) for c in rounds]
    defective = {r.id for r in data.test.records if r.label == 1}
    out = {"defective training": report("defective training images", *tr, names=NAMES),
           "defective test": report("defective test images", *te, defective, NAMES),
           "all test": report("all test images", *te, names=NAMES)}
    area = [float(np.mean([c[0] + c[1] for c in t.values()])) for t in tr]
    print(f"mean marked pixels per defective training image: round 0 {area[0]:.0f}, "
          f"round 1 {area[1]:.0f}")
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
