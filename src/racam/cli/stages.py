"""Each pipeline stage alone: ``racam train-classifier``, ``pseudo-labels``, ``train-seg``,
``evaluate`` (the verbs of :class:`racam.engine.Engine`).

A stage runs the stages it depends on when their results are missing, and reuses them when present.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from racam.cli.options import ConfigArg, OutOpt, QuietOpt, SetOpt, load
from racam.cli.registry_help import RegistryHelpCommand

FoldOpt = typer.Option(None, "--fold",
                       help="Run one fold only (default: every fold of the config).")


def _engine(config: str, set_: list[str] | None, out: Path | None, quiet: bool = False):
    from racam.engine import Engine

    return Engine(load(config, set_, out), progress=not quiet)


def train_classifier(config: str = ConfigArg, set_: list[str] = SetOpt, out: Path = OutOpt,
                     fold: int = FoldOpt, quiet: bool = QuietOpt) -> None:
    """Train the image-level classifier (resumes from last.pt) and score it on test images."""
    engine = _engine(config, set_, out, quiet)
    for k, r in engine.train_classifier(engine.select_folds(fold)).items():
        typer.echo(f"fold {k}: best epoch {r.best_epoch}, test AUROC {r.test_auroc}, "
                   f"checkpoint {r.checkpoint}")


def pseudo_labels(config: str = ConfigArg, set_: list[str] = SetOpt, out: Path = OutOpt,
                  fold: int = FoldOpt, quiet: bool = QuietOpt) -> None:
    """Write Otsu pseudo-labels of the configured heat map for the training images."""
    from racam.evaluation.pooling import counts_from
    from racam.report.tables import pct

    engine = _engine(config, set_, out, quiet)
    for k, r in engine.pseudo_labels(engine.select_folds(fold)).items():
        q = r.pseudo_vs_true_defective
        iou = f"{pct(counts_from(q).iou)}%" if q else "n/a (no true masks)"
        typer.echo(f"fold {k}: {r.num_images} masks, IoU vs true masks {iou}: {r.manifest}")


def train_seg(config: str = ConfigArg, set_: list[str] = SetOpt, out: Path = OutOpt,
              fold: int = FoldOpt,
              source: str = typer.Option("pseudo", help="pseudo (weak) or true (fully supervised)"),
              arch: str = typer.Option(None, help="Network (default: the config's): {networks}"),
              quiet: bool = QuietOpt) -> None:
    """Train a segmentation network on pseudo-labels (or true masks) and score it on test."""
    from racam.evaluation.pooling import counts_from
    from racam.report.tables import pct

    engine = _engine(config, set_, out, quiet)
    for k, r in engine.train_seg(engine.select_folds(fold), arch, source).items():
        if r.counts is None:
            typer.echo(f"fold {k}: {r.arch} ({source}) trained, checkpoint {r.checkpoint}; "
                       "not scored: the test images have no masks")
            continue
        c = counts_from(r.counts)
        typer.echo(f"fold {k}: {r.arch} ({source}) defect IoU {pct(c.iou)}%, "
                   f"mIoU {pct(c.miou)}%")


def evaluate(config: str = ConfigArg, set_: list[str] = SetOpt, out: Path = OutOpt,
             method: str = typer.Option(None, help="Heat-map method (default: the config's): "
                                        "{methods}"),
             delta: float = typer.Option(None, help="FGBP delta (default: the config's)"),
             quiet: bool = QuietOpt) -> None:
    """CAM quality of a heat-map method on the test images, pooled over folds."""
    engine = _engine(config, set_, out, quiet)
    typer.echo(json.dumps(engine.evaluate(method, delta).to_json(), indent=2))


def register(app: typer.Typer) -> None:
    """Add the stage commands."""
    app.command("train-classifier")(train_classifier)
    app.command("pseudo-labels")(pseudo_labels)
    app.command("train-seg", cls=RegistryHelpCommand)(train_seg)
    app.command("evaluate", cls=RegistryHelpCommand)(evaluate)
