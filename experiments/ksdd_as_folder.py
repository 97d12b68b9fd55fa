"""Lay KolektorSDD out as a racam folder dataset (``good/``, ``defect/``, ``masks/``) by symlinks.

    python experiments/ksdd_as_folder.py /work/shared/data/KolektorSDD /work/datasets/ksdd-folder

KolektorSDD holds ``kosNN/PartK.jpg`` with its mask ``kosNN/PartK_label.png``; an image is
defective when its mask has a defect pixel (KolektorSDD's own image-level label). Each image
becomes ``good/kosNN_PartK.jpg`` or ``defect/kosNN_PartK.jpg`` (stems unique over both folders,
as a folder dataset needs) and its mask ``masks/kosNN_PartK.png``, all symlinks to the original
files: nothing is copied, nothing of the dataset is written.

``--fold K`` also writes ``split.yaml`` from KolektorSDD's ``splits/split_33_0.pyb`` fold ``K``
(whole items in train or test, as the paper's folds; a folder dataset's own stratified split
would put parts of one item on both sides). Run with the repository's ``src`` on the path.

The target must lie outside the repository (datasets are never put in it). It is created with a
marker file; a target that exists without the marker is refused (it is not ours to change), and
one with the marker has its links made again (only links are replaced).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from folder_layout import check_target, link
from PIL import Image

MARKER = ".racam-ksdd-folder"


def defective(mask: Path) -> bool:
    """Whether the KolektorSDD mask ``mask`` has a defect pixel."""
    with Image.open(mask) as m:
        return bool(np.asarray(m).any())


def lay_out(source: Path, target: Path) -> dict[str, int]:
    """Link every KolektorSDD image of ``source`` into ``target`` (module docstring); returns
    the images per class."""
    source, target = source.resolve(), target.resolve()
    check_target(target, MARKER)
    for sub in ("good", "defect", "masks"):
        (target / sub).mkdir(parents=True, exist_ok=True)
    (target / MARKER).write_text(f"KolektorSDD {source} as a racam folder dataset\n")
    counts = {"good": 0, "defect": 0}
    for item in sorted(p for p in source.glob("kos*") if p.is_dir()):
        for image in sorted(item.glob("Part*.jpg")):
            mask = image.with_name(f"{image.stem}_label.png")
            if not mask.is_file():
                raise SystemExit(f"{mask}: mask of {image} not found")
            cls = "defect" if defective(mask) else "good"
            stem = f"{item.name}_{image.stem}"
            link(target / cls / f"{stem}{image.suffix}", image)
            link(target / "masks" / f"{stem}.png", mask)
            counts[cls] += 1
    return counts


def write_split(source: Path, target: Path, fold: int) -> Path:
    """``target/split.yaml``: the image stems of fold ``fold`` of KolektorSDD's split_33_0."""
    import yaml

    from racam.data.splits import ksdd_folds

    train, test = ksdd_folds(source / "splits" / "split_33_0.pyb")
    stems = {"good": image_stems(target / "good"), "defect": image_stems(target / "defect")}
    every = stems["good"] + stems["defect"]
    split = {part: sorted(s for s in every if s.split("_")[0] in set(items[fold]))
             for part, items in (("train", train), ("test", test))}
    path = target / "split.yaml"
    path.write_text(yaml.safe_dump(split))
    return path


def image_stems(folder: Path) -> list[str]:
    return [p.stem for p in folder.iterdir()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="the KolektorSDD folder (kos01 ... kos50)")
    parser.add_argument("target", type=Path, help="new folder outside the repository")
    parser.add_argument("--fold", type=int, default=None,
                        help="also write split.yaml from split_33_0.pyb fold 0, 1 or 2")
    args = parser.parse_args()
    counts = lay_out(args.source, args.target)
    print(f"{args.target}: {counts['good']} good, {counts['defect']} defective images linked")
    if args.fold is not None:
        print(f"{write_split(args.source, args.target, args.fold)}: fold {args.fold}")


if __name__ == "__main__":
    main()
