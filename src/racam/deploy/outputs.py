"""Files ``racam predict`` writes per image (mask, overlay), the rows of ``predictions.csv`` and
the journal that lets a second call skip the images already done.

Output folder::

    masks/<relative path without suffix>.png   0/255 mask at the image's original size
    overlays/<relative path>.png               the image, defect pixels tinted red, boxes
    progress.jsonl                             journal: one JSON line per finished image
    predictions.csv                            one row per image (written last, atomically)
    index.html                                 gallery (written last, atomically)
    .racam-predict.json                        marker: the files predict wrote here
                                               (:mod:`racam.deploy.output_dir`)
"""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from racam.deploy.png import write_png_bands
from racam.io import atomic_write_text

JOURNAL = "progress.jsonl"
CSV_NAME = "predictions.csv"
CSV_COLUMNS = ("file", "probability", "decision", "defect_pixels", "defect_percent",
               "boxes", "width", "height", "mask", "overlay", "error")


@dataclass
class Prediction:
    """One image's result (or its error). ``boxes`` are ``(x, y, width, height)`` of the
    mask's 8-connected components in original-image pixels; paths are relative to the output
    folder."""

    file: str
    key: str = ""
    probability: float | None = None
    defect_pixels: int = 0
    width: int = 0
    height: int = 0
    boxes: list[list[int]] = field(default_factory=list)
    mask: str = ""
    overlay: str = ""
    error: str = ""

    def decision(self, threshold: float) -> str:
        """``defect`` when ``probability >= threshold``, ``good`` below, empty on error."""
        if self.probability is None:
            return ""
        return "defect" if self.probability >= threshold else "good"

    def unlocated(self, threshold: float) -> bool:
        """Called defective at ``threshold`` with no defect pixel in its mask: the classifier
        and the mask disagree, and the image needs a look."""
        return self.decision(threshold) == "defect" and self.defect_pixels == 0

    @property
    def defect_percent(self) -> float:
        return 100.0 * self.defect_pixels / max(1, self.width * self.height)


def mask_relpath(rel: Path) -> Path:
    """``masks/<relative path without suffix>.png``."""
    return Path("masks") / rel.with_suffix(".png")


def overlay_relpath(rel: Path) -> Path:
    """``overlays/<relative path>.png`` (the image's own suffix kept, so ``a.png`` and
    ``a.jpg`` get different overlays)."""
    return Path("overlays") / rel.parent / f"{rel.name}.png"


#: Pixels processed at a time by :func:`boxes_of`, :func:`write_mask` and
#: :func:`write_overlay` (whole rows, at least one): their memory is a band's, whatever the
#: image's size (an RGB float band of 2 M pixels: 24 MB).
BAND_PIXELS = 1 << 21


def band_rows(width: int) -> int:
    """Rows per band for images ``width`` pixels wide (:data:`BAND_PIXELS`)."""
    return max(1, BAND_PIXELS // max(1, width))


def boxes_of(mask: np.ndarray, rows: int | None = None) -> list[list[int]]:
    """``[x, y, width, height]`` of each 8-connected component of a bool mask, in scan order
    (of each component's first pixel). Labelled ``rows`` rows at a time; components that
    touch across band edges are joined (union-find), so the boxes are those of the whole
    mask."""
    from scipy import ndimage

    eight = np.ones((3, 3), dtype=bool)
    rows = rows or band_rows(mask.shape[-1])
    boxes: list[list[int]] = []  # [r0, c0, r1, c1] per band component
    parent: list[int] = []

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    width = mask.shape[1] if mask.ndim == 2 else 0
    last, last_base = None, 0
    for r0 in range(0, mask.shape[0], rows):
        lab, _ = ndimage.label(mask[r0:r0 + rows], structure=eight, output=np.int32)
        base = len(boxes)
        for sl in ndimage.find_objects(lab):
            boxes.append([sl[0].start + r0, sl[1].start, sl[0].stop + r0, sl[1].stop])
            parent.append(len(parent))
        if last is not None:
            for d in (-1, 0, 1):  # a pixel of the last row touches 3 of the next row
                a = last[max(0, -d):width - max(0, d)]
                b = lab[0][max(0, d):width - max(0, -d)]
                both = (a > 0) & (b > 0)
                for i, j in set(zip((a[both] - 1 + last_base).tolist(),
                                    (b[both] - 1 + base).tolist())):
                    ri, rj = root(i), root(j)
                    if ri != rj:
                        parent[max(ri, rj)] = min(ri, rj)
        last, last_base = lab[-1].copy(), base
    merged: dict[int, list[int]] = {}
    for i, (r0, c0, r1, c1) in enumerate(boxes):
        b = merged.setdefault(root(i), [r0, c0, r1, c1])
        b[:] = [min(b[0], r0), min(b[1], c0), max(b[2], r1), max(b[3], c1)]
    return [[c0, r0, c1 - c0, r1 - r0] for _, (r0, c0, r1, c1) in sorted(merged.items())]


def write_mask(path: Path, mask: np.ndarray, rows: int | None = None) -> None:
    """Atomically write a bool mask as a 0/255 8-bit PNG (``rows`` rows at a time)."""
    height, width = mask.shape
    rows = rows or band_rows(width)
    write_png_bands(path, (width, height), 1,
                    (mask[r:r + rows].view(np.uint8) * np.uint8(255)
                     for r in range(0, height, rows)))


def _draw_boxes(band: np.ndarray, r0: int, boxes: list[list[int]],
                colour: tuple[int, int, int]) -> np.ndarray:
    """``band`` (rows from ``r0`` of the overlay) with the 1-pixel outlines of ``boxes``
    (``x, y, w, h``) drawn by ``ImageDraw.rectangle`` in band coordinates: PIL clips to the
    band, so the pixels are those of drawing on the whole image (PIL's own quirks
    included: a box one pixel high also marks the rows above and below)."""
    r1 = r0 + band.shape[0]
    near = [b for b in boxes if b[1] - 1 <= r1 and b[1] + b[3] >= r0 - 1]
    if not near:
        return band
    img = Image.fromarray(band)
    draw = ImageDraw.Draw(img)
    for x, y, w, h in near:
        draw.rectangle((x, y - r0, x + w - 1, y + h - 1 - r0), outline=colour)
    return np.asarray(img)


def write_overlay(path: Path, image: Image.Image, mask: np.ndarray,
                  boxes: list[list[int]], alpha: float = 0.45,
                  rows: int | None = None) -> None:
    """Atomically write the image (RGB) with defect pixels tinted red and a yellow box around
    each component, ``rows`` rows at a time (memory: one band, whatever the image's size)."""
    width, height = image.size
    rows = rows or band_rows(width)
    red = np.array([255.0, 0.0, 0.0], dtype=np.float32)

    def bands():
        for r0 in range(0, height, rows):
            r1 = min(height, r0 + rows)
            band = np.asarray(image.crop((0, r0, width, r1)).convert("RGB"), dtype=np.float32)
            m = mask[r0:r1]
            band[m] = (1 - alpha) * band[m] + alpha * red
            yield _draw_boxes(np.round(band).astype(np.uint8), r0, boxes, (255, 220, 0))

    write_png_bands(path, (width, height), 3, bands())


def file_key(path: Path, settings: str) -> str:
    """Identity of an image file plus the settings its outputs depend on: a changed file or
    changed settings are predicted again."""
    st = path.stat()
    return f"{st.st_size}:{st.st_mtime_ns}:{settings}"


class Journal:
    """``progress.jsonl``: one line per finished image, appended and flushed as each image is
    done, so an interrupted call loses at most the image in progress."""

    def __init__(self, out: Path) -> None:
        self.path = out / JOURNAL

    def read(self) -> dict[str, Prediction]:
        """Finished images by file (a torn last line of a killed call is ignored)."""
        done: dict[str, Prediction] = {}
        if not self.path.is_file():
            return done
        names = {f.name for f in Prediction.__dataclass_fields__.values()}
        for line in self.path.read_text(errors="replace").splitlines():
            try:
                value = json.loads(line)
                p = Prediction(**{k: v for k, v in value.items() if k in names})
            except (ValueError, TypeError):
                continue
            done[p.file] = p
        return done

    def append(self, p: Prediction) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as f:
            f.write(json.dumps(asdict(p)) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def rewrite(self, predictions: list[Prediction]) -> None:
        """Replace the journal by exactly ``predictions`` (atomically)."""
        atomic_write_text(self.path, "".join(json.dumps(asdict(p)) + "\n"
                                             for p in predictions if not p.error))


def format_boxes(boxes: list[list[int]]) -> str:
    """``x y w h`` of each box, separated by ``;``."""
    return ";".join(" ".join(str(v) for v in b) for b in boxes)


def write_csv(path: Path, predictions: list[Prediction], threshold: float) -> Path:
    """Atomically write ``predictions.csv`` (columns :data:`CSV_COLUMNS`)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for p in predictions:
        ok = not p.error
        w.writerow([p.file, f"{p.probability:.6f}" if p.probability is not None else "",
                    p.decision(threshold), p.defect_pixels if ok else "",
                    f"{p.defect_percent:.4f}" if ok else "", format_boxes(p.boxes),
                    p.width or "", p.height or "", p.mask, p.overlay, p.error])
    return atomic_write_text(path, buf.getvalue())
