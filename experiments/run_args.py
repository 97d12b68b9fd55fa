"""The arguments every experiment on a stored run takes: the config and its ``--set`` overrides
as ``racam run`` takes them, the run folder (``--out``), the fold and an optional JSON output."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


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


def finished_run(args: argparse.Namespace) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    """The config of the run ``args`` names (as :func:`run_parser` parsed them), and its
    fold's stored classifier and (first) segmentation results."""
    from racam.engine import load_run_config

    cfg = load_run_config(args.config, args.set_, args.out)
    fold_dir = args.out / f"fold{args.fold}"
    clf = json.loads((fold_dir / "classifier" / "result.json").read_text())
    seg = json.loads(next((fold_dir / "segmentation").glob("*/result.json")).read_text())
    return cfg, clf, seg
