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
    """Load a config with ``--set`` overrides applied; ``out`` overrides ``output``."""
    from racam.config import load_config
    from racam.errors import ConfigError

    values = {}
    for item in overrides or []:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE")
        key, value = item.split("=", 1)
        values[key.strip()] = yaml.safe_load(value)
    if out is not None:
        values["output"] = str(out)
    return load_config(config, values)
