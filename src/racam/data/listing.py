"""Listing the images of a folder: one function for every command (:func:`list_images`).

A file is an image when its name ends in one of :data:`racam.data.images.IMAGE_SUFFIXES` (any
case). Every such file is either listed in :attr:`ImageListing.images` or named in
:attr:`ImageListing.skipped` with the reason (cannot be read, a broken link, over the size
limit, ...); nothing that looks like an image is left out without a word. Symbolic links to
files and folders are followed; a folder reached twice (a link loop, or two links to one folder)
is searched once and the second way is named. Without ``recursive`` the sub-folders are named,
not searched. Paths are returned as found under ``folder`` (through the links), sorted.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from racam.data.images import IMAGE_SUFFIXES, readable
from racam.errors import DataError


@dataclass(frozen=True)
class Skipped:
    """A path :func:`list_images` did not list, and why."""

    path: Path
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclass
class ImageListing:
    """Result of :func:`list_images`: ``images`` (sorted) and ``skipped`` (with reasons)."""

    folder: Path
    images: list[Path] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)

    def require_images(self) -> list[Path]:
        """``images``, or a :class:`DataError` when there is none (naming the first skipped
        file when there is one)."""
        if not self.images:
            why = (f"; {len(self.skipped)} skipped, first {self.skipped[0]}"
                   if self.skipped else "")
            raise DataError(f"{self.folder}: no image files ({', '.join(IMAGE_SUFFIXES)}){why}")
        return self.images


def is_image_name(path: Path) -> bool:
    """Whether ``path``'s name ends in an image suffix."""
    return path.suffix.lower() in IMAGE_SUFFIXES


def _inode(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_dev, st.st_ino


def _within(path: Path, roots: list[Path]) -> bool:
    real = path.resolve()
    return any(real == r or real.is_relative_to(r) for r in roots)


@dataclass
class _Walk:
    recursive: bool
    check: bool
    exclude: list[Path]
    skip_stems: tuple[str, ...]
    markers: tuple[str, ...]
    out: ImageListing
    seen: dict[tuple[int, int], Path] = field(default_factory=dict)

    def folder(self, d: Path, ancestors: tuple[tuple[int, int], ...]) -> None:
        key = _inode(d)
        if key in self.seen:
            what = "a symbolic link loop" if key in ancestors else "a second link"
            self.out.skipped.append(Skipped(d, f"{what} to {self.seen[key]}, already searched; "
                                            "not followed"))
            return
        self.seen[key] = d
        marker = next((m for m in self.markers if (d / m).is_file()), None)
        if marker is not None and ancestors:
            self.out.skipped.append(Skipped(d, f"holds {marker}: a racam output folder, not "
                                            "read as input"))
            return
        try:
            entries = sorted(d.iterdir())
        except OSError as exc:
            self.out.skipped.append(Skipped(d, f"folder cannot be read ({exc.strerror or exc})"))
            return
        for p in entries:
            self.entry(p, ancestors + (key,))

    def entry(self, p: Path, ancestors: tuple[tuple[int, int], ...]) -> None:
        if self.exclude and _within(p, self.exclude):
            return
        if p.is_dir():
            if self.recursive:
                self.folder(p, ancestors)
            else:
                self.out.skipped.append(Skipped(p, "sub-folder, not searched"))
            return
        if not is_image_name(p) or p.stem.endswith(self.skip_stems):
            return
        if p.is_symlink() and not p.exists():
            self.out.skipped.append(Skipped(p, f"broken symbolic link (to {os.readlink(p)})"))
            return
        if not p.is_file():
            self.out.skipped.append(Skipped(p, "not a regular file"))
            return
        reason = readable(p) if self.check else None
        if reason is None:
            self.out.images.append(p)
        else:
            self.out.skipped.append(Skipped(p, reason))


def list_images(folder: str | os.PathLike[str], *, recursive: bool = False,
                exclude: Iterable[str | os.PathLike[str]] = (),
                skip_stems: tuple[str, ...] = (), markers: tuple[str, ...] = (),
                check: bool = True) -> ImageListing:
    """The images under ``folder`` and the image-like files that cannot be used.

    - ``recursive``: search sub-folders (following links, loops detected); otherwise they are
      named in ``skipped`` as not searched;
    - ``exclude``: files and folders (resolved) left out without a word (the caller's own
      output); one that holds ``folder`` itself excludes nothing (``folder`` is what was asked);
    - ``skip_stems``: file stems ending so are masks, not images (e.g. ``("_label", "_GT")``),
      left out without a word;
    - ``markers``: a sub-folder holding a file of one of these names is racam's output: named
      in ``skipped``, not searched;
    - ``check``: open each file's header (:func:`racam.data.images.readable`); a file that does
      not open, or is over the size limit, goes to ``skipped`` with the reason. ``False`` lists
      by name only (the caller decodes and reports).

    A missing ``folder`` is a :class:`DataError`; an empty result is not (see
    :meth:`ImageListing.require_images`).
    """
    root = Path(folder)
    if not root.is_dir():
        raise DataError(f"{root}: image folder not found")
    out = ImageListing(root)
    here = root.resolve()
    skip = [r for r in (Path(e).resolve() for e in exclude) if not here.is_relative_to(r)]
    walk = _Walk(recursive, check, skip, tuple(skip_stems),
                 tuple(markers), out)
    walk.folder(root, ())
    out.images.sort()
    out.skipped.sort(key=lambda s: s.path)
    return out
