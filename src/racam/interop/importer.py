"""Masks read from a labelling tool's file written into a mask folder (``racam masks import``).

Each image's mask goes to ``OUT/<image stem>.png`` (a folder dataset's flat ``masks/``) or, with
``keep_folders``, ``OUT/<image path without suffix>.png`` (``racam predict``'s ``masks/``), as
a 0/255 8-bit image. Where a mask of that image already exists under another suffix
(``x.bmp``), that file is the one replaced, in its own format, so the folder never holds two
masks of one image. A file that already holds the same mask (same pixels) is left as it is.

Never harm a user's file: every file racam writes is recorded with its SHA-256 in
``OUT/.racam-masks.json``. An existing file that racam did not write (or that changed since) is
replaced only with ``overwrite``; otherwise the import stops before writing anything, naming
the first such file. The record is written before the masks, and each mask atomically, so an
interrupted import leaves no half-written file and a second import finishes it.
"""

from __future__ import annotations

import glob
import hashlib
import io
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image

from racam.data.io import IMAGE_SUFFIXES, read_mask
from racam.errors import DataError, RacamError
from racam.interop.records import AnnotatedImage
from racam.io import atomic_write_bytes, atomic_write_json, read_json

#: Record of the files racam wrote into a mask folder (name -> SHA-256 of the bytes).
LEDGER = ".racam-masks.json"
#: Suffixes whose encoding would change a mask's pixels.
LOSSY = (".jpg", ".jpeg")
_PIL_FORMATS = {".png": "PNG", ".bmp": "BMP", ".tif": "TIFF", ".tiff": "TIFF"}


@dataclass
class ImportSummary:
    """Files written new, racam's own files replaced, other files replaced (only with
    ``overwrite``: ``foreign``), and files that already held their mask (left as they were)."""

    written: list[Path] = field(default_factory=list)
    replaced: list[Path] = field(default_factory=list)
    foreign: list[Path] = field(default_factory=list)
    unchanged: list[Path] = field(default_factory=list)


@dataclass(frozen=True)
class _Target:
    image: AnnotatedImage
    path: Path
    state: str  # new, same, ours, foreign


def mask_relpath(name: str, keep_folders: bool, where: str) -> PurePosixPath:
    """The mask's path under the output folder, without suffix."""
    rel = PurePosixPath(name)
    if rel.is_absolute() or ".." in rel.parts or not rel.name:
        raise DataError(f"{where}: image name {name!r} must be a relative path inside the image "
                        "folder")
    return rel.with_suffix("") if keep_folders else PurePosixPath(rel.stem)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_ledger(out: Path) -> dict[str, str]:
    """``relative path -> SHA-256`` of the files racam wrote into ``out``."""
    path = out / LEDGER
    if not path.exists():
        return {}
    try:
        files = read_json(path)["files"]
        return {str(k): str(v) for k, v in files.items()}
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise DataError(f"{path}: unreadable record of racam's files ({exc}); move it away "
                        "and pass --overwrite") from None


def _existing(out: Path, rel: PurePosixPath) -> list[Path]:
    base = out / rel
    return sorted(p for p in base.parent.glob(glob.escape(base.name) + ".*")
                  if p.suffix.lower() in IMAGE_SUFFIXES)


def _state(path: Path, image: AnnotatedImage, ours: str | None) -> str:
    if not path.exists():
        return "new"
    try:
        if np.array_equal(read_mask(path), image.mask):
            return "same"
    except RacamError:  # unreadable: it is replaced like any changed mask
        pass
    return "ours" if ours == _sha256(path.read_bytes()) else "foreign"


def plan(images: list[AnnotatedImage], out: Path, keep_folders: bool) -> list[_Target]:
    """Where each mask goes and what is there now (module docstring)."""
    ledger = read_ledger(out)
    seen: dict[PurePosixPath, AnnotatedImage] = {}
    targets = []
    for image in images:
        rel = mask_relpath(image.name, keep_folders, image.where)
        if rel in seen:
            raise DataError(f"{image.where}: its mask {rel}.png would also be the mask of "
                            f"{seen[rel].where}" + ("" if keep_folders else
                                                    "; pass --keep-folders"))
        seen[rel] = image
        found = _existing(out, rel)
        if len(found) > 1:
            raise DataError(f"{found[0]}: {found[1].name} is a mask of the same image; keep one")
        path = found[0] if found else out / f"{rel}.png"
        if path.suffix.lower() in LOSSY:
            raise DataError(f"{path}: a JPEG mask cannot hold the corrected mask exactly; move "
                            "it away first")
        key = path.relative_to(out).as_posix()
        targets.append(_Target(image, path, _state(path, image, ledger.get(key))))
    return targets


def _encode(mask: np.ndarray, suffix: str) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(mask.astype(np.uint8) * 255).save(buf, format=_PIL_FORMATS[suffix.lower()])
    return buf.getvalue()


def import_masks(images: list[AnnotatedImage], out: Path, *, keep_folders: bool = False,
                 overwrite: bool = False) -> ImportSummary:
    """Write the masks of ``images`` into the folder ``out`` (module docstring)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise DataError(f"{out}: not a folder")
    if (out / "good").is_dir() and (out / "defect").is_dir():
        raise DataError(f"{out}: a folder dataset's root; import into its masks/ ({out / 'masks'})")
    targets = plan(images, out, keep_folders)
    foreign = [t.path for t in targets if t.state == "foreign"]
    if foreign and not overwrite:
        raise DataError(f"{foreign[0]}: exists and was not written by racam ({len(foreign)} such "
                        "files); pass --overwrite to replace them, or import into another folder")
    todo = [(t, _encode(t.image.mask, t.path.suffix)) for t in targets if t.state != "same"]
    ledger = read_ledger(out)
    ledger.update({t.path.relative_to(out).as_posix(): _sha256(data) for t, data in todo})
    if todo:
        atomic_write_json(out / LEDGER, {"files": dict(sorted(ledger.items()))})
    summary = ImportSummary(unchanged=[t.path for t in targets if t.state == "same"])
    for t, data in todo:
        atomic_write_bytes(t.path, data)
        {"new": summary.written, "ours": summary.replaced,
         "foreign": summary.foreign}[t.state].append(t.path)
    return summary
