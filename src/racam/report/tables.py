"""Markdown tables of metrics."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def pct(x: float | None) -> str:
    """A fraction in [0, 1] as a percentage with two decimals; ``None`` (a score over an empty
    set, see :mod:`racam.evaluation.metrics`) is ``n/a``."""
    return NA if x is None else f"{100 * x:.2f}"


#: How a score over an empty set is shown.
NA = "n/a"


def md_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub-flavoured Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"
