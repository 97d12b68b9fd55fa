"""The ``racam`` command line (typer). Each sub-module registers its own commands."""

from __future__ import annotations

import shlex
import signal
import sys

import typer

from racam.cli import cam as _cam
from racam.cli import data as _data
from racam.cli import listing as _listing
from racam.cli import masks as _masks
from racam.cli import pipeline as _pipeline
from racam.cli import predict as _predict
from racam.cli import stages as _stages

app = typer.Typer(
    name="racam",
    help="Weakly-supervised surface-defect segmentation with Region-Aware CAM.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

for _module in (_data, _cam, _stages, _pipeline, _predict, _masks, _listing):
    _module.register(app)


def main() -> None:
    """Entry point of the ``racam`` script: a :class:`~racam.errors.RacamError` (bad data,
    config, checkpoint) or an ``OSError`` (a path that cannot be read or written) prints one
    line naming the file, key or path and what is wrong, exit code 2. Any other exception is a
    bug in racam and keeps its traceback.

    Launched by ``torchrun``, the process first joins torchrun's process group
    (:func:`racam.distributed.init_from_env`) and leaves it at the end; when another rank
    dies mid-run this rank says so in one line (exit 1) and torchrun stops the run.
    """
    from racam import distributed

    # Ctrl-C / SIGINT stops racam cleanly (interrupted stages timed, how to resume said) even
    # when it was started with SIGINT ignored, as a shell's background jobs are
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        distributed.init_from_env()
        app(prog_name="racam")
    except Exception as exc:
        line = error_line(exc)
        if line is not None:
            typer.secho(f"error: {line}", err=True, fg=typer.colors.RED)
            raise SystemExit(2) from None
        if isinstance(exc, RuntimeError) and distributed.peer_lost(exc):
            typer.secho(f"error: rank {distributed.rank()}: another rank stopped "
                        f"({str(exc).splitlines()[0][:200]}); run the same command again to "
                        "resume", err=True, fg=typer.colors.RED)
            raise SystemExit(1) from None
        raise
    except SystemExit as exc:
        if exc.code == INTERRUPTED:  # typer's exit for Ctrl-C (KeyboardInterrupt)
            typer.secho(interrupted_line(sys.argv[1:]), err=True, fg=typer.colors.YELLOW)
        raise
    finally:
        distributed.shutdown()


#: Exit code of a command stopped by Ctrl-C (typer turns ``KeyboardInterrupt`` into it).
INTERRUPTED = 130


#: What an interrupted command keeps, by command (the pipeline's stage commands otherwise).
KEPT_ON_INTERRUPT = {
    "predict": "the images already predicted are kept (journal); to go on with the rest",
    "cam": "earlier maps in the output folder are untouched and no half-written set is left; "
           "to write the maps",
    "export": "no half-written model file is left; to export",
    "data": "nothing was written; to inspect the data",
    "masks": "no half-written file is left; to finish",
}


def interrupted_line(args: list[str]) -> str:
    """What Ctrl-C prints: what is kept and the command that resumes."""
    command = " ".join(shlex.quote(a) for a in ["racam", *args])
    kept = KEPT_ON_INTERRUPT.get(args[0] if args else "",
                                 "finished stages, the networks' last finished epochs and the "
                                 "pseudo-labels written so far are kept; to resume")
    return f"interrupted: {kept}, run the same command again: {command}"


def error_line(exc: BaseException) -> str | None:
    """The one-line message of an expected error (see :func:`main`), ``None`` for a bug."""
    from racam.errors import RacamError

    if isinstance(exc, RacamError):
        return " ".join(str(exc).split())
    if isinstance(exc, OSError):
        what = exc.strerror or str(exc)
        if exc.filename is not None and exc.filename2 is not None:
            return f"{exc.filename} -> {exc.filename2}: {what}"
        return f"{exc.filename}: {what}" if exc.filename is not None else what
    return None
