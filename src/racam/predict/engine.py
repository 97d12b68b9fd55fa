"""``racam predict``: a trained run applied to every image of a folder.

For each image (recursive; any size; grayscale, RGB, RGBA, palette or 16-bit, read by
:func:`racam.data.io.read_image` and converted to the run's channel count): the classifier's
defect probability, a mask at the image's original size (segmentation network, or the run's
heat map + Otsu with ``source="cam"``), an overlay and a journal line
(:mod:`racam.predict.outputs`). ``predictions.csv`` and ``index.html`` are written last and
atomically. A file that cannot be read gets a row with its error; the others go on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image
from torch import Tensor

from racam.errors import ConfigError, DataError, RacamError
from racam.predict.backends import (
    CLASSIFIER_ONNX,
    SEGMENTATION_ONNX,
    Backend,
    OnnxBackend,
    TorchBackend,
)
from racam.predict.outputs import (
    CSV_NAME,
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
from racam.predict.run_dir import TrainedRun, open_run

SOURCES = ("seg", "cam")
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


@dataclass(frozen=True)
class PredictSummary:
    """What a call did: images found, predicted now, reused from an earlier call, unreadable."""

    total: int
    predicted: int
    skipped: int
    errors: int
    csv: Path
    gallery: Path


def list_images(folder: Path, exclude: Path | None = None) -> list[Path]:
    """Image files under ``folder`` (recursive, sorted), skipping KolektorSDD-style mask files
    (``*_label.*``, ``*_GT.*``) and anything under ``exclude``."""
    from racam.cam.export import MASK_SUFFIXES
    from racam.data.io import IMAGE_SUFFIXES

    if not folder.is_dir():
        raise DataError(f"{folder}: image folder not found")
    ex = exclude.resolve() if exclude is not None else None
    files = sorted(p for p in folder.rglob("*") if p.is_file()
                   and p.suffix.lower() in IMAGE_SUFFIXES and not p.stem.endswith(MASK_SUFFIXES)
                   and not (ex is not None and p.resolve().is_relative_to(ex)))
    if not files:
        raise DataError(f"{folder}: no image files ({', '.join(IMAGE_SUFFIXES)})")
    return files


def _stat_key(*paths: Path) -> str:
    return ",".join(f"{p.stat().st_size}-{p.stat().st_mtime_ns}" for p in paths)


@dataclass
class _Item:
    rel: Path
    image: Image.Image
    tensor: Tensor
    pred: Prediction


class _Masker:
    """Masks at original size from the segmentation network or the heat map + Otsu."""

    def __init__(self, run: TrainedRun, backend: Backend, source: str, threshold: float,
                 device: torch.device) -> None:
        self.backend, self.source, self.threshold = backend, source, threshold
        self.cam: Callable[..., Tensor] | None = None
        self.device = device
        if source == "cam":
            from racam.run_cam import build_run_cam

            if not isinstance(backend, TorchBackend):
                raise ConfigError("--source cam needs the torch classifier (heat maps use its "
                                  "gradients); drop --onnx")
            self.cam = build_run_cam(run.cfg, backend.classifier, run.cfg.cam.method)

    def __call__(self, x: Tensor, sizes: list[tuple[int, int]]
                 ) -> tuple[Tensor, Iterator[Tensor]]:
        from racam.pseudo.heatmaps import to_original_size
        from racam.pseudo.otsu import otsu_threshold

        probs = self.backend.classify(x).softmax(1)[:, 1]
        if self.cam is None:
            seg = self.backend.segment(x).softmax(1)[:, 1]
            masks = (to_original_size(p[None], s)[0] > 0.5 for p, s in zip(seg, sizes))
        else:
            heat = self.cam(x.to(self.device), targets=1).detach().float().cpu()

            def cut(h: Tensor, size: tuple[int, int], prob: float) -> Tensor:
                big = to_original_size(h[None], size)
                mask = big[0] > otsu_threshold(big)[0]
                return mask if prob >= self.threshold else torch.zeros_like(mask)

            masks = (cut(h, s, float(p)) for h, s, p in zip(heat, sizes, probs))
        return probs, masks


def _settings(run: TrainedRun, opts: PredictOptions, backend: Backend, threshold: float) -> str:
    if opts.onnx is not None:
        models = _stat_key(opts.onnx / CLASSIFIER_ONNX, opts.onnx / SEGMENTATION_ONNX)
    else:
        models = _stat_key(run.classifier_path, run.segmentation_path)
    extra = f"|thr={threshold:g}" if opts.source == "cam" else ""
    return f"{backend.name}|{opts.source}|{models}{extra}"


def predict_folder(run_dir: Path, opts: PredictOptions) -> PredictSummary:
    """Predict every image of ``opts.images`` with the run in ``run_dir`` (module docstring)."""
    from racam.data.io import image_to_tensor, read_image
    from racam.training import resolve_device

    if opts.source not in SOURCES:
        raise ConfigError(f"--source must be one of {', '.join(SOURCES)}, got {opts.source!r}")
    if opts.batch_size < 1:
        raise ConfigError(f"--batch-size must be >= 1, got {opts.batch_size}")
    if opts.threshold is not None and not 0.0 <= opts.threshold <= 1.0:
        raise ConfigError(f"--threshold must be in [0, 1], got {opts.threshold}")
    run = open_run(Path(run_dir), opts.fold)
    threshold = run.threshold if opts.threshold is None else float(opts.threshold)
    images_dir, out = Path(opts.images), Path(opts.out)
    files = list_images(images_dir, exclude=out)
    device = resolve_device(opts.device)
    backend: Backend = (OnnxBackend(opts.onnx, device) if opts.onnx is not None
                        else TorchBackend(run, device))
    masker = _Masker(run, backend, opts.source, threshold, device)
    settings = _settings(run, opts, backend, threshold)
    out.mkdir(parents=True, exist_ok=True)
    for stale in (out / CSV_NAME, out / GALLERY):  # rewritten at the end; never left stale
        stale.unlink(missing_ok=True)
    journal = Journal(out)
    earlier = journal.read()
    results: dict[str, Prediction] = {}
    todo: list[tuple[Path, Path, str]] = []
    owners: dict[Path, str] = {}
    for path in files:
        rel = path.relative_to(images_dir)
        name = rel.as_posix()
        mask_rel = mask_relpath(rel)
        if mask_rel in owners:
            results[name] = Prediction(name, error=f"{path}: its mask {mask_rel} would overwrite "
                                       f"the mask of {owners[mask_rel]}; rename one of them")
            continue
        owners[mask_rel] = name
        key = file_key(path, settings)
        old = earlier.get(name)
        if (old is not None and old.key == key and not old.error
                and (out / old.mask).is_file() and (out / old.overlay).is_file()):
            results[name] = old
        else:
            todo.append((path, rel, key))
    skipped = len(results) - sum(bool(p.error) for p in results.values())

    bar = None
    if opts.progress:
        from tqdm import tqdm

        bar = tqdm(total=len(todo), desc="predict", unit="img")

    def flush(batch: list[_Item]) -> None:
        x = torch.stack([it.tensor for it in batch])
        probs, masks = masker(x, [it.image.size for it in batch])
        for it, prob, mask in zip(batch, probs, masks):
            m = mask.numpy()
            p = it.pred
            p.probability, p.defect_pixels = float(prob), int(m.sum())
            p.boxes = boxes_of(m)
            write_mask(out / p.mask, m)
            write_overlay(out / p.overlay, it.image, m, p.boxes)
            journal.append(p)
            if bar is not None:
                bar.update(1)

    batch: list[_Item] = []
    for path, rel, key in todo:
        name = rel.as_posix()
        try:
            img = read_image(path, run.channels)
            tensor = image_to_tensor(img, run.size)
        except (RacamError, OSError, ValueError) as exc:
            msg = str(exc) if str(path) in str(exc) else f"{path}: cannot read image ({exc})"
            results[name] = Prediction(name, key=key, error=msg)
            if bar is not None:
                bar.update(1)
            continue
        pred = Prediction(name, key=key, width=img.size[0], height=img.size[1],
                          mask=mask_relpath(rel).as_posix(),
                          overlay=overlay_relpath(rel).as_posix())
        results[name] = pred
        batch.append(_Item(rel, img, tensor, pred))
        if len(batch) == opts.batch_size:
            flush(batch)
            batch = []
    if batch:
        flush(batch)
    if bar is not None:
        bar.close()

    from racam.predict.gallery import write_gallery

    ordered = [results[n] for n in sorted(results)]
    journal.rewrite(ordered)
    csv_path = write_csv(out / CSV_NAME, ordered, threshold)
    title = f"racam predict: {images_dir} with {run.root} ({opts.source}, {backend.name})"
    gallery = write_gallery(out / GALLERY, ordered, threshold=threshold, title=title)
    errors = sum(bool(p.error) for p in ordered)
    return PredictSummary(len(ordered), len(ordered) - skipped - errors, skipped, errors,
                          csv_path, gallery)
