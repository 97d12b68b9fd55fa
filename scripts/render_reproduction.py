"""Render ``report.md`` / ``report.html`` of a finished reproduction again from its
``reproduce.json`` and ``config.json`` (after a change to the report's wording; no number is
recomputed).

    python scripts/render_reproduction.py results/ksdd-cpu
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from racam.config import config_from_dict
from racam.io import atomic_write_text
from racam.report.html import write_html
from racam.report.reproduction import render_report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", type=Path)
    a = ap.parse_args()
    results = json.loads((a.folder / "reproduce.json").read_text())
    cfg = config_from_dict(json.loads((a.folder / "config.json").read_text()))
    if results.get("chosen_delta") is not None:  # as `racam reproduce` renders it
        cfg = dataclasses.replace(cfg, cam=dataclasses.replace(cfg.cam,
                                                               delta=results["chosen_delta"]))
    text = render_report(cfg, results, a.folder)
    atomic_write_text(a.folder / "report.md", text)
    write_html(text, a.folder / "report.html", title=f"racam reproduce: {cfg.name}")
    print(a.folder / "report.md")


if __name__ == "__main__":
    main()
