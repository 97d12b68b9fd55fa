"""Stage results cached as JSON: a finished stage is not recomputed when a run starts again."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from racam.io import atomic_write_json, read_json


def cached(path: Path, compute: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Return the JSON at ``path`` if it exists, else ``compute()``, written atomically there.

    A stage writes its result file last, so a killed stage leaves no result and reruns.
    """
    path = Path(path)
    if path.exists():
        return read_json(path)
    value = compute()
    atomic_write_json(path, value)
    return value
