"""Heat maps for a folder of images, written as files (the ``racam cam`` command).

Output folder layout::

    maps/<stem>.npy        float32 (H, W) in [0, 1]             (--format npy)
    maps/<stem>.png        16-bit grayscale, round(map * 65535)  (--format png16)
    overlays/<stem>.png    the image with the map in a matplotlib colormap on top
    manifest.json          method, delta, fusion, layers, model, target, size, files,
                           not_read (sub-folders of --images, which are not searched)

Maps and overlays are at the network's input size (``size``; the image's own size when no size
is given and the checkpoint does not record one).

Every argument, the device and each image's size against the network are checked before any file
is written. Maps and overlays are written into ``<out>/.racam-cam.partial`` and moved into place
at the end, the old ``manifest.json`` removed first and the new one written last, so a run that
fails part-way leaves the previous results untouched and no manifest describes maps it did not
write.
"""

from __future__ import annotations

import io
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor, nn

from racam.errors import ConfigError, DataError

FORMATS = ("npy", "png16")
MASK_SUFFIXES = ("_label", "_GT")


@dataclass
class CamJob:
    """Arguments of :func:`run_cam_job` (see ``racam cam --help``)."""

    images: Path
    out: Path
    checkpoint: Path | None = None
    model: str | None = None
    width: int = 4
    in_channels: int = 1
    weights: str | None = None
    method: str = "racam"
    delta: float = 50.0
    fusion: str = "max"
    weighting: str = "element"
    fgbp_head: str = "sample"
    layers: list[str] | None = None
    target: str | int | None = 1
    size: tuple[int, int] | None = None
    fmt: str = "npy"
    colormap: str = "jet"
    alpha: float = 0.5
    batch_size: int = 4
    device: str = "auto"


def list_images(folder: Path) -> tuple[list[Path], list[str]]:
    """Image files of ``folder`` (sorted; its sub-folders are not searched), skipping
    KolektorSDD / KSDD2 mask files, and notes on what was not read (sub-folders). An image file
    that cannot be read (or a broken link) is a :class:`DataError` naming it, before any map
    is computed (:func:`racam.data.listing.list_images`)."""
    from racam.data.listing import list_images as listing

    found = listing(folder, skip_stems=MASK_SUFFIXES)
    bad = [s for s in found.skipped if not s.path.is_dir()]
    if bad:
        tail = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        raise DataError(f"{bad[0]}{tail}; fix or remove it (racam cam reads every image file "
                        "of the folder)")
    return found.require_images(), [str(s) for s in found.skipped]


PARTIAL = ".racam-cam.partial"


def _device(name: str) -> torch.device:
    """``auto`` -> cuda when available, else cpu; a CUDA device without CUDA is a ConfigError."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except (RuntimeError, ValueError):
        raise ConfigError(f"--device: unknown device {name!r}; use auto, cpu, cuda or "
                          "cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"--device: device {name!r} requested but CUDA is not available")
    return dev


def check_sizes(model: nn.Module, channels: int, files: list[Path],
                size: tuple[int, int] | None) -> None:
    """:class:`DataError` naming the first image too small for ``model`` (at ``size``, or at its
    own size when ``size`` is None); :class:`ConfigError` when ``size`` itself is."""
    from racam.data.io import image_size
    from racam.models.input_size import input_problem

    if size is not None:
        if min(size) < 1:
            raise ConfigError(f"--size: width and height must be >= 1, got {size[0]} {size[1]}")
        problem = input_problem(model, channels, size)
        if problem:
            raise ConfigError(f"--size {size[0]} {size[1]}: too small for the network "
                              f"({problem})")
        return
    sizes = {p: image_size(p) for p in files}
    corner = (min(w for w, _ in sizes.values()), min(h for _, h in sizes.values()))
    if input_problem(model, channels, corner) is None:  # the smallest width and height fit
        return
    for (w, h) in sorted(set(sizes.values()), key=lambda s: (s[0] * s[1], s)):
        problem = input_problem(model, channels, (w, h))
        if problem:
            bad = next(p for p, s in sizes.items() if s == (w, h))
            raise DataError(f"{bad}: image is {w}x{h} (width x height), too small for the "
                            f"network ({problem}); give --size W H to resize every image")


def load_job_model(job: CamJob, device: torch.device) -> tuple[nn.Module, dict[str, Any]]:
    """The classifier of a job: from ``checkpoint`` or built from ``model`` (+ ``weights``)."""
    if (job.checkpoint is None) == (job.model is None):
        raise ConfigError("give exactly one of --checkpoint and --model")
    if job.checkpoint is not None:
        from racam.checkpoint import load_classifier

        model, meta = load_classifier(job.checkpoint, map_location=device)
        return model, dict(meta)
    from racam.models.registry import build_classifier

    assert job.model is not None  # exactly one of checkpoint / model, checked above
    model = build_classifier(job.model, in_channels=job.in_channels, width=job.width,
                             weights=job.weights)
    return model.to(device).eval(), {"backbone": job.model, "in_channels": job.in_channels}


def save_map(path: Path, m: Tensor, fmt: str) -> Path:
    """Write one (H, W) map in [0, 1] as ``.npy`` (float32) or 16-bit PNG; returns the path."""
    from racam.io import atomic_write_bytes

    arr = m.detach().float().cpu().numpy()
    buf = io.BytesIO()
    if fmt == "npy":
        path = path.with_suffix(".npy")
        np.save(buf, arr.astype(np.float32))
    else:
        path = path.with_suffix(".png")
        Image.fromarray(np.round(arr * 65535).astype(np.uint16)).save(buf, format="PNG")
    atomic_write_bytes(path, buf.getvalue())
    return path


def overlay(image: Tensor, m: Tensor, colormap: str = "jet", alpha: float = 0.5) -> np.ndarray:
    """RGB uint8 (H, W, 3): ``(1 - alpha) * image + alpha * colormap(map)``."""
    import matplotlib

    try:
        cmap = matplotlib.colormaps[colormap]
    except KeyError:
        raise ConfigError(f"unknown matplotlib colormap {colormap!r}") from None
    img = image.detach().float().cpu()
    img = img.expand(3, -1, -1) if img.shape[0] == 1 else img[:3]
    heat = cmap(m.detach().float().cpu().clamp(0, 1).numpy())[..., :3]
    mix = (1 - alpha) * img.permute(1, 2, 0).numpy() + alpha * heat
    return np.round(np.clip(mix, 0, 1) * 255).astype(np.uint8)


def _check_job(job: CamJob) -> int | None:
    """:class:`ConfigError` naming the first bad argument of ``job``; returns the target class
    (``None``: each image's top class)."""
    if job.fmt not in FORMATS:
        raise ConfigError(f"--format must be one of {FORMATS}, got {job.fmt!r}")
    if job.batch_size < 1:
        raise ConfigError(f"--batch-size must be >= 1, got {job.batch_size}")
    target: int | None
    if job.target in (None, "argmax"):
        target = None
    else:
        try:
            target = int(job.target)
        except ValueError:
            raise ConfigError(f"--target must be a class index or 'argmax', got "
                              f"{job.target!r}") from None
    if job.size is not None and min(job.size) < 1:
        raise ConfigError(f"--size: width and height must be >= 1, got {job.size[0]} "
                          f"{job.size[1]}")
    if job.out.exists() and not job.out.is_dir():
        raise ConfigError(f"--out {job.out}: exists and is not a folder")
    return target


def check_owned(out: Path) -> None:
    """:class:`DataError` naming the first file under ``out/maps`` or ``out/overlays`` that an
    earlier ``racam cam`` did not write (its ``manifest.json`` lists what it wrote): those
    folders are replaced, so anything else in them would be lost."""
    subs = [out / s for s in ("maps", "overlays") if (out / s).exists()]
    if not subs:
        return
    owned: set[str] = set()
    try:
        manifest = json.loads((out / "manifest.json").read_text())
        owned = {str(r[k]) for r in manifest["images"] for k in ("map", "overlay")}
    except (OSError, ValueError, KeyError, TypeError):
        pass
    for sub in subs:
        if not sub.is_dir():
            raise DataError(f"{sub}: exists and was not written by racam cam; not replaced "
                            "(give another --out)")
        for f in sorted(sub.rglob("*")):
            if not f.is_dir() and str(f) not in owned:
                raise DataError(f"{f}: exists and was not written by racam cam; not replaced "
                                "(give another --out)")


def _job_size(job: CamJob, meta: dict[str, Any]) -> tuple[int, int] | None:
    """``--size``, else the input size the checkpoint records (``None``: each image's own)."""
    if job.size is None and meta.get("input_shape"):
        c, h, w = meta["input_shape"]
        return (int(w), int(h))
    return job.size


@dataclass
class _MapWriter:
    """Computes the maps of batches of images and writes them (and overlays) into ``work``."""

    job: CamJob
    cam: Callable[..., Tensor]
    target: int | None
    device: torch.device
    work: Path
    records: list[dict[str, str]]

    def flush(self, batch: list[tuple[Path, Tensor]]) -> None:
        from racam.io import atomic_write_bytes

        x = torch.stack([t for _, t in batch]).to(self.device)
        maps = self.cam(x, self.target)
        for (path, img), m in zip(batch, maps):
            map_path = save_map(self.work / "maps" / path.stem, m, self.job.fmt)
            buf = io.BytesIO()
            Image.fromarray(overlay(img, m, self.job.colormap, self.job.alpha)).save(
                buf, format="PNG")
            ov = atomic_write_bytes(self.work / "overlays" / f"{path.stem}.png", buf.getvalue())
            self.records.append({"image": str(path), "map": f"maps/{map_path.name}",
                                 "overlay": f"overlays/{ov.name}"})

    def write_all(self, files: list[Path], channels: int, size: tuple[int, int] | None) -> None:
        """Every image of ``files``, in batches of ``job.batch_size`` images of one size."""
        from racam.data.io import read_image_tensor

        batch: list[tuple[Path, Tensor]] = []
        for path in files:
            t = read_image_tensor(path, channels, size)
            if batch and (len(batch) == self.job.batch_size or batch[0][1].shape != t.shape):
                self.flush(batch)
                batch = []
            batch.append((path, t))
        self.flush(batch)


def _publish(out: Path, work: Path, records: list[dict[str, str]]) -> None:
    """Move the maps and overlays of ``work`` into ``out`` (the old manifest removed first) and
    make the records' paths point there."""
    (out / "manifest.json").unlink(missing_ok=True)
    for sub in ("maps", "overlays"):
        if (out / sub).exists():
            shutil.rmtree(out / sub)
        (work / sub).rename(out / sub)
    work.rmdir()
    for r in records:
        r["map"], r["overlay"] = str(out / r["map"]), str(out / r["overlay"])


def run_cam_job(job: CamJob, warn: Callable[[str], Any] | None = None) -> int:
    """Compute and write the maps of every image of ``job.images``; returns how many. What the
    folder holds and is not read (sub-folders) goes to ``warn`` and the manifest's
    ``not_read``."""
    from racam.cam.registry import build_cam, cam_options
    from racam.io import atomic_write_json

    target = _check_job(job)
    check_owned(job.out)
    files, not_read = list_images(job.images)
    for note in not_read:
        if warn is not None:
            warn(note)
    device = _device(job.device)
    model, meta = load_job_model(job, device)
    channels = int(meta.get("in_channels", job.in_channels))
    size = _job_size(job, meta)
    kw = cam_options(job.method, delta=job.delta, fusion=job.fusion, weighting=job.weighting,
                     fgbp_head=job.fgbp_head)
    cam = build_cam(job.method, model, target_layers=job.layers, **kw)
    check_sizes(model, channels, files, size)
    work = job.out / PARTIAL
    if work.exists():
        shutil.rmtree(work)
    (work / "maps").mkdir(parents=True)
    (work / "overlays").mkdir(parents=True)
    records: list[dict[str, str]] = []
    try:
        _MapWriter(job, cam, target, device, work, records).write_all(files, channels, size)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    _publish(job.out, work, records)
    atomic_write_json(job.out / "manifest.json", {
        "method": job.method, "delta": kw.get("delta"), "fusion": kw.get("fusion"),
        "weighting": kw.get("weighting"), "fgbp_head": kw.get("fgbp_head"),
        "layers": cam.target_layer_names, "checkpoint": str(job.checkpoint) if job.checkpoint
        else None, "model": meta.get("backbone"), "target": "argmax" if target is None
        else target, "size": list(size) if size else None, "format": job.fmt,
        "images": records, "not_read": not_read})
    return len(records)
