"""Typed stage results: frozen dataclasses stored as the stages' JSON files.

Each result class lists its fields in the order they are stored; :meth:`StageResult.to_json`
writes them (a field marked :func:`optional` only when it is set), then the timing of
:func:`racam.stages.elapsed.timed_stage`, the stage key and the result format
(:data:`StageResult.SCHEMA_VERSION`, :mod:`racam.compat`). :meth:`StageResult.from_json` reads
a stored result back; fields it does not know (written by an earlier racam) are kept in
``extra`` and written back as they were.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, TypeVar

from racam import compat

R = TypeVar("R", bound="StageResult")

_OPTIONAL = {"optional": True}


def optional(default: Any = None) -> Any:
    """A field stored only when it is not ``None`` (absent from earlier or plainer results)."""
    return dataclasses.field(default=default, metadata=_OPTIONAL)


@dataclasses.dataclass(frozen=True, kw_only=True)
class StageResult:
    """What every stored stage result holds besides its own fields."""

    #: The result format written (:data:`racam.compat.FORMAT_VERSION`).
    SCHEMA_VERSION: ClassVar[int] = compat.FORMAT_VERSION

    #: seconds of the stage, earlier interrupted calls included (:mod:`racam.stages.elapsed`)
    seconds: float | None = optional()
    seconds_this_call: float | None = optional()
    interrupted_seconds: list[float] | None = optional()
    #: seconds of the results this one replaced, reusing their work
    #: (:func:`racam.stages.elapsed.replaced_seconds`)
    replaced_seconds: list[float] | None = optional()
    #: the stage key it was computed under (:mod:`racam.stages.cache`)
    key: dict[str, Any] | None = optional()
    #: stored fields this racam does not know, kept as they were
    extra: dict[str, Any] = dataclasses.field(default_factory=dict, repr=False)

    def to_json(self) -> dict[str, Any]:
        """The stored form (JSON data), ``"schema"`` last."""
        base = {f.name for f in dataclasses.fields(StageResult)}
        own = [f for f in dataclasses.fields(self) if f.name not in base]
        timing = [f for f in dataclasses.fields(StageResult) if f.name != "extra"]
        out: dict[str, Any] = {}
        for f in own + timing:
            value = getattr(self, f.name)
            if value is not None or not f.metadata.get("optional"):
                out[f.name] = value
        out.update(self.extra)
        out["schema"] = self.SCHEMA_VERSION
        return out

    @classmethod
    def from_json(cls: type[R], value: dict[str, Any]) -> R:
        """A stored result (any format :mod:`racam.compat` reads)."""
        names = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        known = {k: v for k, v in value.items() if k in names}
        extra = {k: v for k, v in value.items() if k not in names and k != "schema"}
        return cls(**known, extra=extra)

    def replace(self: R, **changes: Any) -> R:
        """A copy with ``changes``."""
        return dataclasses.replace(self, **changes)
