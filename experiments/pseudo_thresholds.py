"""Compare ways to threshold heat maps into pseudo-labels, on defective *training* images only.

For each fold: RA-CAM maps (the config's fusion, ``--delta``) of the defective training images at
original size, thresholded by Otsu (the protocol), by Otsu applied again inside the Otsu
foreground ("otsu2", a smaller, more confident mask), and by fixed fractions of each map's
maximum. ``--guided R,EPS`` (repeatable) adds the Otsu and otsu2 masks of the maps refined by a
guided filter with the image as guide (:mod:`racam.pseudo.guided`, radius R at the model's input
size). With several run folders the maps of their classifiers are averaged (an ensemble of
classifier seeds). Prints pooled IoU / precision / recall against the true training masks.

    python experiments/pseudo_thresholds.py ksdd-cpu RUN_DIR --set cam.fusion=mean --delta 10
    python experiments/pseudo_thresholds.py ksdd-cpu RUN_DIR --delta 0 \\
        --guided 4,0.01 --guided 8,0.1
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import torch

from racam.cam import build_cam
from racam.checkpoint import load_classifier
from racam.classifier.restarts import chosen_checkpoint
from racam.engine import load_run_config
from racam.evaluation.metrics import SegmentationMeter
from racam.models import classifier_target_layers
from racam.pseudo.guided import guide_from_images, guided_filter
from racam.pseudo.heatmaps import iter_heatmaps, to_original_size
from racam.pseudo.otsu import otsu_threshold
from racam.stages.folds import fold_datasets


def otsu_masks(big: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Otsu mask of a map and its otsu2 mask (Otsu again inside the Otsu foreground)."""
    otsu = big > otsu_threshold(big[None])[0]
    inner = big[otsu]
    t2 = otsu_threshold(inner[None, None, :].float())[0] if inner.numel() > 1 else 0.0
    return otsu, big > t2


def mean_cam(cams: list) -> Callable[..., torch.Tensor]:
    """A CAM whose maps are the mean of ``cams``' maps."""
    def cam(images: torch.Tensor, targets: int = 1) -> torch.Tensor:
        return torch.stack([c(images, targets=targets) for c in cams]).mean(0)
    return cam


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("config")
    ap.add_argument("run", type=Path, nargs="+",
                    help="run folder(s); with several, each image's maps (one per run's "
                         "classifier) are averaged")
    ap.add_argument("--set", dest="sets", action="append", default=[])
    ap.add_argument("--delta", type=float, default=10)
    ap.add_argument("--folds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--guided", action="append", default=[], metavar="R,EPS")
    a = ap.parse_args()
    cfg = load_run_config(a.config, a.sets)
    guided = [(int(r), float(e)) for r, e in (g.split(",") for g in a.guided)]
    rules = ["otsu", "otsu2", "0.3max", "0.5max", "0.7max"]
    rules += [f"g{r},{e}{t}" for r, e in guided for t in ("", "+otsu2")]
    meters = {r: SegmentationMeter() for r in rules}
    batch: dict[str, torch.Tensor] = {}  # the raw maps of the current batch, and their guides
    pos = [0]  # index of the next sample in it

    def keep(maps: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
        batch.update(maps=maps, guide=guide_from_images(images))
        pos[0] = 0
        return maps

    for k in a.folds:
        fd = fold_datasets(cfg.data, k, cfg.seed)
        cams = []
        for run in a.run:
            model, _ = load_classifier(chosen_checkpoint(run / f"fold{k}" / "classifier"))
            layers = list(classifier_target_layers(model).values())
            cams.append(build_cam("racam", model.eval(), target_layers=layers, delta=a.delta,
                                  fusion=cfg.cam.fusion))
        cam = mean_cam(cams)
        ds = fd.train_all
        idx = [i for i, y in enumerate(ds.labels) if y == 1]
        for i, s, big, _ in iter_heatmaps(cam, ds, idx, batch_size=4, device="cpu",
                                          refine=keep):
            j, pos[0] = pos[0], pos[0] + 1
            true = torch.from_numpy(ds.true_mask(i))[None]
            otsu, otsu2 = otsu_masks(big)
            masks = {"otsu": otsu, "otsu2": otsu2}
            for f in (0.3, 0.5, 0.7):
                masks[f"{f}max"] = big > f * big.max()
            for rad, eps in guided:
                refined = guided_filter(batch["maps"][j:j + 1], batch["guide"][j:j + 1], rad, eps)
                gbig = to_original_size(refined, s.original_size)[0]
                masks[f"g{rad},{eps}"], masks[f"g{rad},{eps}+otsu2"] = otsu_masks(gbig)
            for r in rules:
                meters[r].update(masks[r][None], true, ids=[str(i)])
    for r in rules:
        c = meters[r].total
        print(f"{r:<16} IoU {100 * c.iou:6.2f}  P {100 * c.precision:6.2f}  "
              f"R {100 * c.recall:6.2f}")


if __name__ == "__main__":
    main()
