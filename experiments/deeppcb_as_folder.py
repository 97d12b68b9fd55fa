"""Lay DeepPCB (PCB defects, github.com/tangsanli5201/DeepPCB) out as a racam folder dataset.

    python experiments/deeppcb_as_folder.py /work/datasets/DeepPCB /work/datasets/deeppcb-folder

DeepPCB holds 1500 pairs of binarised 640x640 crops of 11 boards,
``PCBData/group<B>/<B>/<id>_test.jpg`` (3 to 12 defects each, most of them drawn in by the
authors) and ``<id>_temp.jpg`` (the aligned defect-free template of the same spot), with
``<B>_not/<id>.txt`` (one line ``x1 y1 x2 y2 type`` per defect: every defect is boxed). A
template becomes ``good/<id>_temp.jpg``, a tested image ``defect/<id>_test.jpg`` (symlinks).
DeepPCB has boxes, not masks: ``masks/<id>_test.png`` (written, 255 on defect pixels) holds, in
each box, the pixels where the tested image and its template differ, opened by a 3x3 square
(alignment leaves one-pixel seams along every edge); a box whose opened difference is empty
keeps its raw difference, and one without any difference is filled whole.

``--pairs-per-group`` pairs of each board are kept (drawn with ``--seed``; 0 keeps all 1500).
``split.yaml`` puts whole boards in ``test`` (a template and its tested image, and the crops
of one board, are never split), the subset of boards nearest ``--test-fraction`` of the pairs.
The target must lie outside the repository; it carries a marker file, and a target without the
marker is refused (it is not ours to change).
"""

from __future__ import annotations

import argparse
import random
from itertools import combinations
from pathlib import Path

import numpy as np
from folder_layout import check_target, link
from PIL import Image, ImageFilter

MARKER = ".racam-deeppcb-folder"


def _binary(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("L")) > 127


def render_mask(test: Path, template: Path, boxes: Path) -> tuple[Image.Image, int]:
    """The defect mask of ``test`` (module docstring) and how many of its boxes fell back."""
    diff = _binary(test) ^ _binary(template)
    seam = Image.fromarray(diff.astype(np.uint8) * 255)
    opened = np.asarray(seam.filter(ImageFilter.MinFilter(3)).filter(ImageFilter.MaxFilter(3)))
    mask = np.zeros(diff.shape, np.uint8)
    fallbacks = 0
    for line in boxes.read_text().splitlines():
        if not line.strip():
            continue
        x1, y1, x2, y2 = (int(v) for v in line.replace(",", " ").split()[:4])
        box = np.s_[max(y1, 0) : y2 + 1, max(x1, 0) : x2 + 1]
        region = opened[box] > 0
        if not region.any():
            fallbacks += 1
            region = diff[box] if diff[box].any() else np.ones_like(diff[box])
        mask[box][region] = 255
    return Image.fromarray(mask), fallbacks


def lay_out(source: Path, target: Path, per_group: int, seed: int) -> dict[str, list[str]]:
    """Links, masks and marker (module docstring); returns the pair ids per board."""
    source, target = source.resolve(), target.resolve()
    check_target(target, MARKER)
    for sub in ("good", "defect", "masks"):
        (target / sub).mkdir(parents=True, exist_ok=True)
    (target / MARKER).write_text(f"DeepPCB {source} as a racam folder dataset\n")
    boards: dict[str, list[str]] = {}
    fallbacks = 0
    for group in sorted((source / "PCBData").glob("group*")):
        board = group.name.removeprefix("group")
        ids = sorted(p.name.removesuffix("_test.jpg") for p in (group / board).glob("*_test.jpg"))
        if 0 < per_group < len(ids):
            ids = sorted(random.Random(f"{seed}-{board}").sample(ids, per_group))
        for i in ids:
            test, template = group / board / f"{i}_test.jpg", group / board / f"{i}_temp.jpg"
            boxes = group / f"{board}_not" / f"{i}.txt"
            for path in (template, boxes):
                if not path.is_file():
                    raise SystemExit(f"{path}: missing for {test}")
            link(target / "good" / template.name, template)
            link(target / "defect" / test.name, test)
            mask = target / "masks" / f"{i}_test.png"
            if mask.exists() and not mask.is_file():
                raise SystemExit(f"{mask}: exists and is not a file")
            image, fell_back = render_mask(test, template, boxes)
            image.save(mask)
            fallbacks += fell_back
        boards[board] = ids
    print(f"{fallbacks} boxes kept their raw difference or were filled whole")
    return boards


def write_split(
    target: Path, boards: dict[str, list[str]], test_fraction: float, seed: int
) -> tuple[Path, list[str], int]:
    """``target/split.yaml``: the boards (shuffled with ``seed``) whose pairs come nearest
    ``test_fraction`` of all pairs go to ``test``, both images of each pair."""
    import yaml

    order = sorted(boards)
    random.Random(seed).shuffle(order)
    quota = test_fraction * sum(len(v) for v in boards.values())
    subsets = (c for r in range(len(order) + 1) for c in combinations(order, r))
    chosen = min(subsets, key=lambda c: abs(sum(len(boards[b]) for b in c) - quota))
    test = sorted(f"{i}_{kind}" for b in chosen for i in boards[b] for kind in ("temp", "test"))
    every = [f"{i}_{kind}" for ids in boards.values() for i in ids for kind in ("temp", "test")]
    split = {"train": sorted(set(every) - set(test)), "test": test}
    path = target / "split.yaml"
    path.write_text(yaml.safe_dump(split))
    return path, sorted(chosen), len(test) // 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="a checkout of github.com/tangsanli5201/DeepPCB")
    parser.add_argument("target", type=Path, help="new folder outside the repository")
    parser.add_argument(
        "--pairs-per-group", type=int, default=60, help="pairs kept per board (0: all)"
    )
    parser.add_argument("--test-fraction", type=float, default=0.3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    boards = lay_out(args.source, args.target, args.pairs_per_group, args.seed)
    n = sum(len(v) for v in boards.values())
    print(f"{args.target}: {n} good, {n} defective images, {len(boards)} boards")
    path, chosen, taken = write_split(args.target, boards, args.test_fraction, args.seed)
    print(f"{path}: boards {', '.join(chosen)} in test ({taken} good and {taken} defective images)")


if __name__ == "__main__":
    main()
