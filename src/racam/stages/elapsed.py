"""Time spent on a stage or a whole job across the calls that resumed it.

A stage interrupted by Ctrl-C (or ``timeout --signal=INT``) writes no result, and the next call
resumes it (the classifier from its ``last.pt``). Without a record of the interrupted call, the
finished stage's ``seconds`` would count only the last call. So an interrupted stage adds its
elapsed seconds to ``<result>.interrupted`` beside its result file, and the call that finishes
the stage adds them to its own: ``seconds = this call + sum(earlier interrupted calls)``.

:class:`CallLedger` does the same for a whole job (``calls.json`` in its output folder): one
entry per call that computed a stage or was interrupted, so a reproduction that spans several
calls reports its whole wall time. A call killed outright (``SIGKILL``) records nothing.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from racam import distributed
from racam.io import atomic_write_json, read_json


def interrupted_path(result: Path) -> Path:
    """``<result>.interrupted``: the seconds of the calls that started the stage and stopped."""
    return result.with_name(result.name + ".interrupted")


def _read_list(path: Path, key: str) -> list[Any]:
    try:
        value = read_json(path).get(key) if path.exists() else None
    except (ValueError, OSError, AttributeError):  # a torn or foreign file: start again
        value = None
    return list(value) if isinstance(value, list) else []


def replaced_seconds(result: Path) -> list[float]:
    """The seconds of the stored result at ``result`` and of the results it replaced. A stage
    is computed again over its own result only when it can reuse what that computation left (a
    changed choice among the classifier's stored epochs, a field an older racam did not write),
    so the time stays the stage's in a reproduction's profile (``replaced_seconds``)."""
    try:
        stored = read_json(result) if result.exists() else {}
        earlier, seconds = stored.get("replaced_seconds") or [], stored.get("seconds")
    except (ValueError, OSError, AttributeError):  # a torn or foreign file: nothing to keep
        return []
    return [*earlier, float(seconds)] if isinstance(seconds, (int, float)) else list(earlier)


def timed_stage(result: Path, fn: Callable[[], dict[str, Any]],
                replaced: list[float] | None = None) -> dict[str, Any]:
    """``fn()`` with ``seconds`` set to its own time plus that of the earlier interrupted calls
    (then also ``seconds_this_call`` and ``interrupted_seconds``); ``replaced`` (the seconds of
    the results this one replaces, :func:`replaced_seconds`) is kept as ``replaced_seconds``.
    When ``fn`` raises (including ``KeyboardInterrupt``), its elapsed time is added to
    :func:`interrupted_path` and the error goes on."""
    ledger = interrupted_path(result)
    t0 = time.perf_counter()
    try:
        value = fn()
    except BaseException:
        if distributed.is_main():
            earlier = _read_list(ledger, "interrupted_seconds")
            atomic_write_json(ledger, {"interrupted_seconds":
                                       earlier + [round(time.perf_counter() - t0, 2)]})
        raise
    this_call = round(time.perf_counter() - t0, 2)
    earlier = _read_list(ledger, "interrupted_seconds")
    value["seconds"] = round(this_call + sum(earlier), 2)
    if replaced:
        value["replaced_seconds"] = replaced
    if earlier:
        value["seconds_this_call"] = this_call
        value["interrupted_seconds"] = earlier
        if distributed.is_main():
            ledger.unlink(missing_ok=True)
    return value


class CallLedger:
    """The calls of one job in ``<out>/calls.json``: when each started, its seconds, whether it
    finished and how many stages it computed. Use as a context manager around the call."""

    def __init__(self, out: Path, stages_computed: Callable[[], int]) -> None:
        self.path = Path(out) / "calls.json"
        self.started = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
        self.t0 = time.perf_counter()
        self.stages_computed = stages_computed

    def earlier(self) -> list[dict[str, Any]]:
        """The calls recorded before this one."""
        return [c for c in _read_list(self.path, "calls") if isinstance(c, dict)]

    def summary(self) -> dict[str, Any]:
        """``wall_seconds_this_call``; ``wall_seconds_all_calls``, the sum over the calls that
        computed a stage or were interrupted (this one too, unless it only reused stages);
        ``calls``, their number. ``wall_seconds_all_calls`` is ``None`` when no call computed a
        stage: the stages were computed before calls were recorded, their time is unknown."""
        this = round(time.perf_counter() - self.t0, 1)
        counted = [float(c.get("seconds") or 0) for c in self.earlier()
                   if c.get("stages_computed") or not c.get("finished")]
        if self.stages_computed():
            counted.append(this)
        return {"wall_seconds_this_call": this,
                "wall_seconds_all_calls": round(sum(counted), 1) if counted else None,
                "calls": len(counted)}

    def record(self, finished: bool) -> None:
        """Append this call (main rank; calls that computed nothing and finished are left out,
        so re-rendering a report does not add to the wall time)."""
        computed = self.stages_computed()
        if not distributed.is_main() or (finished and not computed):
            return
        entry = {"started": self.started, "seconds": round(time.perf_counter() - self.t0, 1),
                 "finished": finished, "stages_computed": computed}
        atomic_write_json(self.path, {"calls": self.earlier() + [entry]})

    def __enter__(self) -> CallLedger:
        return self

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        self.record(finished=exc_type is None)
