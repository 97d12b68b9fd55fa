"""CLI commands: ``racam data info ROOT`` prints image and defect counts per split or fold."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

BUILTIN_SAMPLE = "builtin:ksdd_sample"

data_app = typer.Typer(help="Inspect datasets.", no_args_is_help=True)


def _root(root: str) -> Path:
    if root == BUILTIN_SAMPLE:
        return Path(__file__).resolve().parent.parent / "assets" / "ksdd_sample"
    return Path(root).expanduser()


@data_app.command("info")
def info(
    root: str = typer.Argument(..., help="Dataset folder (or builtin:ksdd_sample for the "
                                         "bundled KolektorSDD sample)."),
    dataset: Optional[str] = typer.Option(
        None, "--dataset", "-d",
        help="ksdd, ksdd2 or folder (default: guessed from the folder layout)."),
    split_file: Optional[str] = typer.Option(
        None, "--split-file",
        help="KolektorSDD split file: a name in ROOT/splits or a path (default: split_33_0.pyb "
             "when present, else the only .pyb there, else none). 'none' lists all items only."),
    test_fraction: float = typer.Option(0.3, help="Folder dataset: test share of each class "
                                                  "when the folder has no split file."),
    seed: int = typer.Option(0, help="Folder dataset: seed of the stratified split."),
) -> None:
    """Print, per split or fold, the number of images and of defective images."""
    from rich.console import Console
    from rich.table import Table

    from racam.data.summary import (
        DATASETS,
        default_split_file,
        detect_dataset,
        summarize,
    )
    from racam.errors import ConfigError

    path = _root(root)
    kind = dataset or detect_dataset(path)
    if kind not in DATASETS:
        raise ConfigError(f"--dataset must be one of {', '.join(DATASETS)}, got {kind!r}")
    split: str | None = None
    if split_file is not None and kind != "ksdd":
        raise ConfigError(f"--split-file applies to ksdd only, not {kind}")
    if kind == "ksdd":
        split = default_split_file(path) if split_file is None else split_file
        if split is not None and split.lower() == "none":
            split = None
    rows = summarize(path, kind, split_file=split, test_fraction=test_fraction, seed=seed)
    title = f"{kind} at {path}" + (f" (split file {split})" if split else "")
    table = Table()
    for col in ("split", "images", "defective", "defect-free"):
        table.add_column(col, justify="left" if col == "split" else "right")
    for r in rows:
        table.add_row(r.name, str(r.images), str(r.defective), str(r.defect_free))
    console = Console(width=max(100, len(title) + 4), highlight=False)
    console.print(title)
    console.print(table)


def register(app: typer.Typer) -> None:
    """Add the ``data`` command group to the racam app."""
    app.add_typer(data_app, name="data")
