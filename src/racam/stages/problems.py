"""A dataset's file problems as a run records them (``results.json``'s ``data``): each
problem's path, kind and message (:class:`racam.data.audit.Problem`), grouped by kind for the
log and the report, and the images left out of the pixel metrics."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from pathlib import Path
from typing import Any


@dataclasses.dataclass(frozen=True)
class FileProblem:
    """One problem of one dataset file, as :class:`racam.data.audit.Problem` names it."""

    path: str
    kind: str  #: a short tag: ``duplicate image``, ``missing mask``, ...
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.kind}: {self.message}"

    def to_json(self) -> dict[str, str]:
        return {"path": self.path, "kind": self.kind, "message": self.message}

    @classmethod
    def from_json(cls, value: dict[str, str] | str) -> FileProblem:
        """A stored problem; one line ``path: kind: message`` (results written before the kind
        was kept) is split at its first two ``": "``."""
        if isinstance(value, str):
            path, kind, message = ([*value.split(": ", 2), "", ""])[:3]
            return cls(path, kind, message)
        return cls(value["path"], value["kind"], value["message"])


@dataclasses.dataclass(frozen=True)
class DataProblems:
    """Problems of the dataset's files (:mod:`racam.data.audit`; folder datasets) and the images
    left out of the pixel metrics for want of a usable mask."""

    problems: list[FileProblem] = dataclasses.field(default_factory=list)
    left_out_of_pixel_metrics: list[str] = dataclasses.field(default_factory=list)

    @classmethod
    def found(cls, problems: Iterable[Any], left_out: Iterable[Path]) -> DataProblems:
        """Of the audit's :class:`racam.data.audit.Problem` s and its images without a usable
        mask."""
        return cls([FileProblem(str(p.path), p.kind, p.message) for p in problems],
                   [str(p) for p in left_out])

    def by_kind(self) -> dict[str, list[FileProblem]]:
        """The problems grouped by kind, the most frequent kind first (ties: first seen)."""
        groups: dict[str, list[FileProblem]] = {}
        for p in self.problems:
            groups.setdefault(p.kind, []).append(p)
        return dict(sorted(groups.items(), key=lambda kv: -len(kv[1])))

    def log_lines(self, shown: int = 3) -> list[str]:
        """The problems as log lines: the first ``shown`` of each kind, then how many more
        (the run report and ``racam data info`` name every file)."""
        lines = []
        for kind, ps in self.by_kind().items():
            lines += [str(p) for p in ps[:shown]]
            if len(ps) > shown:
                lines.append(f"{len(ps) - shown} more '{kind}' problem(s): the run report and "
                             "`racam data info` name every file")
        return lines

    def to_json(self) -> dict[str, Any]:
        return {"problems": [p.to_json() for p in self.problems],
                "left_out_of_pixel_metrics": self.left_out_of_pixel_metrics}

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> DataProblems:
        return cls([FileProblem.from_json(p) for p in value.get("problems", [])],
                   list(value.get("left_out_of_pixel_metrics", [])))
