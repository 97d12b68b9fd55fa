"""``racam export``: a run's classifier and segmentation network as an ONNX bundle.

Written with ``torch.onnx.export`` (the ``torch.export``-based exporter, opset 18) with a
dynamic batch size and the height and width fixed at the run's input size: traced at one size,
the "same" padding of TF-ported encoders (EfficientNet-Lite) becomes constant and BatchNorm folds
into its convolution, which made onnxruntime 9 % faster in fp32 and 18 % in INT8 on ksdd-cpu's
UNet (docs/results.md); predictions feed that size anyway, and tile larger images. The input is
``image`` ``(B, C, H, W)`` in [0, 1] at the run's input size (the size predictions use), the
outputs ``logits`` (classifier ``(B, 2)``, segmentation ``(B, 2, H, W)``). ``bundle.json``
(:class:`racam.deploy.bundle.BundleMeta`) records what the networks expect and how a mask is
made, the racam version, the run, fold and digests they came from, each file's SHA-256 and
which axes are dynamic, and the run's scale (:func:`racam.deploy.run_dir.training_scale`).
With ``int8=True`` the bundle holds INT8 networks instead (``classifier.int8.onnx``,
``segmentation.int8.onnx``; :mod:`racam.deploy.quantize`), calibrated on the run's training
images, with their agreement with the fp32 networks in ``bundle.json`` (``int8``). Each file
is written to a temporary name and renamed, so a file that exists is complete;
``bundle.json`` is written last.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from racam.deploy.bundle import (
    BUNDLE_JSON,
    CLASSIFIER_ONNX,
    SEGMENTATION_ONNX,
    BundleMeta,
    Int8Record,
    ModelFile,
    is_bundle,
    meta_from_run,
)
from racam.deploy.run_dir import file_sha256
from racam.errors import CheckpointError, DataError
from racam.io import atomic_write_json, file_mode

__all__ = ["OPSET", "export_module", "export_run"]

OPSET = 18


def _try_export(model: nn.Module, example: torch.Tensor, path: Path,
                dims: dict[int, Any]) -> None:
    torch.onnx.export(model, (example,), str(path), input_names=["image"],
                      output_names=["logits"], dynamo=True, opset_version=OPSET,
                      dynamic_shapes=(dims,), verbose=False, external_data=False)


def export_module(model: nn.Module, example: torch.Tensor, path: Path) -> list[str]:
    """Write ``model`` to ``path`` as ONNX at ``example``'s height and width with a dynamic
    batch size; returns the dynamic axes (``["batch"]``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".onnx")
    os.close(fd)
    tmp = Path(name)
    try:
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # the exporter's progress lines
                _try_export(model, example, tmp, {0: torch.export.Dim("batch")})
        except Exception as exc:  # the exporter raises many kinds; one line
            raise CheckpointError(f"{path}: ONNX export failed ({type(exc).__name__}: "
                                  f"{str(exc)[:300]})") from None
        tmp.chmod(file_mode())  # mkstemp makes 0600; follow the umask
        os.replace(tmp, path)
        return ["batch"]
    finally:
        tmp.unlink(missing_ok=True)


def _check_out(out: Path) -> None:
    """Refuse, before writing, a folder where a file of a bundle's names exists that no racam
    export wrote (no ``bundle.json`` / ``export.json`` beside it): it is never replaced."""
    if out.exists() and not out.is_dir():
        raise DataError(f"{out}: --out is a file, not a folder")
    if is_bundle(out):
        return
    from racam.deploy.quantize import int8_name

    for name in (CLASSIFIER_ONNX, SEGMENTATION_ONNX, int8_name(CLASSIFIER_ONNX),
                 int8_name(SEGMENTATION_ONNX), BUNDLE_JSON):
        if (out / name).exists() or (out / name).is_symlink():
            raise DataError(f"{out / name}: exists and was not written by racam export; not "
                            "replaced (give another --out)")


def export_run(run_dir: Path, out: Path, fold: int | None = None,
               int8: bool = False) -> BundleMeta:
    """Export the run's classifier and segmentation network to the bundle folder ``out``
    (module docstring); returns what ``bundle.json`` holds. Each ONNX file's SHA-256 is
    recorded, so a file swapped in later is refused by ``racam predict``."""
    from racam.checkpoint import load_classifier
    from racam.deploy.run_dir import open_run, run_digests, training_scale
    from racam.segmentation import load_segmentation

    run = open_run(Path(run_dir), fold)
    out = Path(out)
    _check_out(out)
    digests = run_digests(run)
    width, height = run.size
    example = torch.rand(2, run.channels, height, width, generator=torch.Generator().manual_seed(0))
    clf, _ = load_classifier(run.classifier_path)
    seg, _ = load_segmentation(run.segmentation_path)
    models: dict[str, ModelFile] = {}
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out, prefix=".export-") as tmp:
        where = Path(tmp) if int8 else out
        for part, model, name, ckpt in (("classifier", clf, CLASSIFIER_ONNX, run.classifier_path),
                                        ("segmentation", seg, SEGMENTATION_ONNX,
                                         run.segmentation_path)):
            axes = export_module(model, example, where / name)
            models[part] = ModelFile(name, "onnx", file_sha256(where / name), axes,
                                     ckpt.relative_to(run.root).as_posix())
        record = _quantize(run, models, Path(tmp), out) if int8 else None
    meta = meta_from_run(run, digests, models, OPSET, training_scale(run), record)
    atomic_write_json(out / BUNDLE_JSON, meta.to_dict())
    _drop_other_variant(out, int8)
    return meta


def _quantize(run, models: dict[str, ModelFile], fp32_dir: Path, out: Path) -> Int8Record:
    """Quantise the fp32 files in ``fp32_dir`` into ``out`` (``models`` then name the INT8
    files) and measure their agreement with fp32 (:mod:`racam.deploy.quantize`)."""
    from dataclasses import replace

    from racam.deploy.ort_session import onnx_session
    from racam.deploy.quantize import (
        METHOD,
        decision_agreement,
        int8_name,
        mask_agreement,
        quantize_model,
        training_images,
    )

    calib, agree, source = training_images(run)
    sessions = {}
    for part, model in list(models.items()):
        name = int8_name(model.file)
        quantize_model(fp32_dir / model.file, out / name, calib)
        sessions[part] = (onnx_session(fp32_dir / model.file), onnx_session(out / name))
        models[part] = replace(model, file=name, sha256=file_sha256(out / name),
                               precision="int8")
    masks = mask_agreement(*sessions["segmentation"], agree)
    decisions = decision_agreement(*sessions["classifier"], agree, run.threshold)
    return Int8Record([m.file for m in models.values()], METHOD, len(calib), source,
                      len(agree), round(masks, 6), round(decisions, 6))


def _drop_other_variant(out: Path, int8: bool) -> None:
    """Remove the ONNX files of the other precision an earlier export wrote here, so a
    bundle folder holds only the files its ``bundle.json`` lists."""
    from racam.deploy.quantize import int8_name

    names = (CLASSIFIER_ONNX, SEGMENTATION_ONNX)
    for name in (names if int8 else tuple(int8_name(n) for n in names)):
        (out / name).unlink(missing_ok=True)
