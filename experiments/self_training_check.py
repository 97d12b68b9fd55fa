"""Would one round of self-training help? Compare, on the defective *training* images of a fold,
the pseudo-labels a segmentation network was trained on with that network's own masks.

Both are scored against the true training masks (training images only: no test image is used).
If the network's masks score higher than its labels, training a second network on them (one
round of self-training, ``segmentation.self_training``) is worth trying.

    python experiments/self_training_check.py ksdd-cpu RUN_DIR --folds 0 1 2
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from racam.data import read_mask
from racam.engine import load_run_config
from racam.evaluation.metrics import SegmentationMeter
from racam.evaluation.segmentation_quality import evaluate_segmentation
from racam.layout import segmentation_tag
from racam.pseudo.labels import mask_filename
from racam.segmentation import load_segmentation
from racam.stages.folds import fold_datasets


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("config")
    ap.add_argument("run", type=Path)
    ap.add_argument("--set", dest="sets", action="append", default=[])
    ap.add_argument("--folds", type=int, nargs="+", default=[0, 1, 2])
    a = ap.parse_args()
    cfg = load_run_config(a.config, a.sets)
    labels_meter, net_meter = SegmentationMeter(), SegmentationMeter()
    for k in a.folds:
        fd = fold_datasets(cfg.data, k, cfg.seed)
        ds = fd.train_all
        idx = [i for i, y in enumerate(ds.labels) if y == 1]
        seg_dir = a.run / f"fold{k}" / "segmentation" / segmentation_tag(cfg)
        tag = seg_dir.name.split("-", 1)[1]
        pseudo_dir = a.run / f"fold{k}" / "pseudo" / tag
        for i in idx:
            rec = ds.records[i]
            lab = torch.from_numpy(read_mask(pseudo_dir / "masks" / mask_filename(rec.id)))
            labels_meter.update(lab[None], torch.from_numpy(ds.true_mask(i))[None],
                                ids=[rec.id])
        model, _ = load_segmentation(seg_dir / "last.pt", map_location="cpu")
        sub = torch.utils.data.Subset(ds, idx)
        sub.true_mask = lambda j, ds=ds, idx=idx: ds.true_mask(idx[j])  # type: ignore[attr-defined]
        sub.records = [ds.records[i] for i in idx]  # type: ignore[attr-defined]
        r = evaluate_segmentation(model, sub, device="cpu",
                                  bf16=cfg.segmentation.precision == "bf16")
        net_meter.add(r["counts"], f"fold{k}")
        for name, m in (("labels", labels_meter), ("network", net_meter)):
            c = m.total
            print(f"after fold {k}: {name:<8} IoU {100 * c.iou:6.2f}  P {100 * c.precision:6.2f}"
                  f"  R {100 * c.recall:6.2f}", flush=True)


if __name__ == "__main__":
    main()
