"""What each scored classifier epoch's pseudo-labels would have scored (issue 29).

``classifier.keep_epoch: pseudo_area`` writes every eligible epoch's pseudo-labels of the
defective training images under ``fold<k>/classifier/epochs/pseudo-masks/epoch<e>/<key>/masks``
(:mod:`racam.pseudo.stash`) and keeps the epoch whose labels mark the least. This scores each
stashed epoch's masks against the true masks ``<dataset root>/masks/<stem>.*`` (scored only,
never a choice): pooled defect IoU with its interval, and the area the choice used.

    python experiments/stash_iou.py RUN --root /work/datasets/ksdd-folder [--fold 0]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from PIL import Image

from racam.data import read_mask
from racam.evaluation.bootstrap import bootstrap_iou


def epoch_counts(masks: Path, root: Path) -> list[list[int]]:
    """Per mask file ``<class>__<stem>.png``: [tp, fp, fn] against the true mask."""
    rows = []
    for path in sorted(masks.glob("*.png")):
        stem = path.stem.split("__", 1)[1]
        (true_path,) = (root / "masks").glob(f"{stem}.*")
        true = read_mask(true_path) > 0
        with Image.open(path) as m:
            pred = np.asarray(m) > 0
        rows.append([int((pred & true).sum()), int((pred & ~true).sum()),
                     int((~pred & true).sum())])
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("--root", type=Path, required=True, help="the folder dataset's root")
    ap.add_argument("--fold", type=int, default=0)
    args = ap.parse_args()
    folder = args.run / f"fold{args.fold}" / "classifier"
    choice = json.loads((folder / "result.json").read_text()).get("epoch_choice") or {}
    areas = choice.get("areas", {})
    print(f"{folder}: kept epoch {choice.get('epoch')} (AUROC epoch {choice.get('by_auroc')})")
    print("| epoch | area % (the choice's score) | IoU [95 %] | images |")
    print("| ---: | ---: | ---: | ---: |")
    stash = folder / "epochs" / "pseudo-masks"
    for d in sorted(stash.iterdir(), key=lambda p: int(p.name.removeprefix("epoch"))):
        (masks,) = d.glob("*/masks")
        c = np.array(epoch_counts(masks, args.root))
        iou = bootstrap_iou(c)
        epoch = d.name.removeprefix("epoch")
        area = f"{100 * areas[epoch]:.2f}" if epoch in areas else "-"
        mark = " (kept)" if str(choice.get("epoch")) == epoch else ""
        print(f"| {epoch}{mark} | {area} | {100 * iou.estimate:.2f} [{100 * iou.low:.2f}, "
              f"{100 * iou.high:.2f}] | {len(c)} |")


if __name__ == "__main__":
    main()
