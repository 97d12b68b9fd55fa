"""What the experiments' dataset converters (``*_as_folder.py``) share: a target folder outside
the repository that carries the converter's marker file, and links replaced only where the
converter made them."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def check_target(target: Path, marker: str) -> None:
    """Refuse ``target`` inside the repository, or existing without ``marker`` (not ours)."""
    if target == REPO or REPO in target.parents:
        raise SystemExit(f"{target}: inside the repository {REPO}; choose a folder outside it")
    if target.exists() and not (target / marker).is_file():
        raise SystemExit(f"{target}: exists and was not made by this script ({marker} missing)")


def link(path: Path, target: Path) -> None:
    """``path`` as a symbolic link to ``target``; an earlier link replaced, a file refused."""
    if path.is_symlink():
        path.unlink()  # a link a converter made (the folder has its marker)
    elif path.exists():
        raise SystemExit(f"{path}: exists and is not a link; refusing to replace it")
    path.symlink_to(target)
