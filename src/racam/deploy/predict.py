"""``racam predict``: a trained run or an export bundle applied to every image of a folder.

For each image (recursive, :func:`racam.deploy.images.list_images`; any size; grayscale, RGB,
RGBA, palette or 16-bit, read by :func:`racam.data.io.read_image` and converted to the
networks' channel count): the classifier's defect probability, a mask at the image's original
size (segmentation network, or the run's heat map + Otsu with ``source="cam"``; an image far
larger than the network input is segmented in tiles at the run's scale,
:mod:`racam.deploy.tiles`, with memory bounded by the image itself), an overlay and
a journal line (:mod:`racam.deploy.outputs`), all through one
:class:`~racam.deploy.inference.Inferencer`. ``predictions.csv`` and ``index.html`` are written
last and atomically. A file that cannot be read gets a row with its error; the others go on.

Predict writes only into a folder it owns (:mod:`racam.deploy.output_dir`): every refusal
(options, run or bundle, output folder, a file it did not write) comes before the first write.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from racam.deploy.images import list_images
from racam.deploy.inference import SOURCES, Inferencer
from racam.deploy.output_dir import OutputDir, open_output
from racam.deploy.outputs import (
    CSV_NAME,
    JOURNAL,
    Journal,
    Prediction,
    boxes_of,
    file_key,
    mask_relpath,
    overlay_relpath,
    write_csv,
    write_mask,
    write_overlay,
)
from racam.errors import ConfigError, RacamError

__all__ = ["GALLERY", "PredictOptions", "PredictSummary", "predict_folder"]

GALLERY = "index.html"


@dataclass
class PredictOptions:
    """Options of :func:`predict_folder` (see ``racam predict --help``)."""

    images: Path
    out: Path
    source: str = "seg"
    threshold: float | None = None
    batch_size: int = 4
    device: str = "auto"
    onnx: Path | None = None
    fold: int | None = None
    progress: bool = True
    into_existing: bool = False


@dataclass(frozen=True)
class PredictSummary:
    """What a call did: images found, predicted now, reused from an earlier call, unreadable;
    ``unlocated``: images called defective whose mask is empty (:meth:`Prediction.unlocated`)."""

    total: int
    predicted: int
    skipped: int
    errors: int
    csv: Path
    gallery: Path
    unlocated: int = 0


@dataclass
class _Plan:
    """Results reused from the journal or known now (errors), the images to predict
    ``(path, relative path, key)`` and every file the call will write."""

    results: dict[str, Prediction] = field(default_factory=dict)
    todo: list[tuple[Path, Path, str]] = field(default_factory=list)
    writes: set[str] = field(default_factory=lambda: {CSV_NAME, GALLERY, JOURNAL})


@dataclass
class _Item:
    image: Image.Image
    tensor: Tensor
    pred: Prediction


def _check_options(opts: PredictOptions) -> None:
    if opts.source not in SOURCES:
        raise ConfigError(f"--source must be one of {', '.join(SOURCES)}, got {opts.source!r}")
    if opts.batch_size < 1:
        raise ConfigError(f"--batch-size must be >= 1, got {opts.batch_size}")
    if opts.threshold is not None and not 0.0 <= opts.threshold <= 1.0:
        raise ConfigError(f"--threshold must be in [0, 1], got {opts.threshold}")


def _plan(files: list[Path], images_dir: Path, out: OutputDir, settings: str) -> _Plan:
    """What to reuse (an earlier call's result whose files predict wrote), what to predict."""
    earlier = Journal(out.root).read() if out.owns(JOURNAL) else {}
    plan = _Plan()
    owners: dict[Path, str] = {}
    for path in files:
        rel = path.relative_to(images_dir)
        name, mask_rel = rel.as_posix(), mask_relpath(rel)
        if mask_rel in owners:
            plan.results[name] = Prediction(name, error=f"{path}: its mask {mask_rel} would "
                                            f"overwrite the mask of {owners[mask_rel]}; rename "
                                            "one of them")
            continue
        owners[mask_rel] = name
        key = file_key(path, settings)
        old = earlier.get(name)
        if (old is not None and old.key == key and not old.error and out.owns(old.mask)
                and out.owns(old.overlay) and (out.root / old.mask).is_file()
                and (out.root / old.overlay).is_file()):
            plan.results[name] = old
        else:
            plan.todo.append((path, rel, key))
            plan.writes.update((mask_rel.as_posix(), overlay_relpath(rel).as_posix()))
    return plan


def _predict_todo(inf: Inferencer, plan: _Plan, opts: PredictOptions, out: Path,
                  threshold: float) -> None:
    """Predict ``plan.todo`` in batches: masks, overlays, journal lines; results into
    ``plan.results``."""
    journal = Journal(out)
    bar = None
    if opts.progress:
        from tqdm import tqdm

        bar = tqdm(total=len(plan.todo), desc="predict", unit="img")

    def finish(it: _Item, prob: float, m: np.ndarray) -> None:
        p = it.pred
        p.probability, p.defect_pixels = float(prob), int(np.count_nonzero(m))
        p.boxes = boxes_of(m)
        write_mask(out / p.mask, m)
        write_overlay(out / p.overlay, it.image, m, p.boxes)
        journal.append(p)
        if bar is not None:
            bar.update(1)

    def flush(batch: list[_Item]) -> None:
        x = torch.stack([it.tensor for it in batch])
        probs, masks = inf.predict(x, [it.image.size for it in batch], opts.source, threshold)
        for it, prob, mask in zip(batch, probs, masks):
            finish(it, float(prob), mask.numpy())

    batch: list[_Item] = []
    for path, rel, key in plan.todo:
        name = rel.as_posix()
        try:
            img, tensor = inf.prepare(path)
        except (RacamError, OSError, ValueError) as exc:
            msg = str(exc) if str(path) in str(exc) else f"{path}: cannot read image ({exc})"
            plan.results[name] = Prediction(name, key=key, error=msg)
            if bar is not None:
                bar.update(1)
            continue
        pred = Prediction(name, key=key, width=img.size[0], height=img.size[1],
                          mask=mask_relpath(rel).as_posix(),
                          overlay=overlay_relpath(rel).as_posix())
        plan.results[name] = pred
        tiling = inf.tiling(img.size) if opts.source == "seg" else None
        if tiling is not None:  # far larger than the input: in tiles, on its own
            finish(_Item(img, tensor, pred),
                   *inf.predict_large(img, tensor, tiling, threshold=threshold))
            del img, tensor
            continue
        batch.append(_Item(img, tensor, pred))
        if len(batch) == opts.batch_size:
            flush(batch)
            batch = []
    if batch:
        flush(batch)
    if bar is not None:
        bar.close()


def predict_folder(run_dir: Path, opts: PredictOptions) -> PredictSummary:
    """Predict every image of ``opts.images`` with the run or bundle in ``run_dir`` (module
    docstring)."""
    from racam.deploy.gallery import write_gallery

    _check_options(opts)
    inf = Inferencer.open(Path(run_dir), onnx=opts.onnx, fold=opts.fold, device=opts.device)
    rule = inf.mask_rule(opts.source)  # refuses cam without the torch classifier
    threshold = inf.meta.decision_threshold if opts.threshold is None else float(opts.threshold)
    images_dir, out = Path(opts.images), open_output(Path(opts.out), opts.into_existing)
    files = list_images(images_dir, exclude=out.root)
    extra = f"|thr={threshold:g}" if rule.gated else ""  # the decision shapes the masks
    if opts.source == "seg" and rule.threshold != 0.5:  # so does a cut other than p > 0.5
        extra += f"|cut={rule.threshold}"
    plan = _plan(files, images_dir, out, f"{inf.backend}|{opts.source}|{inf.model_key()}{extra}")
    out.check_free(plan.writes)
    reused = len(plan.results) - sum(bool(p.error) for p in plan.results.values())
    out.claim(plan.writes)  # the first write: the marker lists what this call will write
    for stale in (CSV_NAME, GALLERY):  # rewritten at the end; never left stale
        (out.root / stale).unlink(missing_ok=True)
    _predict_todo(inf, plan, opts, out.root, threshold)

    ordered = [plan.results[n] for n in sorted(plan.results)]
    Journal(out.root).rewrite(ordered)
    csv_path = write_csv(out.root / CSV_NAME, ordered, threshold)
    title = f"racam predict: {images_dir} with {inf.origin} ({opts.source}, {inf.backend})"
    gallery = write_gallery(out.root / GALLERY, ordered, threshold=threshold, title=title)
    out.settle()
    errors = sum(bool(p.error) for p in ordered)
    return PredictSummary(len(ordered), len(ordered) - reused - errors, reused, errors,
                          csv_path, gallery, sum(p.unlocated(threshold) for p in ordered))
