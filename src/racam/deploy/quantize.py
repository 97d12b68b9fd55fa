"""``racam export --int8``: onnxruntime static INT8 quantisation of a bundle's networks.

Each fp32 ONNX file is pre-processed (onnx shape inference and onnxruntime's graph
optimisation, which folds BatchNorm into the convolutions) and quantised with
``onnxruntime.quantization.quantize_static``: QDQ format, weights int8 per output channel in
7 bits (``reduce_range``), activations uint8, ranges by MinMax over calibration images. The
7 bits are for CPUs without VNNI (AVX2): their uint8 x int8 kernel (``VPMADDUBSW``) adds pairs
of products in 16 bits, which saturate with full 8-bit weights; onnxruntime's documentation
advises ``reduce_range`` there. On an AVX2 CPU, folder-example's EfficientNet-Lite0 networks
without it flipped 12 of 16 classifier decisions and 3.3 % of mask pixels; with it, none and
0.005 % (docs/results.md). An exported file runs on whichever CPU predicts, so it is always on.
The calibration images are :data:`CALIBRATION_IMAGES` of the run's fold's TRAINING images
(evenly spaced over the list, read by the run's own dataset code at the run's input size: the
preprocessing prediction uses). The INT8 networks are then compared with the fp32 ones on other
training images (:data:`AGREEMENT_IMAGES`, never calibration ones): segmentation mask pixels and
classifier decisions that agree, recorded in ``bundle.json``
(:class:`racam.deploy.bundle.Int8Record`).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from torch import Tensor

from racam.deploy.run_dir import TrainedRun, training_dataset
from racam.errors import CheckpointError

__all__ = ["AGREEMENT_IMAGES", "CALIBRATION_IMAGES", "METHOD", "MIN_DECISION_AGREEMENT",
           "MIN_MASK_AGREEMENT", "agreement_warning", "decision_agreement", "int8_name",
           "mask_agreement", "quantize_model", "training_images"]

#: Training images whose activation ranges set the INT8 scales.
CALIBRATION_IMAGES = 32
#: Other training images on which INT8 is compared with fp32 at export.
AGREEMENT_IMAGES = 16
METHOD = ("onnxruntime quantize_static: QDQ, int8 weights per output channel in 7 bits "
          "(reduce_range), uint8 activations, MinMax calibration")
#: Below these agreements with fp32 (measured at export), ``racam export`` warns.
MIN_MASK_AGREEMENT = 0.99
MIN_DECISION_AGREEMENT = 0.9


def int8_name(name: str) -> str:
    """``classifier.onnx`` -> ``classifier.int8.onnx``."""
    return name[:-len(".onnx")] + ".int8.onnx" if name.endswith(".onnx") else name + ".int8"


def training_images(run: TrainedRun) -> tuple[list[Tensor], list[Tensor], str]:
    """``(calibration, agreement, source)``: input tensors ``(C, H, W)`` of the run's fold's
    training images, read with the run's dataset code at its input size, without
    augmentation; disjoint, evenly spaced over the list."""
    d = run.cfg.data
    ds = training_dataset(run)
    n = len(ds)
    if n == 0:
        raise CheckpointError(f"{run.root}: fold {run.fold} has no training images to "
                              "calibrate INT8 with")
    calib = sorted({int(i) for i in np.linspace(0, n - 1, min(n, CALIBRATION_IMAGES))})
    rest = [i for i in range(n) if i not in set(calib)]
    agree = [rest[int(i)] for i in np.linspace(0, len(rest) - 1,
                                               min(len(rest), AGREEMENT_IMAGES))] if rest else []
    source = f"{d.dataset} {d.root or ''} fold {run.fold} train".replace("  ", " ")
    return [ds[i].image for i in calib], [ds[i].image for i in (agree or calib)], source


class _Reader:
    """A ``CalibrationDataReader`` over input tensors, one image per call."""

    def __init__(self, name: str, images: list[Tensor]) -> None:
        self.name, self.images, self.k = name, images, 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self.k >= len(self.images):
            return None
        x = self.images[self.k][None].numpy().astype(np.float32)
        self.k += 1
        return {self.name: x}

    def rewind(self) -> None:
        self.k = 0


def _preprocess(src: Path, dst: Path) -> Path:
    """``quant_pre_process`` (shape inference, graph optimisation) into ``dst``; ``src`` when
    it fails (the quantiser still works, with BatchNorm unfolded)."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    try:
        quant_pre_process(str(src), str(dst), skip_symbolic_shape=True)
        return dst
    except Exception:  # onnx / onnxruntime raise many kinds; quantise the plain file
        return src


def quantize_model(src: Path, dst: Path, images: list[Tensor]) -> None:
    """Write the INT8 (QDQ) model of ``src`` to ``dst``, calibrated on ``images``; ``dst``
    appears complete or not at all."""
    import onnxruntime as ort
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    name = ort.InferenceSession(str(src), providers=["CPUExecutionProvider"]).get_inputs()[0].name
    with tempfile.TemporaryDirectory(dir=dst.parent, prefix=".int8-") as tmp:
        pre = _preprocess(src, Path(tmp) / "pre.onnx")
        out = Path(tmp) / "int8.onnx"
        reader: Any = _Reader(name, images)
        try:
            quantize_static(str(pre), str(out), reader, quant_format=QuantFormat.QDQ,
                            per_channel=True, reduce_range=True,
                            activation_type=QuantType.QUInt8,
                            weight_type=QuantType.QInt8,
                            calibrate_method=CalibrationMethod.MinMax)
        except Exception as exc:  # onnxruntime's own types; one line
            raise CheckpointError(f"{src}: INT8 quantisation failed ({str(exc)[:300]})") from None
        mask = os.umask(0)
        os.umask(mask)
        out.chmod(0o666 & ~mask)
        os.replace(out, dst)


def mask_agreement(fp32: Any, int8: Any, images: list[Tensor], channel: int = 1,
                   threshold: float = 0.5) -> float:
    """Share of pixels where the masks (softmax channel ``channel`` > ``threshold``) of two
    segmentation sessions agree on ``images``."""
    same = total = 0
    for x in images:
        a, b = (_softmax(s.run(None, {s.get_inputs()[0].name: x[None].numpy()})[0])[:, channel]
                for s in (fp32, int8))
        same += int(((a > threshold) == (b > threshold)).sum())
        total += a.size
    return same / max(1, total)


def decision_agreement(fp32: Any, int8: Any, images: list[Tensor], threshold: float) -> float:
    """Share of ``images`` whose classifier decision (defect probability >= ``threshold``)
    is the same with both sessions."""
    same = 0
    for x in images:
        a, b = (_softmax(s.run(None, {s.get_inputs()[0].name: x[None].numpy()})[0])[:, 1]
                for s in (fp32, int8))
        same += int(((a >= threshold) == (b >= threshold)).all())
    return same / max(1, len(images))


def agreement_warning(masks: float, decisions: float) -> str | None:
    """One line when the INT8 networks agree with fp32 on fewer mask pixels or decisions
    than :data:`MIN_MASK_AGREEMENT` / :data:`MIN_DECISION_AGREEMENT`; ``None`` otherwise."""
    low = [f"{100 * got:{fmt}} % of {what} (want at least {100 * want:.0f} %)"
           for got, want, what, fmt in ((masks, MIN_MASK_AGREEMENT, "mask pixels", ".2f"),
                                        (decisions, MIN_DECISION_AGREEMENT, "decisions", ".1f"))
           if got < want]
    if not low:
        return None
    return (f"INT8 agrees with fp32 on only {' and '.join(low)}; predict with the fp32 bundle "
            "(racam export without --int8)")


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)
