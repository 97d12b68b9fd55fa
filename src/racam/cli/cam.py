"""``racam cam``: heat maps of a classifier for a folder of images."""

from __future__ import annotations

from pathlib import Path

import typer

from racam.cli.registry_help import RegistryHelpCommand


def register(app: typer.Typer) -> None:
    """Add this module's commands to the racam app."""
    app.command("cam", cls=RegistryHelpCommand)(cam_command)


def cam_command(
    images: Path = typer.Option(..., "--images", help="Folder of images, any format Pillow reads "
                                "(files named *_label.* or *_GT.* are masks and are skipped; "
                                "sub-folders are not searched)."),
    out: Path = typer.Option(..., "--out", help="Output folder: maps/, overlays/, "
                             "manifest.json."),
    checkpoint: Path | None = typer.Option(None, "--checkpoint",
                                           help="Classifier checkpoint (racam train)."),
    model: str | None = typer.Option(None, "--model", help="Or a backbone with random (or "
                                     "--weights) weights: {backbones}."),
    width: int = typer.Option(4, "--width", help="Channel divisor of vgg16_narrow."),
    in_channels: int = typer.Option(1, "--in-channels", help="1 (grayscale) or 3 (RGB), with "
                                    "--model."),
    weights: str | None = typer.Option(None, "--weights", help="With --model: 'imagenet' "
                                       "or a local state-dict file."),
    method: str = typer.Option("racam", "--method", help="Heat-map method: {methods}."),
    delta: float = typer.Option(50.0, "--delta", help="Percentile for RA-CAM / FGBP."),
    fusion: str = typer.Option("max", "--fusion", help="Fusion of per-layer maps: max or mean."),
    weighting: str = typer.Option("element", "--weighting", help="RA-CAM's reading of Eq. 7: "
                                  "element (W * A element-wise) or channel (one weight per "
                                  "channel, mean of W)."),
    fgbp_head: str = typer.Option("sample", "--fgbp-head", help="FGBP's map scope in the fully "
                                  "connected head (RA-CAM, +fgbp methods): sample or unit."),
    layers: list[str] | None = typer.Option(None, "--layer", help="Target layer (module "
                                            "path or S1..S5); repeatable. Default: the "
                                            "method's protocol layers."),
    target: str = typer.Option("1", "--target", help="Class index, or 'argmax'."),
    size: tuple[int, int] | None = typer.Option(None, "--size", help="Input size W H "
                                                "(default: the checkpoint's, else each "
                                                "image's own)."),
    fmt: str = typer.Option("npy", "--format", help="Map files: npy (float32) or png16 "
                            "(16-bit PNG, value = round(map * 65535))."),
    colormap: str = typer.Option("jet", "--colormap", help="Matplotlib colormap of overlays."),
    alpha: float = typer.Option(0.5, "--alpha", help="Overlay opacity of the heat map."),
    batch_size: int = typer.Option(4, "--batch-size", help="Images per forward pass."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda, ..."),
) -> None:
    """Write heat maps (.npy or 16-bit PNG) and colour overlays for every image of a folder."""
    from racam.cam.export import CamJob, run_cam_job

    job = CamJob(images=images, out=out, checkpoint=checkpoint, model=model, width=width,
                 in_channels=in_channels, weights=weights, method=method, delta=delta,
                 fusion=fusion, weighting=weighting, fgbp_head=fgbp_head,
                 layers=list(layers) if layers else None, target=target,
                 size=(size[0], size[1]) if size else None, fmt=fmt, colormap=colormap, alpha=alpha,
                 batch_size=batch_size, device=device)
    n = run_cam_job(job, warn=lambda note: typer.secho(f"warning: {note}", err=True,
                                                       fg=typer.colors.YELLOW))
    typer.echo(f"wrote {n} heat maps to {out}")
