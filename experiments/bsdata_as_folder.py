"""Lay BSData (ball screw drive pitting, github.com/2Obe/BSData) out as a racam folder dataset.

    python experiments/bsdata_as_folder.py /work/datasets/BSData /work/datasets/bsdata-folder

BSData holds ``data/*.jpg`` (1104 RGB photos), ``label/*.json`` (labelme polygons of the
defect type "Pitting" for 394 of them) and ``image_data.json`` (per image: its labelme file or
``null``, and its ball-screw type 1 or 2). An image with a labelme file is defective, one
without is defect-free (the dataset annotates every pitting of the 394; the other 710 show
none). Only type 2 is laid out by default (``--types 1 2`` for both): type 1 has 69 photos of
55 sizes, all defective, so a classifier could tell its defects from the photo alone.

Each image becomes a symlink ``good/<stem>.jpg`` or ``defect/<stem>.jpg``; each defective
image gets ``masks/<stem>.png`` (its polygons filled with 255 at the image's size; written,
since BSData has no mask images). ``split.yaml`` puts whole wear sequences (one spindle
position photographed over time: ``01_<time>_<position>_<angle>_crop_<k>``) on one side, about
``--test-fraction`` of the images in ``test``, so no near-identical photo of a test position is
trained on. The target must lie outside the repository; it carries a marker file, and a target
without the marker is refused (it is not ours to change).
"""

from __future__ import annotations

import argparse
import json
import random
from collections import defaultdict
from pathlib import Path

from folder_layout import check_target, link
from PIL import Image, ImageDraw

MARKER = ".racam-bsdata-folder"


def sequence(stem: str) -> str:
    """The wear sequence (spindle position) of image ``stem``: its name without the time stamp
    and crop index (type 2), or without the crop index (type 1)."""
    parts = stem.split("_")
    if parts[0] == "01" and len(parts) >= 6:
        return "_".join([parts[0], parts[2], parts[3]])
    return stem.rsplit("_", 1)[0]


def render_mask(label: Path, size: tuple[int, int]) -> Image.Image:
    """The labelme polygons of ``label`` filled with 255 on a black ``size`` image."""
    mask = Image.new("L", size, 0)
    draw = ImageDraw.Draw(mask)
    for shape in json.loads(label.read_text())["shapes"]:
        points = [tuple(p) for p in shape["points"]]
        if len(points) >= 3:
            draw.polygon(points, fill=255, outline=255)
    return mask


def lay_out(source: Path, target: Path, types: set[int]) -> dict[str, list[str]]:
    """Links, masks and marker (module docstring); returns the stems per class."""
    source, target = source.resolve(), target.resolve()
    check_target(target, MARKER)
    for sub in ("good", "defect", "masks"):
        (target / sub).mkdir(parents=True, exist_ok=True)
    (target / MARKER).write_text(f"BSData {source} as a racam folder dataset\n")
    stems: dict[str, list[str]] = {"good": [], "defect": []}
    for entry in json.loads((source / "image_data.json").read_text())["images"]:
        if entry["type"] not in types:
            continue
        image = source / "data" / entry["filename"]
        if not image.is_file():
            raise SystemExit(f"{image}: listed in image_data.json but not found")
        cls = "defect" if entry["annotations"] else "good"
        link(target / cls / image.name, image)
        stems[cls].append(image.stem)
        if cls == "defect":
            with Image.open(image) as im:
                size = im.size
            mask = target / "masks" / f"{image.stem}.png"
            if mask.exists() and not mask.is_file():
                raise SystemExit(f"{mask}: exists and is not a file")
            render_mask(source / "label" / entry["annotations"], size).save(mask)
    return stems


def write_split(target: Path, stems: dict[str, list[str]], test_fraction: float,
                seed: int) -> tuple[Path, dict[str, int]]:
    """``target/split.yaml``: whole sequences, shuffled with ``seed``, go to ``test`` while the
    test share of each class stays at most ``test_fraction`` (nearest fit)."""
    import yaml

    groups: dict[str, dict[str, list[str]]] = defaultdict(lambda: {"good": [], "defect": []})
    for cls, names in stems.items():
        for s in names:
            groups[sequence(s)][cls].append(s)
    order = sorted(groups)
    random.Random(seed).shuffle(order)
    quota = {c: test_fraction * len(v) for c, v in stems.items()}
    taken = {"good": 0, "defect": 0}
    test: list[str] = []
    for g in order:
        n = {c: len(groups[g][c]) for c in taken}
        if all(taken[c] + n[c] <= quota[c] + 0.5 for c in taken):
            test += groups[g]["good"] + groups[g]["defect"]
            taken = {c: taken[c] + n[c] for c in taken}
    every = stems["good"] + stems["defect"]
    split = {"train": sorted(set(every) - set(test)), "test": sorted(test)}
    path = target / "split.yaml"
    path.write_text(yaml.safe_dump(split))
    return path, taken


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="a checkout of github.com/2Obe/BSData")
    parser.add_argument("target", type=Path, help="new folder outside the repository")
    parser.add_argument("--types", type=int, nargs="+", default=[2],
                        help="ball-screw types to lay out (default: 2)")
    parser.add_argument("--test-fraction", type=float, default=0.3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    stems = lay_out(args.source, args.target, set(args.types))
    print(f"{args.target}: {len(stems['good'])} good, {len(stems['defect'])} defective images")
    path, taken = write_split(args.target, stems, args.test_fraction, args.seed)
    print(f"{path}: {taken['good']} good and {taken['defect']} defective images in test, "
          "whole sequences")


if __name__ == "__main__":
    main()
