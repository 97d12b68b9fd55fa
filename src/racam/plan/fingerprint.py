"""A folder dataset's fingerprint: what its images are like, read from their file headers.

nnU-Net plans a medical segmentation from a *dataset fingerprint* (image shapes, spacings,
intensities, class ratios) and fixed rules; :mod:`racam.plan.rules` does the same for a
``good/`` + ``defect/`` folder (:mod:`racam.data.folder`). The fingerprint reads only what an
image file's header says (``PIL.Image.open`` decodes no pixels): size, mode (channels and bit
depth). That is cheap on thousands of images. Masks are counted (``masks/`` files whose stem is
an image's) but never read: no choice of the plan may depend on them.

A file whose header cannot be read is named in ``unreadable`` (the run's audit,
:mod:`racam.data.audit`, leaves it out and warns); it counts in no class.
"""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from racam.data.io import IMAGE_SUFFIXES
from racam.errors import DataError

#: Bits per channel of each Pillow mode (16-bit colour PNGs open as ``RGB``: 8).
MODE_BITS: dict[str, int] = {"1": 1, "L": 8, "LA": 8, "P": 8, "PA": 8, "RGB": 8, "RGBA": 8,
                             "RGBX": 8, "CMYK": 8, "YCbCr": 8, "LAB": 8, "HSV": 8, "I;16": 16,
                             "I;16B": 16, "I;16L": 16, "I;16N": 16, "I": 32, "F": 32}
#: Modes holding one intensity channel (an alpha channel aside). A palette (``P``) may hold
#: colours, so it counts as colour.
GRAY_MODES: frozenset[str] = frozenset({"1", "L", "LA", "I", "I;16", "I;16B", "I;16L",
                                        "I;16N", "F"})
_HEADER_ERRORS = (UnidentifiedImageError, OSError, ValueError, SyntaxError)


@dataclass(frozen=True)
class Fingerprint:
    """What the images of a folder dataset are like (module docstring).

    Sizes are ``(width, height)`` in pixels; ``median_size`` holds the median width and the
    median height; aspect ratios are width / height; ``modes`` and ``bit_depths`` are
    ``(value, images)`` pairs, most frequent first.
    """

    root: str
    good: int
    defect: int
    has_masks: bool
    masks: int
    median_size: tuple[float, float]
    min_size: tuple[int, int]
    max_size: tuple[int, int]
    distinct_sizes: int
    median_long_side: float
    median_aspect: float
    min_aspect: float
    max_aspect: float
    modes: tuple[tuple[str, int], ...]
    bit_depths: tuple[tuple[int, int], ...]
    unreadable: tuple[str, ...] = ()

    @property
    def images(self) -> int:
        """Images whose header was read (both classes)."""
        return self.good + self.defect

    @property
    def defect_share(self) -> float:
        """Share of the images that are defective."""
        return self.defect / self.images

    @property
    def gray(self) -> bool:
        """Every image holds one intensity channel (:data:`GRAY_MODES`)."""
        return all(mode in GRAY_MODES for mode, _ in self.modes)

    @property
    def imbalance(self) -> float:
        """Images of the larger class per image of the smaller one (1: balanced)."""
        return max(self.good, self.defect) / max(1, min(self.good, self.defect))


def image_files(folder: Path) -> list[Path]:
    """The image files of ``folder`` (by suffix, sorted); none when it is not a folder."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _header(path: Path) -> tuple[tuple[int, int], str] | None:
    """``(size, mode)`` from ``path``'s header, ``None`` when it cannot be read."""
    try:
        with Image.open(path) as img:
            return img.size, img.mode
    except _HEADER_ERRORS:
        return None


def from_folder(root: str | Path) -> Fingerprint:
    """The :class:`Fingerprint` of the folder dataset at ``root`` (``good/``, ``defect/``,
    optional ``masks/``); :class:`DataError` naming the folder when a class folder is missing
    or no image header of a class can be read."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: folder dataset not found")
    sizes: list[tuple[int, int]] = []
    modes: Counter[str] = Counter()
    counts: dict[str, int] = {}
    unreadable: list[str] = []
    stems: set[str] = set()
    for cls in ("good", "defect"):
        folder = root / cls
        if not folder.is_dir():
            raise DataError(f"{folder}: folder not found (a folder dataset needs good/ and "
                            "defect/)")
        counts[cls] = 0
        for path in image_files(folder):
            head = _header(path)
            if head is None:
                unreadable.append(str(path))
                continue
            sizes.append(head[0])
            modes[head[1]] += 1
            counts[cls] += 1
            stems.add(path.stem)
        if counts[cls] == 0:
            raise DataError(f"{folder}: holds no readable image ({', '.join(IMAGE_SUFFIXES)})")
    masks = [p for p in image_files(root / "masks") if p.stem in stems]
    return _summarise(root, counts, sizes, modes, (root / "masks").is_dir(), len(masks),
                      tuple(unreadable))


def _summarise(root: Path, counts: dict[str, int], sizes: list[tuple[int, int]],
               modes: Counter[str], has_masks: bool, masks: int,
               unreadable: tuple[str, ...]) -> Fingerprint:
    widths = [w for w, _ in sizes]
    heights = [h for _, h in sizes]
    aspects = [w / h for w, h in sizes]
    bits: Counter[int] = Counter()
    for mode, n in modes.items():
        bits[MODE_BITS.get(mode, 8)] += n
    return Fingerprint(
        root=str(root), good=counts["good"], defect=counts["defect"], has_masks=has_masks,
        masks=masks,
        median_size=(float(statistics.median(widths)), float(statistics.median(heights))),
        min_size=(min(widths), min(heights)), max_size=(max(widths), max(heights)),
        distinct_sizes=len(set(sizes)),
        median_long_side=float(statistics.median(max(s) for s in sizes)),
        median_aspect=float(statistics.median(aspects)), min_aspect=min(aspects),
        max_aspect=max(aspects), modes=tuple(modes.most_common()),
        bit_depths=tuple(bits.most_common()), unreadable=unreadable)
