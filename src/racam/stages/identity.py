"""What a stage's result depends on beyond the config: the images it read and the classifier
checkpoint it used, as short digests stored in the stage key (``"inputs"``).

A rerun over changed files (an image added, a mask replaced, a classifier retrained) then finds a
different key and refuses to reuse the stored result, instead of mixing the two.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

#: Characters of a hex digest kept in keys.
DIGEST_CHARS = 16
_CHUNK = 1 << 20


def _file_size(path: Any) -> int | None:
    if path is None:
        return None
    try:
        return os.stat(path).st_size
    except OSError:
        return None


def records_digest(splits: Iterable[tuple[str, Any]]) -> str:
    """Digest of the images of ``(split name, dataset)`` pairs: each record's split, id,
    label, and the byte sizes of its image and mask files (cheap: no file is read)."""
    h = hashlib.sha256()
    for name, ds in splits:
        for rec, label in zip(ds.records, ds.labels):
            row = [name, rec.id, int(label), _file_size(rec.image_path), _file_size(rec.mask_path)]
            h.update(json.dumps(row).encode())
    return h.hexdigest()[:DIGEST_CHARS]


def file_digest(path: str | os.PathLike[str]) -> str:
    """SHA-256 (first characters) of a file's bytes."""
    h = hashlib.sha256()
    with Path(path).open("rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            h.update(block)
    return h.hexdigest()[:DIGEST_CHARS]
