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
    (:func:`racam.distributed.init_from_env`) and leaves it at the end; when another rank
    dies mid-run this rank says so in one line (exit 1) and torchrun stops the run.
    """
    from racam import distributed
    from racam.errors import RacamError

    try:
        distributed.init_from_env()
        app(prog_name="racam")
    except RacamError as exc:
        typer.secho(f"error: {exc}", err=True, fg=typer.colors.RED)
        raise SystemExit(2) from None
    except RuntimeError as exc:
        if not distributed.peer_lost(exc):
            raise
        typer.secho(f"error: rank {distributed.rank()}: another rank stopped "
                    f"({str(exc).splitlines()[0][:200]}); run the same command again to resume",
                    err=True, fg=typer.colors.RED)
        raise SystemExit(1) from None
    finally:
        distributed.shutdown()
