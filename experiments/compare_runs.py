"""Two finished runs' segmentation on the same test images: defect IoU on the defective test
images and on all of them, each with its 95 % bootstrap interval, and the paired difference
(run A minus run B) over the images (:mod:`racam.evaluation.bootstrap`). Reads the stage results
only (``fold<k>/classifier/result.json`` for the image labels, the one
``fold<k>/segmentation/*/result.json`` for the per-image counts); nothing is chosen here.
Then the same for the runs' pseudo-labels of the defective training images, scored against
the folder's ``masks/`` (evaluation only). With ``--train-network``, also each network's masks
on those training images against the true masks, and against the pseudo-labels it learned
(its agreement: no mask read). Given several pairs (A1 B1 A2 B2 ...), each pair is
compared, then the pseudo-labels of all pairs pooled (e.g. two folds' runs).

    python experiments/compare_runs.py /work/runs/ksdd-sc /work/runs/ksdd-folder-keep [--fold 0]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from racam.evaluation.bootstrap import Interval, bootstrap_iou, paired_bootstrap_iou_difference


def stage_results(run: Path, fold: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """The classifier and segmentation stage results of ``run``'s fold."""
    folder = run / f"fold{fold}"
    (seg,) = (folder / "segmentation").glob("*/result.json")
    return (json.loads((folder / "classifier" / "result.json").read_text()),
            json.loads(seg.read_text()))


def mask_folder(run: Path, fold: int, network: bool) -> tuple[Path, list[dict[str, Any]]]:
    """The run's pseudo-label folder (the one under ``fold<k>/pseudo`` that is not a
    self-training round's), or with ``network`` the ``-masks`` folder of masks its segmentation
    network draws for the label-next list, and the folder's defective images."""
    (folder,) = [d for d in (run / f"fold{fold}" / "pseudo").iterdir()
                 if d.is_dir() and d.name.endswith("-masks") == network]
    manifest = json.loads((folder / "manifest.json").read_text())
    return folder, [rec for rec in manifest["images"] if rec["label"] == 1]


def read_binary(path: Path) -> np.ndarray:
    """A mask file as a bool array (:func:`racam.data.read_mask`, nonzero = defect)."""
    from racam.data import read_mask

    return read_mask(path) > 0


def counts(pred: np.ndarray, ref: np.ndarray) -> list[int]:
    """``[tp, fp, fn]`` of ``pred`` against ``ref``."""
    return [int((pred & ref).sum()), int((pred & ~ref).sum()), int((~pred & ref).sum())]


def pseudo_counts(run: Path, fold: int, network: bool = False) -> dict[str, list[int]]:
    """``{image id: [tp, fp, fn]}`` of the run's pseudo-labels, or with ``network`` of the masks
    its segmentation network draws, on its defective training images, against the true mask
    ``<dataset root>/masks/<stem>.*`` (evaluation only)."""
    folder, records = mask_folder(run, fold, network)
    out = {}
    for rec in records:
        image = Path(rec["image"])
        (true_path,) = (image.parent.parent / "masks").glob(f"{image.stem}.*")
        out[rec["id"]] = counts(read_binary(folder / rec["mask"]), read_binary(true_path))
    return out


def agreement_counts(run: Path, fold: int) -> dict[str, list[int]]:
    """``{image id: [tp, fp, fn]}`` of the masks the run's network draws on its defective
    training images against the pseudo-labels it learned there: how well the network fits its
    labels. Label-free: no true mask is read."""
    labels, records = mask_folder(run, fold, False)
    by_id = {rec["id"]: rec for rec in records}
    net, net_records = mask_folder(run, fold, True)
    return {rec["id"]: counts(read_binary(net / rec["mask"]),
                              read_binary(labels / by_id[rec["id"]]["mask"]))
            for rec in net_records if rec["id"] in by_id}


def pct(i: Interval, sign: str = "") -> str:
    """``i`` in percent: ``estimate [low, high]``."""
    return f"{100 * i.estimate:{sign}.2f} [{100 * i.low:{sign}.2f}, {100 * i.high:{sign}.2f}]"


def compare(run_a: Path, run_b: Path, fold: int, network: bool = False
            ) -> tuple[np.ndarray, np.ndarray]:
    """Print the two runs' segmentation and pseudo-labels; return the pseudo-labels' paired
    per-image counts (A, B), or with ``network`` the networks' on the training images."""
    (clf, a), (_, b) = stage_results(run_a, fold), stage_results(run_b, fold)
    if set(a["per_image"]) != set(b["per_image"]):
        raise SystemExit("the two runs scored different test images")
    ids = clf["test_ids"]
    defective = [k for k, y in zip(ids, clf["test_labels"]) if y == 1]
    for name, keys in (("defective test images", defective), ("all test images", ids)):
        ca, cb = (np.array([run["per_image"][k] for k in keys]) for run in (a, b))
        print(f"{name}: A {pct(bootstrap_iou(ca))}, B {pct(bootstrap_iou(cb))}, "
              f"A minus B {pct(paired_bootstrap_iou_difference(ca, cb), '+')}")
    pa, pb = pseudo_counts(run_a, fold), pseudo_counts(run_b, fold)
    if set(pa) != set(pb):
        raise SystemExit("the two runs labelled different training images")
    ca, cb = (np.array([run[k] for k in sorted(pa)]) for run in (pa, pb))
    print_pseudo(f"pseudo-labels, {len(pa)} defective training images", ca, cb)
    if not network:
        return ca, cb
    na, nb = pseudo_counts(run_a, fold, True), pseudo_counts(run_b, fold, True)
    na_, nb_ = (np.array([run[k] for k in sorted(pa)]) for run in (na, nb))
    print_pseudo("segmentation network, the same training images", na_, nb_)
    ga, gb = agreement_counts(run_a, fold), agreement_counts(run_b, fold)
    ga_, gb_ = (np.array([run[k] for k in sorted(pa)]) for run in (ga, gb))
    print_pseudo("agreement of each network with its own pseudo-labels (no true mask)", ga_, gb_)
    return na_, nb_


def print_pseudo(name: str, ca: np.ndarray, cb: np.ndarray) -> None:
    diff = paired_bootstrap_iou_difference(ca, cb)
    print(f"{name}: A {pct(bootstrap_iou(ca))}, B {pct(bootstrap_iou(cb))}, "
          f"A minus B {pct(diff, '+')}")


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("runs", type=Path, nargs="+", help="A B [A2 B2 ...]")
    ap.add_argument("--fold", type=int, default=0)
    ap.add_argument("--train-network", action="store_true",
                    help="also score the networks' masks on the defective training images")
    args = ap.parse_args()
    if len(args.runs) % 2:
        raise SystemExit("give the runs in pairs: A B [A2 B2 ...]")
    pairs = list(zip(args.runs[::2], args.runs[1::2]))
    counts = []
    for a, b in pairs:
        print(f"== A {a}, B {b}")
        counts.append(compare(a, b, args.fold, args.train_network))
    if len(pairs) > 1:
        what = "networks on the training images" if args.train_network else "pseudo-labels"
        print_pseudo(f"pooled {what} of {len(pairs)} pairs",
                     np.concatenate([c[0] for c in counts]),
                     np.concatenate([c[1] for c in counts]))


if __name__ == "__main__":
    main()
