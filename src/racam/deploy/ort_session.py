"""The onnxruntime sessions of ``racam predict``: one place that sets their options.

Measured on a 2-core CPU (docs/results.md, "Deployment speed"): onnxruntime's defaults use a
thread per physical core, spinning between operators, whatever the torch side uses; with the
same thread count as torch (``torch.get_num_threads()``, i.e. ``OMP_NUM_THREADS``), all graph
optimisations (``ORT_ENABLE_ALL``: constant folding, Conv + BatchNorm + activation fusion,
layout transforms) and sequential execution, onnxruntime is the faster backend.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from racam.errors import CheckpointError

__all__ = ["SessionSettings", "onnx_session", "session_options"]


@dataclass(frozen=True)
class SessionSettings:
    """What :func:`session_options` sets. ``intra_op_threads``: threads inside an operator
    (``None``: torch's count); ``inter_op_threads``: 1 (sequential execution runs one operator
    at a time); ``spinning``: worker threads busy-wait between operators (faster on an idle
    machine, burns a shared one's cores: off unless asked)."""

    intra_op_threads: int | None = None
    inter_op_threads: int = 1
    graph_optimization: str = "all"
    execution_mode: str = "sequential"
    spinning: bool = False

    def threads(self) -> int:
        return int(self.intra_op_threads or torch.get_num_threads())


def session_options(settings: SessionSettings | None = None) -> Any:
    """An ``onnxruntime.SessionOptions`` of ``settings`` (defaults: :class:`SessionSettings`)."""
    import onnxruntime as ort

    s = settings or SessionSettings()
    levels = {"none": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
              "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
              "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
              "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}
    modes = {"sequential": ort.ExecutionMode.ORT_SEQUENTIAL,
             "parallel": ort.ExecutionMode.ORT_PARALLEL}
    opts = ort.SessionOptions()
    opts.graph_optimization_level = levels[s.graph_optimization]
    opts.execution_mode = modes[s.execution_mode]
    opts.intra_op_num_threads = s.threads()
    opts.inter_op_num_threads = s.inter_op_threads
    spin = "1" if s.spinning else "0"
    opts.add_session_config_entry("session.intra_op.allow_spinning", spin)
    opts.add_session_config_entry("session.inter_op.allow_spinning", spin)
    return opts


def onnx_session(path: Path, device: torch.device | str = "cpu",
                 settings: SessionSettings | None = None) -> Any:
    """An onnxruntime ``InferenceSession`` of ``path`` with :func:`session_options` (CUDA
    provider when ``device`` is CUDA and the installed onnxruntime has it, else the CPU)."""
    import onnxruntime as ort

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: ONNX file missing (write it with racam export)")
    providers = ["CPUExecutionProvider"]
    if torch.device(device).type == "cuda" and \
            "CUDAExecutionProvider" in ort.get_available_providers():
        providers.insert(0, "CUDAExecutionProvider")
    try:
        return ort.InferenceSession(str(path), sess_options=session_options(settings),
                                    providers=providers)
    except Exception as exc:  # onnxruntime raises its own exception types
        raise CheckpointError(f"{path}: cannot load ONNX model ({exc})") from None
