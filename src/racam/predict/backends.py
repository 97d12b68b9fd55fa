"""The networks ``racam predict`` runs: torch checkpoints or exported ONNX files.

Both backends take a float batch ``(B, C, H, W)`` in [0, 1] on the CPU and return CPU tensors:
classifier logits ``(B, 2)`` and segmentation logits ``(B, 2, H, W)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from torch import Tensor, nn

from racam.errors import CheckpointError, ConfigError
from racam.predict.run_dir import TrainedRun

#: File names written by ``racam export`` and read by ``racam predict --onnx``.
CLASSIFIER_ONNX = "classifier.onnx"
SEGMENTATION_ONNX = "segmentation.onnx"


class Backend(Protocol):
    """What the prediction engine calls."""

    name: str

    def classify(self, images: Tensor) -> Tensor: ...

    def segment(self, images: Tensor) -> Tensor: ...


class TorchBackend:
    """The run's checkpoints in torch on ``device``."""

    name = "torch"

    def __init__(self, run: TrainedRun, device: torch.device) -> None:
        from racam.checkpoint import load_classifier
        from racam.segmentation import load_segmentation

        self.device = device
        self.classifier: nn.Module = load_classifier(run.classifier_path, map_location=device)[0]
        self.segmentation: nn.Module = load_segmentation(run.segmentation_path,
                                                         map_location=device)[0]

    @torch.no_grad()
    def classify(self, images: Tensor) -> Tensor:
        return self.classifier(images.to(self.device)).float().cpu()

    @torch.no_grad()
    def segment(self, images: Tensor) -> Tensor:
        return self.segmentation(images.to(self.device)).float().cpu()


def onnx_session(path: Path, device: torch.device):  # -> onnxruntime.InferenceSession
    """An onnxruntime session of ``path`` (CUDA provider when ``device`` is CUDA and the
    installed onnxruntime has it, else the CPU)."""
    import onnxruntime as ort

    if not path.is_file():
        raise CheckpointError(f"{path}: ONNX file missing (write it with racam export)")
    providers = ["CPUExecutionProvider"]
    if device.type == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
        providers.insert(0, "CUDAExecutionProvider")
    try:
        return ort.InferenceSession(str(path), providers=providers)
    except Exception as exc:  # onnxruntime raises its own exception types
        raise CheckpointError(f"{path}: cannot load ONNX model ({exc})") from None


class OnnxBackend:
    """``classifier.onnx`` and ``segmentation.onnx`` of a ``racam export`` folder."""

    name = "onnxruntime"

    def __init__(self, folder: Path, device: torch.device) -> None:
        if not Path(folder).is_dir():
            raise ConfigError(f"--onnx {folder}: folder not found")
        self._clf = onnx_session(Path(folder) / CLASSIFIER_ONNX, device)
        self._seg = onnx_session(Path(folder) / SEGMENTATION_ONNX, device)

    @staticmethod
    def _run(session, images: Tensor) -> Tensor:
        x = np.ascontiguousarray(images.detach().cpu().numpy(), dtype=np.float32)
        out = session.run(None, {session.get_inputs()[0].name: x})[0]
        return torch.from_numpy(np.asarray(out, dtype=np.float32))

    def classify(self, images: Tensor) -> Tensor:
        return self._run(self._clf, images)

    def segment(self, images: Tensor) -> Tensor:
        return self._run(self._seg, images)
