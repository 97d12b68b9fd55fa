"""``racam export``: a run's classifier and segmentation network as ONNX files.

Written with ``torch.onnx.export`` (the ``torch.export``-based exporter, opset 18) with a
dynamic batch size and, where the network allows it, dynamic height and width; the input is
``image`` ``(B, C, H, W)`` in [0, 1] at the run's input size (the size predictions use), the
outputs ``logits`` (classifier ``(B, 2)``, segmentation ``(B, 2, H, W)``). ``export.json``
records the run, the input size and channels and which axes are dynamic. Each file is written
to a temporary name and renamed, so a file that exists is complete.
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

from racam.errors import CheckpointError
from racam.io import atomic_write_json
from racam.predict.backends import CLASSIFIER_ONNX, SEGMENTATION_ONNX
from racam.predict.run_dir import open_run

OPSET = 18


def _try_export(model: nn.Module, example: torch.Tensor, path: Path,
                dims: dict[int, Any]) -> None:
    torch.onnx.export(model, (example,), str(path), input_names=["image"],
                      output_names=["logits"], dynamo=True, opset_version=OPSET,
                      dynamic_shapes=(dims,), verbose=False, external_data=False)


def export_module(model: nn.Module, example: torch.Tensor, path: Path) -> list[str]:
    """Write ``model`` to ``path`` as ONNX; returns the dynamic axes (``batch``, ``height``,
    ``width`` when the network allows, else ``batch`` only)."""
    Dim = torch.export.Dim
    attempts = [({0: Dim("batch"), 2: Dim("height"), 3: Dim("width")},
                 ["batch", "height", "width"]),
                ({0: Dim("batch")}, ["batch"])]
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".onnx")
    os.close(fd)
    tmp = Path(name)
    errors = []
    try:
        for dims, axes in attempts:
            try:
                with contextlib.redirect_stdout(io.StringIO()):  # the exporter's progress lines
                    _try_export(model, example, tmp, dims)
            except Exception as exc:  # the exporter raises many kinds; try the next shapes
                errors.append(f"{type(exc).__name__}: {str(exc)[:200]}")
                continue
            tmp.chmod(0o644)
            os.replace(tmp, path)
            return axes
    finally:
        tmp.unlink(missing_ok=True)
    raise CheckpointError(f"{path}: ONNX export failed ({'; '.join(errors)})")


def export_run(run_dir: Path, out: Path, fold: int | None = None) -> dict[str, Any]:
    """Export the run's classifier and segmentation network to ``out`` (module docstring);
    returns what ``export.json`` holds."""
    from racam.checkpoint import load_classifier
    from racam.segmentation import load_segmentation

    run = open_run(Path(run_dir), fold)
    width, height = run.size
    example = torch.rand(2, run.channels, height, width, generator=torch.Generator().manual_seed(0))
    clf, _ = load_classifier(run.classifier_path)
    seg, _ = load_segmentation(run.segmentation_path)
    out = Path(out)
    info: dict[str, Any] = {
        "run": str(run.root.resolve()), "fold": run.fold, "size": [width, height],
        "channels": run.channels, "threshold": run.threshold, "opset": OPSET,
        "classifier": {"file": CLASSIFIER_ONNX, "checkpoint": str(run.classifier_path),
                       "dynamic_axes": export_module(clf, example, out / CLASSIFIER_ONNX)},
        "segmentation": {"file": SEGMENTATION_ONNX, "checkpoint": str(run.segmentation_path),
                         "dynamic_axes": export_module(seg, example, out / SEGMENTATION_ONNX)},
    }
    atomic_write_json(out / "export.json", info)
    return info
