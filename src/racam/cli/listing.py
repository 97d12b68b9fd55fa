"""``racam list [methods|backbones|networks|datasets]``: what each registry holds."""

from __future__ import annotations

import typer

from racam.catalog import KINDS


def list_command(
    kind: str | None = typer.Argument(None, help=f"One of {', '.join(KINDS)} (default: all)."),
) -> None:
    """Print the registered heat-map methods, classifier backbones, segmentation networks or
    datasets: one name per line with a line about it."""
    from racam.catalog import listing

    kinds = [kind] if kind is not None else list(KINDS)
    for i, k in enumerate(kinds):
        rows = listing(k)
        if len(kinds) > 1:
            typer.echo(("\n" if i else "") + f"{k}:")
        width = max((len(r.name) for r in rows), default=0)
        for r in rows:
            typer.echo(f"  {r.name:<{width}}  {r.summary}".rstrip())


def register(app: typer.Typer) -> None:
    """Add ``racam list``."""
    app.command("list")(list_command)
