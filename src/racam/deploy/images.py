"""The input images of ``racam predict``, listed by the one lister of every command
(:func:`racam.data.listing.list_images`)."""

from __future__ import annotations

import sys
from pathlib import Path

from racam.data.listing import is_image_name
from racam.data.listing import list_images as list_folder
from racam.deploy.output_dir import MARKER
from racam.errors import DataError

__all__ = ["list_images"]


def list_images(folder: Path, exclude: Path | None = None) -> list[Path]:
    """Image files under ``folder`` (recursive, following symbolic links, loops detected;
    sorted), skipping KolektorSDD-style mask files (``*_label.*``, ``*_GT.*``), anything under
    ``exclude`` (the output folder) and any folder holding racam predict's marker (an earlier
    call's output): predict's own outputs are never read as input. An image-like file that
    cannot be opened (a broken link, ...) is listed all the same, so that it gets its CSV row
    with the error; a folder that is not searched is named on stderr."""
    from racam.cam.export import MASK_SUFFIXES

    if (folder / MARKER).is_file():
        raise DataError(f"{folder}: an output folder of racam predict ({MARKER}); its masks "
                        "and overlays are not input images")
    found = list_folder(folder, recursive=True, exclude=[] if exclude is None else [exclude],
                        skip_stems=tuple(MASK_SUFFIXES), markers=(MARKER,), check=False)
    unreadable = [s.path for s in found.skipped if is_image_name(s.path)]
    for s in found.skipped:
        if not is_image_name(s.path):
            print(f"warning: {s}", file=sys.stderr)
    files = sorted(found.images + unreadable)
    if not files:
        found.require_images()
    return files
