"""Stage results cached as JSON: a finished stage is not recomputed when a run starts again."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from racam import compat, distributed
from racam.errors import ConfigError
from racam.io import atomic_write_json, read_json

#: Differences named in a refusal's message (the rest are counted).
SHOWN_DIFFERENCES = 4


def plain_key(key: dict[str, Any]) -> dict[str, Any]:
    """``key`` as it is stored (tuples become lists)."""
    return json.loads(json.dumps(key, default=str))


def check_key(path: Path, key: dict[str, Any] | None, recompute: Sequence[str] = ()
              ) -> dict[str, Any] | None:
    """The stored result at ``path`` (``None`` when there is none, or when it differs from
    ``key`` only in the top-level entries named in ``recompute``); :class:`ConfigError` when it
    was computed under another ``key``, naming only the keys that differ, or stored in a format
    this racam does not read (:mod:`racam.compat`)."""
    path = Path(path)
    if not path.exists():
        return None
    value = read_json(path)
    compat.check_format(path, value)
    if key is not None:
        stored, now = compat.comparable(value.get("key"), plain_key(key)), plain_key(key)
        diffs = key_differences(stored, now)
        if diffs and _changed_entries(stored, now) <= set(recompute):
            return None
        if diffs:
            more = len(diffs) - SHOWN_DIFFERENCES
            shown = "; ".join(diffs[:SHOWN_DIFFERENCES]) + (f"; and {more} more" if more > 0
                                                            else "")
            raise ConfigError(f"{path.parent}: computed with a different config ({shown}); use "
                              "another output folder or delete that folder to recompute")
    return value


def _changed_entries(stored: Any, now: dict[str, Any]) -> set[str]:
    """The top-level entries of two keys whose values differ (all of them when ``stored`` is
    not a mapping)."""
    if not isinstance(stored, dict):
        return {"<key>"}
    absent = object()
    return {k for k in stored.keys() | now.keys() if stored.get(k, absent) != now.get(k, absent)}


def stale_entries(value: dict[str, Any], key: dict[str, Any]) -> list[str]:
    """The dotted keys in which the stored result ``value``'s key differs from ``key``
    (:func:`key_differences`, the stored key read as today's, :func:`racam.compat.comparable`)."""
    return key_differences(compat.comparable(value.get("key"), plain_key(key)), plain_key(key))


def cached(path: Path, compute: Callable[[], dict[str, Any]],
           key: dict[str, Any] | None = None, require: Sequence[str] = (),
           recompute: Sequence[str] = ()) -> dict[str, Any]:
    """Return the JSON at ``path`` if it exists, else ``compute()``, written atomically there.

    A stage writes its result file last, so a killed stage leaves no result and reruns.
    ``key`` (the config the stage depends on) is stored as ``"key"`` in the result, and the
    result format as ``"schema"`` (:data:`racam.compat.FORMAT_VERSION`); a result
    computed under a different key is an error rather than silently reused (:func:`check_key`).
    ``require`` names fields the caller needs: a stored result (same key) without one of them,
    written before that field existed, is recomputed and replaced. Under ``torchrun`` every rank
    calls this in step: rank 0 decides whether the result exists, every rank computes it when
    not, and rank 0 alone writes it. ``recompute`` names top-level key entries whose change
    recomputes the result (replacing racam's own file) instead of refusing: entries of which
    the stage can compute a new result from what the run folder keeps (a choice among stored
    checkpoints, a derived list).
    """
    path = Path(path)
    exists = distributed.broadcast(path.exists())  # rank 0 decides: all ranks compute or none
    value = check_key(path, key, recompute) if exists else None
    if value is not None and all(f in value for f in require):
        return value
    value = compute()
    value.pop("schema", None)  # written last
    if key is not None:
        value["key"] = plain_key(key)
    value["schema"] = compat.FORMAT_VERSION
    if distributed.is_main():
        atomic_write_json(path, value)
    return value


def key_differences(stored: Any, now: Any, prefix: str = "") -> list[str]:
    """``["classifier.epochs: 1 stored, 2 now", ...]``: the dotted keys whose values differ."""
    if isinstance(stored, dict) and isinstance(now, dict):
        out: list[str] = []
        for k in list(stored) + [k for k in now if k not in stored]:
            name = f"{prefix}.{k}" if prefix else str(k)
            if k not in now:
                out.append(f"{name}: {stored[k]!r} stored, absent now")
            elif k not in stored:
                out.append(f"{name}: absent stored, {now[k]!r} now")
            else:
                out += key_differences(stored[k], now[k], name)
        return out
    if stored != now:
        return [f"{prefix or 'key'}: {stored!r} stored, {now!r} now"]
    return []
