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

from racam.io import atomic_write_bytes, atomic_write_text

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


def boxes_of(mask: np.ndarray) -> list[list[int]]:
    """``[x, y, width, height]`` of each 8-connected component of a bool mask, in scan order."""
    from skimage.measure import label, regionprops

    out = []
    for region in regionprops(label(mask, connectivity=2)):
        r0, c0, r1, c1 = region.bbox
        out.append([int(c0), int(r0), int(c1 - c0), int(r1 - r0)])
    return out


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def write_mask(path: Path, mask: np.ndarray) -> None:
    """Atomically write a bool mask as a 0/255 8-bit PNG."""
    atomic_write_bytes(path, _png(Image.fromarray(mask.astype(np.uint8) * 255)))


def write_overlay(path: Path, image: Image.Image, mask: np.ndarray,
                  boxes: list[list[int]], alpha: float = 0.45) -> None:
    """Atomically write the image (RGB) with defect pixels tinted red and a yellow box around
    each component."""
    rgb = np.asarray(image.convert("RGB"), dtype=np.float32)
    red = np.array([255.0, 0.0, 0.0], dtype=np.float32)
    rgb[mask] = (1 - alpha) * rgb[mask] + alpha * red
    out = Image.fromarray(np.round(rgb).astype(np.uint8))
    draw = ImageDraw.Draw(out)
    for x, y, w, h in boxes:
        draw.rectangle((x, y, x + w - 1, y + h - 1), outline=(255, 220, 0))
    atomic_write_bytes(path, _png(out))


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
