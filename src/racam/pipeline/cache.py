"""Stage results cached as JSON: a finished stage is not recomputed when a run starts again."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from racam import distributed
from racam.errors import ConfigError
from racam.io import atomic_write_json, read_json


def cached(path: Path, compute: Callable[[], dict[str, Any]],
           key: dict[str, Any] | None = None, require: Sequence[str] = ()) -> dict[str, Any]:
    """Return the JSON at ``path`` if it exists, else ``compute()``, written atomically there.

    A stage writes its result file last, so a killed stage leaves no result and reruns.
    ``key`` (the config the stage depends on) is stored as ``"key"`` in the result; a result
    computed under a different key is an error rather than silently reused. ``require`` names
    fields the caller needs: a stored result (same key) without one of them, written before
    that field existed, is recomputed and replaced. Under ``torchrun`` every rank calls this in
    step: rank 0 decides whether the result exists, every rank computes it when not, and rank 0
    alone writes it.
    """
    path = Path(path)
    if key is not None:
        key = json.loads(json.dumps(key, default=str))  # tuples -> lists, as stored
    if distributed.broadcast(path.exists()):  # rank 0 decides, so all ranks compute or none
        value = read_json(path)
        if key is not None and _without_retired(value.get("key")) != key:
            raise ConfigError(f"{path.parent}: computed with a different config "
                              f"(stored {value.get('key')}, now {key}); use another output "
                              "folder or delete that folder to recompute")
        if all(f in value for f in require):
            return value
    value = compute()
    if key is not None:
        value["key"] = key
    if distributed.is_main():
        atomic_write_json(path, value)
    return value


#: ``(section, key)`` of config keys removed because they did nothing; a result stored with
#: such a key (``null``) was computed exactly as now and is reused.
RETIRED_KEYS = (("data", "units"),)


def _without_retired(stored: Any) -> Any:
    if not isinstance(stored, dict):
        return stored
    out = dict(stored)
    for section, key in RETIRED_KEYS:
        part = out.get(section)
        if isinstance(part, dict) and key in part and part[key] is None:
            out[section] = {k: v for k, v in part.items() if k != key}
    return out
