"""The ``racam`` command line (typer). Each sub-module registers its own commands."""

from __future__ import annotations

import typer

from racam.cli import cam as _cam
from racam.cli import data as _data
from racam.cli import pipeline as _pipeline
from racam.cli import stages as _stages

app = typer.Typer(
    name="racam",
    help="Weakly-supervised surface-defect segmentation with Region-Aware CAM.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

for _module in (_data, _cam, _stages, _pipeline):
    _module.register(app)


def main() -> None:
    """Entry point of the ``racam`` script: racam errors print one clear line, exit code 2.

    Launched by ``torchrun``, the process first joins torchrun's process group
    (:func:`racam.distributed.init_from_env`) and leaves it at the end.
    """
    from racam import distributed
    from racam.errors import RacamError

    try:
        distributed.init_from_env()
        app()
    except RacamError as exc:
        typer.secho(f"error: {exc}", err=True, fg=typer.colors.RED)
        raise SystemExit(2) from None
    finally:
        distributed.shutdown()
