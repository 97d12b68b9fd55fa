"""CLI commands: ``racam data info ROOT`` prints image and defect counts per split or fold."""

from __future__ import annotations

from pathlib import Path

import typer

from racam.cli.registry_help import RegistryHelpCommand

data_app = typer.Typer(help="Inspect datasets.", no_args_is_help=True)


@data_app.command("info", cls=RegistryHelpCommand)
def info(
    root: str = typer.Argument(..., help="Dataset folder (or builtin:ksdd_sample for the "
                                         "bundled KolektorSDD sample)."),
    dataset: str | None = typer.Option(
        None, "--dataset", "-d",
        help="{datasets} (default: guessed from the folder layout)."),
    split_file: str | None = typer.Option(
        None, "--split-file",
        help="KolektorSDD split file: a name in ROOT/splits or a path (default: split_33_0.pyb "
             "when present, else the only .pyb there, else none). 'none' lists all items only."),
    test_fraction: float = typer.Option(0.3, help="Folder dataset: test share of each class "
                                                  "when the folder has no split file."),
    seed: int = typer.Option(0, help="Folder dataset: seed of the stratified split."),
) -> None:
    """Print, per split or fold, the number of images and of defective images; for a folder
    dataset also class counts, image sizes and every problem file (as warnings, exit 0)."""
    from rich.console import Console
    from rich.table import Table

    from racam.data import registry
    from racam.data.spec import InfoOptions
    from racam.errors import ConfigError

    path = registry.builtin_root(root) or Path(root).expanduser()
    kind = dataset or registry.detect(path)
    if kind not in registry.names():
        raise ConfigError(f"--dataset must be one of {', '.join(registry.names())}, "
                          f"got {kind!r}")
    spec = registry.get(kind)
    if split_file is not None and "split_file" not in spec.info_options:
        takers = [n for n in registry.names() if "split_file" in registry.get(n).info_options]
        raise ConfigError(f"--split-file applies to {', '.join(takers)} only, not {kind}")
    summary = spec.summarize(path, InfoOptions(split_file=split_file,
                                               test_fraction=test_fraction, seed=seed))
    title = f"{kind} at {path}" + (f" ({summary.note})" if summary.note else "")
    table = Table()
    for col in ("split", "images", "defective", "defect-free"):
        table.add_column(col, justify="left" if col == "split" else "right")
    for r in summary.rows:
        table.add_row(r.name, str(r.images), str(r.defective), str(r.defect_free))
    console = Console(width=max(100, len(title) + 4), highlight=False)
    console.print(title)
    console.print(table)
    for line in summary.details:
        console.print(line)
    for line in summary.warnings:
        typer.secho(f"warning: {line}", err=True, fg=typer.colors.YELLOW)
    if kind == "folder":  # the fingerprint and the plan a folder run takes (racam.plan)
        from racam.plan.report import folder_info_lines

        for line in folder_info_lines(path, test_fraction):
            typer.echo(line)


def register(app: typer.Typer) -> None:
    """Add the ``data`` command group to the racam app."""
    app.add_typer(data_app, name="data")
