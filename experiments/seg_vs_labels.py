"""Why a folder run's segmentation network scores below (or above) its own pseudo-labels.

    PYTHONPATH=src python experiments/seg_vs_labels.py folder-example \
        --set data.root=/work/datasets/ksdd-folder --out /work/runs/ksdd-folder [--seg TAG]

Reads a finished run (it trains nothing: a stage result that is missing is an error) and prints
two kinds of evidence as JSON:

- ``training_side`` (label-free: image labels and pseudo-labels only, what a run may use for a
  choice): the pseudo-labels' empty share and area on the defective training images and any
  marks on defect-free ones; the crops the segmentation stage draws (its own
  ``DefectCropDataset`` with the run's seed, every epoch): the share of crops holding a
  pseudo-label pixel and the share of label pixels; and the trained network against its own
  labels on the training images (IoU on the defective ones; pixels and images it marks among the
  defect-free ones).
- ``evaluation`` (true masks, for the report only): the network's IoU on all test images and on
  the defective ones, the heat map's (RA-CAM, Otsu) on the defective test images, the
  pseudo-labels' on the defective training images, with 95 % bootstrap intervals where
  per-image counts exist, and the share of the network's false-positive pixels that fall on
  defect-free test images.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from racam.data import read_mask, resize_mask
from racam.engine import Engine as Pipeline
from racam.engine import load_run_config as load
from racam.evaluation.bootstrap import BOOTSTRAP_SEED, CONFIDENCE, bootstrap_iou
from racam.pseudo.labels import PseudoLabelDataset, mask_filename
from racam.segmentation.crops import DefectCropDataset


def _read(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise SystemExit(f"{path}: missing; finish the run first (this script trains nothing)")
    return json.loads(path.read_text())


def iou(tp: int, fp: int, fn: int) -> float | None:
    return None if tp + fp + fn == 0 else tp / (tp + fp + fn)


def pooled(per_image: dict[str, list[int]], ids: list[str]) -> dict[str, Any]:
    """Pooled IoU of ``ids`` and its bootstrap interval (the run's seed and confidence)."""
    rows = [per_image[i] for i in sorted(ids)]
    tp, fp, fn = (int(sum(r[k] for r in rows)) for k in range(3))
    out: dict[str, Any] = {"images": len(rows), "iou": iou(tp, fp, fn), "tp": tp, "fp": fp,
                           "fn": fn}
    if rows:
        out["interval"] = bootstrap_iou(rows, confidence=CONFIDENCE,
                                        seed=BOOTSTRAP_SEED).to_dict()
    return out


def pseudo_stats(pipe: Pipeline, fold: int) -> dict[str, Any]:
    """Empty share and area of the pseudo-labels (original size), by image label."""
    ds, d = pipe.data(fold).train_all, pipe.pseudo_dir(fold)
    area: dict[int, list[float]] = {0: [], 1: []}
    for rec, lab in zip(ds.records, ds.labels):
        m = read_mask(d / "masks" / mask_filename(rec.id))
        area[lab].append(float(np.asarray(m).mean()))
    a1, a0 = np.array(area[1]), np.array(area[0])
    return {"defective_images": len(a1), "defective_empty": int((a1 == 0).sum()),
            "defective_area_mean_pct": 100 * float(a1.mean()),
            "defective_area_median_pct": 100 * float(np.median(a1)),
            "good_images": len(a0), "good_nonempty": int((a0 > 0).sum())}


def crop_stats(pipe: Pipeline, fold: int) -> dict[str, Any]:
    """What the segmentation stage's crops hold (its sampler, seed and epochs)."""
    s = pipe.cfg.segmentation
    train = PseudoLabelDataset(pipe.data(fold).train_all, pipe.pseudo_dir(fold))
    n = s.samples_per_epoch or len(train)
    crops = DefectCropDataset(train, s.crop, s.defect_crop_fraction, n,
                              seed=pipe.cfg.seed + fold, labels=list(train.labels))
    with_label = label_px = px = from_good = 0
    for epoch in range(s.epochs):
        crops.set_epoch(epoch)
        for k in range(n):
            c = crops[k]
            assert c.mask is not None
            with_label += int(c.mask.any())
            label_px += int(c.mask.sum())
            px += c.mask.numel()
            from_good += int(c.label == 0)
    total = n * s.epochs
    whole = [float(train[i].mask.float().mean()) for i in range(len(train))]
    return {"crops": total, "crop": list(s.crop), "defect_crop_fraction": s.defect_crop_fraction,
            "crops_with_label_pct": 100 * with_label / total,
            "crops_from_good_images_pct": 100 * from_good / total,
            "label_pixels_in_crops_pct": 100 * label_px / px,
            "label_pixels_in_whole_images_pct": 100 * float(np.mean(whole))}


def _seg_dir(pipe: Pipeline, fold: int, tag: str | None) -> Path:
    root = pipe.fold_dir(fold) / "segmentation"
    dirs = [root / tag] if tag else sorted(p for p in root.iterdir() if p.is_dir())
    done = [p for p in dirs if (p / "result.json").is_file()]
    if len(done) != 1:
        raise SystemExit(f"{root}: {len(done)} finished segmentation folders; name one with --seg")
    return done[0]


@torch.no_grad()
def network_vs_labels(pipe: Pipeline, fold: int, seg: Path) -> dict[str, Any]:
    """The trained network (p > 0.5 at input size) against its pseudo-labels on the training
    images: label-free, what the network kept of what it was taught."""
    from racam.segmentation import load_segmentation
    from racam.segmentation.probability import probability_fn

    model, _ = load_segmentation(seg / "last.pt")
    bf16 = _bf16(pipe)
    prob = probability_fn(model, bf16=bf16)
    ds, d = pipe.data(fold).train_all, pipe.pseudo_dir(fold)
    tp = fp = fn = 0
    good_px = good_n = good_marked = 0
    pred_area: list[float] = []
    for i in range(len(ds)):
        s = ds[i]
        pred = prob(s.image[None])[0] > 0.5
        if ds.labels[i] == 0:
            good_n += 1
            good_px += int(pred.sum())
            good_marked += int(pred.any())
            continue
        h, w = pred.shape
        lab = resize_mask(read_mask(d / "masks" / mask_filename(s.id)), (w, h)).bool()
        tp += int((pred & lab).sum())
        fp += int((pred & ~lab).sum())
        fn += int((~pred & lab).sum())
        pred_area.append(float(pred.float().mean()))
    h, w = pred.shape
    return {"defective_iou_vs_pseudo": iou(tp, fp, fn), "tp": tp, "fp": fp, "fn": fn,
            "defective_pred_area_mean_pct": 100 * float(np.mean(pred_area)),
            "good_images_marked": good_marked, "good_images": good_n,
            "good_pixels_marked_pct": 100 * good_px / max(1, good_n * h * w),
            "bf16": bf16}


def _bf16(pipe: Pipeline) -> bool:
    """Whether the run's segmentation network ran under bfloat16 (as the run scores it)."""
    from racam.precision import resolve_precision

    s = pipe.cfg.segmentation
    return resolve_precision(s.precision, pipe.device).name == "bf16"


def evaluation(pipe: Pipeline, fold: int, seg: Path) -> dict[str, Any]:
    """True-mask scores of the run's stages (report only)."""
    fd = pipe.fold_dir(fold)
    clf = _read(fd / "classifier" / "result.json")
    label = dict(zip(clf["test_ids"], clf["test_labels"]))
    per = _read(seg / "result.json")["per_image"]
    defective = [i for i in per if label.get(i.split("#")[0]) == 1]
    good = [i for i in per if label.get(i.split("#")[0]) == 0]
    out = {"classifier_test_auroc": clf["test_auroc"], "best_epoch": clf["best_epoch"],
           "segmentation_all": pooled(per, list(per)),
           "segmentation_defective": pooled(per, defective),
           "segmentation_fp_on_good_pct": 100 * sum(per[i][1] for i in good)
           / max(1, sum(per[i][1] for i in per))}
    cams = sorted((fd / "cam" / "test").glob("*.json"))
    for path in cams:
        r = json.loads(path.read_text())
        out[f"heatmap_{path.stem}"] = pooled(r["paper_per_image"], list(r["paper_per_image"]))
    pseudo = _read(pipe.pseudo_dir(fold) / "result.json")["pseudo_vs_true_defective"]
    if pseudo:
        out["pseudo_labels_defective_train"] = {
            "stored_iou": iou(pseudo["tp"], pseudo["fp"], pseudo["fn"]),
            **pooled(*pseudo_per_image(pipe, fold))}
    return out


def pseudo_per_image(pipe: Pipeline, fold: int) -> tuple[dict[str, list[int]], list[str]]:
    """``{id: [tp, fp, fn]}`` of the pseudo-labels against the true masks of the defective
    training images (for an interval; the run stores only the pooled counts)."""
    ds, d = pipe.data(fold).train_all, pipe.pseudo_dir(fold)
    per: dict[str, list[int]] = {}
    for rec, lab in zip(ds.records, ds.labels):
        if lab != 1 or rec.mask_path is None:
            continue
        p = read_mask(d / "masks" / mask_filename(rec.id))
        t = read_mask(rec.mask_path)
        per[rec.id] = [int((p & t).sum()), int((p & ~t).sum()), int((~p & t).sum())]
    return per, list(per)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("config")
    p.add_argument("--set", dest="set_", action="append", default=[])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--seg", default=None, help="segmentation folder name (default: the one)")
    p.add_argument("--skip-network", action="store_true", help="leave out network_vs_labels")
    args = p.parse_args()
    pipe = Pipeline(load(args.config, args.set_, args.out), progress=False, log=lambda _: None)
    fold = pipe.folds[0]
    seg = _seg_dir(pipe, fold, args.seg)
    report: dict[str, Any] = {"run": str(args.out), "segmentation": seg.name,
                              "training_side": {"pseudo_labels": pseudo_stats(pipe, fold),
                                                "crops": crop_stats(pipe, fold)}}
    if not args.skip_network:
        report["training_side"]["network_vs_labels"] = network_vs_labels(pipe, fold, seg)
    report["evaluation"] = evaluation(pipe, fold, seg)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
