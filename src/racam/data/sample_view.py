"""The KolektorSDD sample bundled with racam laid out as a user's folder dataset
(``data.root: builtin:ksdd_sample_folder``, the root of ``racam demo``), so that the demo takes
the path a user's folder takes (:mod:`racam.data.folder`: its audit, split file and plan)::

    good/<item>_<part>.jpg     defect-free images of the sample
    defect/<item>_<part>.jpg   defective images (a nonzero pixel in the item's mask)
    masks/<item>_<part>.png    the defective images' masks
    split.yaml                 the sample's own split (splits/demo_split.pyb): its train and
                               test items' images

The view is a copy (about 4 MB), written once into racam's cache folder (:func:`cache_dir`)
under a name holding a digest of the sample's files, so the package folder is only read and a
changed sample gets a view of its own. It is built in a temporary folder beside it and renamed
into place: a reader never sees half a view, and of two processes building it the first wins.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from racam.data.io import Record
from racam.data.ksdd import present_units, unit_records
from racam.data.splits import ksdd_folds
from racam.io import current_umask

__all__ = ["CACHE_ENV", "SPLIT_FILE", "cache_dir", "folder_view"]

#: The environment variable naming racam's cache folder.
CACHE_ENV = "RACAM_CACHE"
#: The sample's split file whose first fold the view's ``split.yaml`` holds.
SPLIT_FILE = "demo_split.pyb"


def cache_dir() -> Path:
    """``$RACAM_CACHE``, else ``$XDG_CACHE_HOME/racam``, else ``~/.cache/racam``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "racam"


def _stem(r: Record) -> str:
    return r.id.replace("/", "_")  # kos10/Part0 -> kos10_Part0: unique over the sample


def _digest(sample: Path, records: list[Record]) -> str:
    h = hashlib.sha256()
    files = [sample / "splits" / SPLIT_FILE, *(r.image_path for r in records),
             *(r.mask_path for r in records if r.mask_path is not None)]
    for p in sorted({Path(f) for f in files}):
        h.update(f"{p.relative_to(sample).as_posix()}:{p.stat().st_size}\n".encode())
    return h.hexdigest()[:12]


def _write(sample: Path, records: list[Record], dest: Path) -> None:
    """The view of ``records`` into the empty folder ``dest``."""
    train, test = (units[0] for units in ksdd_folds(sample / "splits" / SPLIT_FILE))
    for sub in ("good", "defect", "masks"):
        (dest / sub).mkdir()
    for r in records:
        shutil.copyfile(r.image_path, dest / ("defect" if r.label else "good")
                        / f"{_stem(r)}{r.image_path.suffix}")
        if r.label and r.mask_path is not None:
            shutil.copyfile(r.mask_path, dest / "masks" / f"{_stem(r)}{r.mask_path.suffix}")
    lines = ["# the sample's split (splits/demo_split.pyb): the images of its train and test "
             "items"]
    for part, units in (("train", train), ("test", test)):
        lines += [f"{part}:"] + [f"  - {_stem(r)}" for r in records if r.group in units]
    (dest / "split.yaml").write_text("\n".join(lines) + "\n")


def folder_view(sample: Path) -> Path:
    """The folder view of the KolektorSDD sample at ``sample`` (module docstring), built on
    first use."""
    records = [r for unit in present_units(sample) for r in unit_records(sample, unit)]
    target = cache_dir() / f"ksdd_sample_folder-{_digest(sample, records)}"
    if (target / "split.yaml").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".ksdd_sample_folder-", dir=target.parent))
    try:
        _write(sample, records, tmp)
        tmp.chmod(0o777 & ~current_umask())  # mkdtemp makes 0700; follow the umask
        os.rename(tmp, target)
    except OSError:
        if not (target / "split.yaml").is_file():
            raise
    finally:
        if tmp.exists():  # another process renamed its view first: ours is not needed
            shutil.rmtree(tmp)
    return target
