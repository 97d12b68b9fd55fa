"""``racam run``, ``racam demo`` and ``racam reproduce``."""

from __future__ import annotations

from pathlib import Path

import typer

from racam.cli.options import ConfigArg, OutOpt, QuietOpt, SetOpt, load, load_planned
from racam.distributed import is_distributed, is_main


def _print_summary(results, out: Path) -> None:
    """The pooled figures of a :class:`racam.stages.evaluate.RunResults`."""
    from racam.evaluation.pooling import undefined_note
    from racam.report.tables import pct
    from racam.stages.evaluate import VIEW_LABELS, VIEWS

    auroc = results.classifier.test_auroc_pooled
    shown = f"{auroc:.3f}" if isinstance(auroc, float) else "n/a (one class in the test set)"
    typer.echo(f"classifier test AUROC (pooled): {shown}")
    for key in VIEWS:
        r = results.view(key)
        if r:
            typer.echo(f"{VIEW_LABELS.get(key, key):15s} IoU {pct(r['iou'])}  "
                       f"mIoU {pct(r['miou'])}  "
                       f"P {pct(r['precision'])}  R {pct(r['recall'])}  F1 {pct(r['f1'])}")
    for key in VIEWS:
        note = undefined_note(VIEW_LABELS.get(key, key), results.view(key))
        if note:
            typer.secho(f"warning: {note}", err=True, fg=typer.colors.YELLOW)
    typer.echo(f"report: {out / 'run-report.md'}")


def run(config: str = ConfigArg, set_: list[str] = SetOpt, out: Path = OutOpt,
        quiet: bool = QuietOpt) -> None:
    """Whole pipeline: classifier, heat maps, pseudo-labels, segmentation, evaluation, report.

    Also under torchrun: torchrun --nproc_per_node N -m racam run ... (N ranks, DDP;
    docs/distributed.md).
    """
    from racam.engine import Engine

    cfg, planned = load_planned(config, set_, out)
    engine = Engine(cfg, progress=not quiet)
    if planned is not None:  # the fingerprint and plan, for the report (racam.plan)
        from racam.plan.record import write_plan

        engine.check_stored()  # a refused run writes nothing, plan.json included
        if is_main():
            write_plan(engine.out, planned)
    results = engine.run()
    if is_main():
        _print_summary(results, engine.out)


def demo(out: Path = typer.Option(Path("racam-demo"), "--out", help="Output folder."),
         quiet: bool = QuietOpt) -> None:
    """The whole pipeline on the bundled KolektorSDD sample (a few minutes on 2 CPU cores), read
    as a folder dataset with its plan, as your own images are."""
    run("demo", [], out, quiet)


def reproduce(config: str = ConfigArg, set_: list[str] = SetOpt, out: Path = OutOpt,
              quiet: bool = QuietOpt,
              render_only: bool = typer.Option(
                  False, "--render-only",
                  help="Compute nothing: write report.md and report.html of the reproduction "
                       "stored in the output folder again, from its reproduce.json and "
                       "config.json (the config it ran with).")) -> None:
    """Paper Tables I, III, IV and Figures 1, 4-5, 8-9 side by side with the paper's numbers."""
    from racam.errors import ConfigError

    if is_distributed():
        raise ConfigError("racam reproduce runs in one process; under torchrun use racam run "
                          "(or the stage commands)")
    cfg = load(config, set_, out)
    if render_only:
        from racam.paper.report import render_folder

        typer.echo(f"report: {render_folder(Path(cfg.output))}")
        return
    from racam.paper.reproduce import Reproduction

    rep = Reproduction(cfg, progress=not quiet)
    path = rep.run()
    typer.echo(f"report: {path}")


def register(app: typer.Typer) -> None:
    """Add ``run``, ``demo`` and ``reproduce``."""
    app.command("run")(run)
    app.command("demo")(demo)
    app.command("reproduce")(reproduce)
