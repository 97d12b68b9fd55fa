"""The mixed-supervision curve of a run folder (issue 27, item 2): every weakly supervised
network of a fold, with the number of true masks it learned from, how they were chosen and what
the other defective images learned (``segmentation.train_masks``, ``train_masks_choice``,
``train_masks_rest``), its defect IoU on the fold's test images with a 95 % bootstrap interval,
its difference to the network without true masks, and ranked minus random at the same count
(paired bootstrap over the test images, racam.evaluation.bootstrap). It reads the stored
``result.json`` files only; nothing is trained.

    python experiments/mixed_curve.py RUN --fold 0

The networks are made with, e.g.,
``racam train-seg ksdd-cpu --fold 0 --out RUN --set segmentation.train_masks=5
--set segmentation.train_masks_choice=ranked --set segmentation.train_masks_rest=ignore``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from racam.evaluation.bootstrap import bootstrap_iou, paired_bootstrap_iou_difference


def networks(run: Path, fold: int) -> dict[tuple[int, str, str], np.ndarray]:
    """``(count, choice, rest) -> per-image counts (N, 4)`` (sorted by image id) of the fold's
    weakly supervised UNets; count 0 is the network without true masks."""
    out = {}
    for f in sorted((run / f"fold{fold}" / "segmentation").glob("unet-*/result.json")):
        r = json.loads(f.read_text())
        if r.get("source") != "pseudo" or r.get("round", 0) or not r.get("per_image"):
            continue
        tm = r.get("train_masks")
        rest = "ignore" if f.parent.name.endswith("-restignore") else "pseudo"
        key = (0, "-", "-") if tm is None else (int(tm["count"]), tm["choice"], rest)
        out[key] = np.array([r["per_image"][i] for i in sorted(r["per_image"])])
    return out


def fmt(iv, sign: str = "") -> str:
    return (f"{100 * iv.estimate:{sign}.2f} [{100 * iv.low:{sign}.2f}, "
            f"{100 * iv.high:{sign}.2f}]")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("--fold", type=int, default=0)
    args = ap.parse_args()
    nets = networks(args.run, args.fold)
    base = nets.get((0, "-", "-"))
    print("| true masks | chosen | other defective images learn | defect IoU [95 %] "
          "| minus no true mask [95 %] |")
    print("| ---: | --- | --- | ---: | ---: |")
    for key in sorted(nets):
        n, choice, rest = key
        diff = "-" if base is None or n == 0 else (
            fmt(paired_bootstrap_iou_difference(nets[key], base), "+")
        )
        print(f"| {n} | {choice} | {rest if n else 'pseudo-labels'} | "
              f"{fmt(bootstrap_iou(nets[key]))} | {diff} |")
    for (n, choice, rest), counts in sorted(nets.items()):
        other = nets.get((n, "random", rest))
        if choice == "ranked" and other is not None:
            print(f"{n} masks, rest {rest}: ranked minus random "
                  f"{fmt(paired_bootstrap_iou_difference(counts, other), '+')}")


if __name__ == "__main__":
    main()
