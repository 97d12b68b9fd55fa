"""The input images of ``racam predict``: the one place that lists them."""

from __future__ import annotations

import os
from pathlib import Path

from racam.deploy.output_dir import MARKER
from racam.errors import DataError

__all__ = ["list_images"]


def list_images(folder: Path, exclude: Path | None = None) -> list[Path]:
    """Image files under ``folder`` (recursive, sorted), skipping KolektorSDD-style mask files
    (``*_label.*``, ``*_GT.*``), anything under ``exclude`` (the output folder) and any folder
    holding racam predict's marker (an earlier call's output): predict's own outputs are never
    read as input."""
    from racam.cam.export import MASK_SUFFIXES
    from racam.data.io import IMAGE_SUFFIXES

    if not folder.is_dir():
        raise DataError(f"{folder}: image folder not found")
    if (folder / MARKER).is_file():
        raise DataError(f"{folder}: an output folder of racam predict ({MARKER}); its masks "
                        "and overlays are not input images")
    ex = exclude.resolve() if exclude is not None else None
    files = []
    for top, dirs, names in os.walk(folder):
        here = Path(top)
        if MARKER in names or (ex is not None and here.resolve() == ex):
            dirs[:] = []
            continue
        files += [here / n for n in names if Path(n).suffix.lower() in IMAGE_SUFFIXES
                  and not Path(n).stem.endswith(MASK_SUFFIXES) and (here / n).is_file()]
    files.sort()
    if not files:
        raise DataError(f"{folder}: no image files ({', '.join(IMAGE_SUFFIXES)})")
    return files
