"""The output folder of ``racam predict``: written only where predict owns it.

``--out`` is predict's when it is new or empty, or when it holds the marker
``.racam-predict.json`` (:data:`MARKER`), which lists every file predict wrote there. Any other
non-empty folder is refused before anything is written, unless ``--into-existing``; and even
then a file that exists and is not listed in the marker is never replaced or deleted (refused,
naming the file). The files a call will write are added to the marker before the first is
written, so a call killed half-way leaves only files the marker lists. Folders holding the
marker are never read as input images (:func:`racam.deploy.images.list_images`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from racam.errors import DataError
from racam.io import atomic_write_json

__all__ = ["MARKER", "OutputDir", "open_output"]

MARKER = ".racam-predict.json"
_FORMAT = "racam predict output"


@dataclass
class OutputDir:
    """``root`` and the files (relative POSIX paths) racam predict wrote or is writing there."""

    root: Path
    owned: set[str] = field(default_factory=set)

    def owns(self, rel: str) -> bool:
        return rel in self.owned

    def check_free(self, rels: Iterable[str]) -> None:
        """Refuse (naming the file) when a path to be written exists and is not ours, or when a
        folder on its way is a file. Writes nothing."""
        folders: set[Path] = set()
        for rel in sorted(set(rels)):
            path = self.root / rel
            if (path.exists() or path.is_symlink()) and not self.owns(rel):
                raise DataError(f"{path}: exists and was not written by racam predict; not "
                                "replaced (give another --out)")
            folders.update(p for p in Path(rel).parents if p != Path("."))
        for sub in sorted(folders):
            if (self.root / sub).exists() and not (self.root / sub).is_dir():
                raise DataError(f"{self.root / sub}: is a file, predict needs a folder there "
                                "(give another --out)")

    def claim(self, rels: Iterable[str]) -> None:
        """Create the folder and list ``rels`` in the marker before any of them is written."""
        self.owned.update(rels)
        self._write()

    def settle(self) -> None:
        """Rewrite the marker with the listed files that exist (a call's last step)."""
        self.owned = {r for r in self.owned if (self.root / r).is_file()}
        self._write()

    def _write(self) -> None:
        from racam import __version__

        atomic_write_json(self.root / MARKER, {"format": _FORMAT, "racam": __version__,
                                               "files": sorted(self.owned)})


def open_output(out: Path, into_existing: bool = False) -> OutputDir:
    """The output folder ``out`` if predict may write there (module docstring); refuses in one
    line otherwise. Writes nothing."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise DataError(f"{out}: --out is a file, not a folder")
    marker = out / MARKER
    if marker.is_file():
        try:
            value = json.loads(marker.read_text())
            if value.get("format") != _FORMAT:
                raise ValueError(f"format is not {_FORMAT!r}")
            return OutputDir(out, {str(f) for f in value["files"]})
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise DataError(f"{marker}: not a racam predict marker ({exc}); give another "
                            "--out") from None
    if out.is_dir() and any(out.iterdir()) and not into_existing:
        raise DataError(f"{out}: folder is not empty and was not made by racam predict (no "
                        f"{MARKER}); give a new or empty --out, or --into-existing to add to it "
                        "(files racam did not write are never replaced)")
    return OutputDir(out)
