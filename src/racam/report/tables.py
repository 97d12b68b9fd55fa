"""Markdown tables of metrics."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def pct(x: float | None) -> str:
    """A fraction in [0, 1] as a percentage with two decimals; ``None`` (a score over an empty
    set, see :mod:`racam.evaluation.metrics`) is ``n/a``."""
    return NA if x is None else f"{100 * x:.2f}"


def interval_text(iv: dict[str, Any] | None, missing: str = "-") -> str:
    """A bootstrap interval (fractions) as ``[12.34, 56.78]`` in percent, ``missing`` if none."""
    return missing if not iv else f"[{100 * iv['low']:.2f}, {100 * iv['high']:.2f}]"


#: How a score over an empty set is shown.
NA = "n/a"


def md_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub-flavoured Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"
