"""``racam run``, ``racam demo`` and ``racam reproduce``."""

from __future__ import annotations

from pathlib import Path

import typer

from racam.cli.options import ConfigArg, OutOpt, QuietOpt, SetOpt, load, load_planned
from racam.distributed import is_distributed, is_main


def _print_summary(results: dict, out: Path) -> None:
    from racam.report.tables import pct

    c = results["classifier"]
    auroc = c.get("test_auroc_pooled")
    shown = f"{auroc:.3f}" if isinstance(auroc, float) else "n/a (one class in the test set)"
    typer.echo(f"classifier test AUROC (pooled): {shown}")
    from racam.evaluation.pooling import undefined_note

    for key in ("cam_paper", "cam_deployment", "pseudo_labels", "segmentation"):
        r = results.get(key)
        if r:
            typer.echo(f"{key:15s} IoU {pct(r['iou'])}  mIoU {pct(r['miou'])}  "
                       f"P {pct(r['precision'])}  R {pct(r['recall'])}  F1 {pct(r['f1'])}")
    for key in ("cam_paper", "cam_deployment", "pseudo_labels", "segmentation"):
        note = undefined_note(key, results.get(key))
        if note:
            typer.secho(f"warning: {note}", err=True, fg=typer.colors.YELLOW)
    typer.echo(f"report: {out / 'run-report.md'}")


def run(config: str = ConfigArg, set_: list[str] = SetOpt, out: Path = OutOpt,
        quiet: bool = QuietOpt) -> None:
    """Whole pipeline: classifier, heat maps, pseudo-labels, segmentation, evaluation, report.

    Also under torchrun: torchrun --nproc_per_node N -m racam run ... (N ranks, DDP;
    docs/distributed.md).
    """
    from racam.pipeline.run import Pipeline

    cfg, planned = load_planned(config, set_, out)
    pipe = Pipeline(cfg, progress=not quiet)
    if planned is not None:  # the fingerprint and plan, for the report (racam.plan)
        from racam.plan.record import write_plan

        pipe.check_stored()  # a refused run writes nothing, plan.json included
        if is_main():
            write_plan(pipe.out, planned)
    results = pipe.run()
    if is_main():
        _print_summary(results, pipe.out)


def demo(out: Path = typer.Option(Path("racam-demo"), "--out", help="Output folder."),
         quiet: bool = QuietOpt) -> None:
    """The whole pipeline on the bundled KolektorSDD sample (a few minutes on 2 CPU cores)."""
    from racam.pipeline.run import Pipeline

    cfg = load("demo", None, out)
    pipe = Pipeline(cfg, progress=not quiet)
    results = pipe.run()
    if is_main():
        _print_summary(results, pipe.out)


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
