"""The arguments every experiment on a stored run takes: the config and its ``--set`` overrides
as ``racam run`` takes them, the run folder (``--out``), the fold and an optional JSON output."""

from __future__ import annotations

import argparse
from pathlib import Path


def run_parser(doc: str | None) -> argparse.ArgumentParser:
    """A parser with ``config``, ``--set``, ``--out``, ``--fold`` and ``--json``; ``doc``'s
    first line describes it."""
    ap = argparse.ArgumentParser(description=(doc or "").split("\n")[0])
    ap.add_argument("config")
    ap.add_argument("--set", dest="set_", action="append", default=[])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--fold", type=int, default=0)
    ap.add_argument("--json", type=Path)
    return ap
