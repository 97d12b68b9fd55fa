"""``racam masks export`` and ``racam masks import``: masks to and from labelling tools (COCO,
LabelMe; :mod:`racam.interop`)."""

from __future__ import annotations

from pathlib import Path

import typer

masks_app = typer.Typer(help="Masks to and from labelling tools (COCO, LabelMe).",
                        no_args_is_help=True)

OverwriteOpt = typer.Option(False, "--overwrite", help="Replace existing files racam did not "
                            "write (default: stop with an error and write nothing).")


@masks_app.command("export")
def export(
    mask_dir: Path = typer.Argument(..., help="Masks: racam predict's output folder (or its "
                                    "masks/), a run's pseudo-label folder "
                                    "fold<k>/pseudo/<key>, or any folder of binary masks."),
    images: Path = typer.Option(None, "--images", help="The images' folder (file names in the "
                                "export are relative to it; optional for a pseudo-label "
                                "folder, which lists its images)."),
    out: Path = typer.Option(..., "--out", help="coco: the .json file to write; labelme: the "
                             "folder of <image stem>.json files."),
    fmt: str = typer.Option("coco", "--format", help="coco or labelme."),
    rle: bool = typer.Option(False, "--rle", help="coco: RLE instead of polygons (exact, "
                             "keeps holes; iscrowd 1)."),
    simplify: float = typer.Option(None, "--simplify", help="Polygon tolerance in pixels: "
                                   "fewer vertices to edit, outline moved up to that much "
                                   "(default 0.25: every pixel kept)."),
    overwrite: bool = OverwriteOpt,
) -> None:
    """Write masks as a file a labelling tool opens (COCO or LabelMe).

    One annotation per connected component of each mask; images with an empty mask are listed
    without annotations."""
    from racam.interop import formats
    from racam.interop.masks import collect
    from racam.interop.records import ExportOptions
    from racam.interop.shapes import EXACT_TOLERANCE

    tool = formats.get(fmt)
    masks = collect(mask_dir, images)
    tolerance = EXACT_TOLERANCE if simplify is None else simplify
    s = tool.write(masks, out, ExportOptions(rle=rle, tolerance=tolerance, overwrite=overwrite))
    typer.echo(f"{out}: {s.images} images, {s.instances} instances ({fmt}"
               f"{', RLE' if rle else ''}); image folder {masks.root}")
    if s.holes_filled:
        typer.secho(f"warning: polygons hold no holes: {s.holes_filled} pixels inside outlines "
                    "were filled; --rle keeps them", err=True, fg=typer.colors.YELLOW)


@masks_app.command("import")
def import_(
    source: Path = typer.Argument(..., help="A COCO .json file, a LabelMe .json file or a "
                                  "folder of LabelMe files."),
    out: Path = typer.Option(..., "--out", help="Mask folder to write, e.g. a folder "
                             "dataset's masks/ (<image stem>.png each)."),
    fmt: str = typer.Option(None, "--format", help="coco or labelme (default: from the file)."),
    keep_folders: bool = typer.Option(False, "--keep-folders", help="Write masks at the "
                                      "images' relative paths (racam predict's masks/ layout) "
                                      "instead of by stem."),
    overwrite: bool = OverwriteOpt,
) -> None:
    """Read corrected masks back from a COCO or LabelMe file into a mask folder.

    Every image's shapes (any label) become one 0/255 mask; a mask that did not change is left
    as it is."""
    from racam.interop import formats
    from racam.interop.importer import import_masks

    tool = formats.get(fmt) if fmt is not None else formats.guess(source)
    s = import_masks(tool.read(source), out, keep_folders=keep_folders, overwrite=overwrite)
    typer.echo(f"{out}: {len(s.written)} masks written, {len(s.replaced) + len(s.foreign)} "
               f"replaced ({len(s.foreign)} not written by racam), {len(s.unchanged)} unchanged")


def register(app: typer.Typer) -> None:
    """Add the ``masks`` command group."""
    app.add_typer(masks_app, name="masks")
