"""Choose the segmentation recipe on validation images (never on test folds).

Trains a segmentation network on the training part of one KolektorSDD fold (the fold's training
images minus a stratified validation share, ``data.val_fraction``) on true masks or on a
pseudo-label folder, then scores it on the held-out validation images (defect IoU over all
validation images, pooled pixels, at original resolution). Prints one JSON line.

    python experiments/seg_recipe.py ksdd-cpu --fold 0 --set segmentation.epochs=4 [--pseudo DIR]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

from racam.engine import load_run_config
from racam.stages.folds import LabelledSubset, fold_datasets


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("config")
    ap.add_argument("--fold", type=int, default=0)
    ap.add_argument("--set", dest="sets", action="append", default=[])
    ap.add_argument("--pseudo", type=Path, default=None, help="pseudo-label folder (manifest)")
    ap.add_argument("--out", type=Path, default=Path("runs/seg-recipe"))
    ap.add_argument("--split", choices=("val", "test"), default="val",
                    help="score on validation images (default) or, for a chosen recipe, test")
    args = ap.parse_args(argv)
    cfg = load_run_config(args.config, args.sets)
    overrides = args.sets

    from racam.evaluation.segmentation_quality import evaluate_segmentation
    from racam.pseudo.labels import PseudoLabelDataset
    from racam.segmentation import load_segmentation, train_segmentation

    fd = fold_datasets(cfg.data, args.fold, cfg.seed)
    if args.split == "val":
        train = LabelledSubset(fd.train_all, list(fd.train.indices))
        score_on = fd.val
    else:
        train, score_on = fd.train_all, fd.test
    if args.pseudo is not None:
        base = PseudoLabelDataset(fd.train_all, args.pseudo)
        train = LabelledSubset(base, list(train.indices)) if args.split == "val" else base
    import hashlib
    digest = hashlib.sha1(json.dumps([overrides, str(args.pseudo)], sort_keys=True).encode())
    out = args.out / f"fold{args.fold}-{args.split}-{digest.hexdigest()[:12]}"
    t0 = time.perf_counter()
    scfg = cfg.segmentation
    if not scfg.arch.startswith("deeplab"):  # as the pipeline does: output_stride is DeepLab's
        scfg = dataclasses.replace(scfg, output_stride=None)
    res = train_segmentation(scfg, train, out, seed=cfg.seed + args.fold,
                             device="cpu", in_channels=cfg.data.channels, progress=False)
    train_s = time.perf_counter() - t0
    model, _ = load_segmentation(res.last_path)
    t1 = time.perf_counter()
    r = evaluate_segmentation(model, score_on, batch_size=4, device="cpu",
                              bf16=cfg.segmentation.precision == "bf16")
    c = r["counts"]
    print(json.dumps({"fold": args.fold, "split": args.split, "overrides": overrides,
                      "pseudo": str(args.pseudo) if args.pseudo else None,
                      "train_seconds": round(train_s, 1),
                      "eval_seconds": round(time.perf_counter() - t1, 1),
                      **{k: None if v is None else round(100 * v, 2)  # None: no pixel
                         for k, v in (("iou", c.iou), ("precision", c.precision),
                                      ("recall", c.recall))},
                      "n_images": len(score_on),
                      "n_defective": int(sum(score_on.labels)),
                      "last_loss": res.history[-1]["loss"] if res.history else None}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
