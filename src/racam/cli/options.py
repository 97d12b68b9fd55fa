"""Options shared by the pipeline commands."""

from __future__ import annotations

from pathlib import Path

import typer
import yaml

ConfigArg = typer.Argument(..., help="YAML config file, or a built-in name (ksdd-cpu, ksdd-paper, "
                                     "ksdd2-paper, folder-example, demo).")
SetOpt = typer.Option(None, "--set", help="Override a config key, e.g. --set classifier.epochs=2 "
                                          "(repeatable; values parsed as YAML).")
OutOpt = typer.Option(None, "--out", help="Output folder (default: the config's `output`).")
QuietOpt = typer.Option(False, "--quiet", help="No progress bars.")


def load(config: str, overrides: list[str] | None, out: Path | None = None):
    """Load a config with ``--set`` overrides applied; ``out`` overrides ``output``. A folder
    run with ``data.plan: auto`` gets its plan's values for the keys it leaves out."""
    return load_planned(config, overrides, out)[0]


def load_planned(config: str, overrides: list[str] | None, out: Path | None = None):
    """:func:`load`, and the run's :class:`racam.plan.apply.PlannedRun` (``None``: no plan)."""
    from racam.config import config_from_values, config_values
    from racam.errors import ConfigError
    from racam.plan.apply import planned_run

    values = {}
    for item in overrides or []:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE")
        key, value = item.split("=", 1)
        values[key.strip()] = yaml.safe_load(value)
    if out is not None:
        values["output"] = str(out)
    plain, path = config_values(config, values)
    cfg = config_from_values(plain, path)
    planned = planned_run(cfg, plain)
    return (cfg, None) if planned is None else (planned.config, planned)
