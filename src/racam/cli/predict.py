"""``racam predict`` and ``racam export``: use a trained run on new images."""

from __future__ import annotations

from pathlib import Path

import typer

from racam.cli.options import QuietOpt

RunArg = typer.Argument(..., help="Folder of a finished racam run (racam run / racam demo).")
ModelArg = typer.Argument(..., help="Folder of a finished racam run (racam run / racam demo), "
                          "or a bundle written by racam export (run with onnxruntime).")
FoldOpt = typer.Option(None, "--fold", help="Which fold's networks (default: the run's first).")


def predict(
    run_dir: Path = ModelArg,
    images: Path = typer.Option(..., "--images", help="Folder of images (searched recursively; "
                                "any size; grayscale, RGB, RGBA, palette or 16-bit; files "
                                "named *_label.* or *_GT.* are masks and are skipped)."),
    out: Path = typer.Option(..., "--out", help="Output folder: masks/, overlays/, "
                             "predictions.csv, index.html. A new or empty folder, or one an "
                             "earlier racam predict made (.racam-predict.json); never read as "
                             "input."),
    source: str = typer.Option("seg", "--source", help="Masks from the segmentation network "
                               "(seg) or from the run's heat map + Otsu (cam; torch only, not "
                               "with --onnx; empty for images called defect-free)."),
    threshold: float = typer.Option(None, "--threshold", help="Decision threshold on the "
                                    "defect probability (default: the run's: "
                                    "classifier.threshold, 0.5, or the one chosen on its "
                                    "validation images with classifier.threshold_rule: "
                                    "val_f1)."),
    onnx: Path = typer.Option(None, "--onnx", help="Run the ONNX files of this racam export "
                              "bundle with onnxruntime instead of the torch checkpoints; it "
                              "must have been exported from this run."),
    batch_size: int = typer.Option(4, "--batch-size", help="Images per forward pass."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda, ..."),
    fold: int = FoldOpt,
    into_existing: bool = typer.Option(False, "--into-existing", help="Write into a non-empty "
                                       "--out that racam predict did not make; a file there "
                                       "that racam did not write is still never replaced."),
    quiet: bool = QuietOpt,
) -> None:
    """Defect probability, original-size mask and overlay of every image, predictions.csv and
    an index.html gallery. A second call skips the images already done."""
    from racam.deploy.predict import PredictOptions, predict_folder

    s = predict_folder(run_dir, PredictOptions(
        images=images, out=out, source=source, threshold=threshold, batch_size=batch_size,
        device=device, onnx=onnx, fold=fold, progress=not quiet, into_existing=into_existing))
    typer.echo(f"{s.total} images: {s.predicted} predicted, {s.skipped} already done, "
               f"{s.errors} unreadable")
    if s.unlocated:
        from racam.deploy.gallery import UNLOCATED_NOTE

        typer.echo(f"{s.unlocated} image(s) {UNLOCATED_NOTE}; dashed in the gallery")
    typer.echo(f"table: {s.csv}")
    typer.echo(f"gallery: {s.gallery}")


def export(run_dir: Path = RunArg,
           out: Path = typer.Option(..., "--out", help="Bundle folder for classifier.onnx, "
                                    "segmentation.onnx and bundle.json."),
           fold: int = FoldOpt,
           int8: bool = typer.Option(False, "--int8", help="INT8 networks instead (onnxruntime "
                                     "static quantisation calibrated on the run's training "
                                     "images; faster on CPUs, bundle.json records their "
                                     "agreement with fp32). Needs the run's images.")) -> None:
    """Write the run's classifier and segmentation network as a self-describing ONNX bundle
    (the run's input size, any batch; bundle.json: input size, channels, normalisation,
    thresholds, mask rule, the run it came from) for racam predict BUNDLE, racam predict RUN
    --onnx BUNDLE or any ONNX runtime."""
    from racam.deploy.export import export_run

    meta = export_run(run_dir, out, fold, int8=int8)
    for model in meta.models.values():
        typer.echo(f"{out / model.file}: dynamic {', '.join(model.dynamic_axes)}")
    typer.echo(f"{out / 'bundle.json'}: {meta.channels} channel(s), {meta.size[0]}x"
               f"{meta.size[1]}, from {meta.source.run} fold {meta.source.fold}")
    if meta.int8 is not None:
        q = meta.int8
        typer.echo(f"INT8: calibrated on {q.calibration_images} training images; against fp32 "
                   f"on {q.agreement_images} others: {100 * q.mask_agreement:.3f} % of mask "
                   f"pixels, {100 * q.decision_agreement:.1f} % of decisions agree")
        from racam.deploy.quantize import agreement_warning

        note = agreement_warning(q.mask_agreement, q.decision_agreement)
        if note:
            typer.secho(f"warning: {note}", err=True, fg=typer.colors.YELLOW)


def register(app: typer.Typer) -> None:
    """Add ``predict`` and ``export``."""
    app.command("predict")(predict)
    app.command("export")(export)
