"""Options shared by the pipeline commands."""

from __future__ import annotations

from pathlib import Path

import typer

ConfigArg = typer.Argument(..., help="YAML config file, or a built-in name (ksdd-cpu, ksdd-paper, "
                                     "ksdd2-paper, folder-example, demo).")
SetOpt = typer.Option(None, "--set", help="Override a config key, e.g. --set classifier.epochs=2 "
                                          "(repeatable; values parsed as YAML).")
OutOpt = typer.Option(None, "--out", help="Output folder (default: the config's `output`).")
QuietOpt = typer.Option(False, "--quiet", help="No progress bars.")


def load(config: str, overrides: list[str] | None, out: Path | None = None):
    """The config with ``--set`` overrides applied; ``out`` overrides ``output``
    (:func:`racam.engine.load_run_config`)."""
    return load_planned(config, overrides, out)[0]


def load_planned(config: str, overrides: list[str] | None, out: Path | None = None):
    """:func:`load`, and the run's :class:`racam.plan.apply.PlannedRun` (``None``: no plan)."""
    from racam.engine import load_planned_config

    return load_planned_config(config, overrides or (), out)
