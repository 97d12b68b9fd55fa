"""One inference class, :class:`Inferencer`, for a run folder (its torch checkpoints) or an
export bundle (its ONNX files in onnxruntime).

Both backends take a float batch ``(B, C, H, W)`` in [0, 1] on the CPU and return CPU tensors:
classifier logits ``(B, 2)`` and segmentation logits ``(B, 2, H, W)``. The input size, channels,
normalisation and the mask rule come from the metadata (:class:`racam.deploy.bundle.BundleMeta`),
read from ``bundle.json`` or derived from the run, so the same code applies either.

    inf = Inferencer.open("runs/parts")              # or a bundle folder of racam export
    image, x = inf.prepare("new/part.png")
    probs, masks = inf.predict(x[None], [image.size])
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from PIL import Image
from torch import Tensor, nn

from racam.deploy.bundle import (
    BUNDLE_JSON,
    BundleMeta,
    MaskRule,
    check_against_run,
    is_bundle,
    meta_from_run,
    read_bundle,
)
from racam.deploy.ort_session import SessionSettings, onnx_session
from racam.deploy.run_dir import TrainedRun, file_sha256, open_run, run_digests
from racam.deploy.tiles import (
    TILE_ABOVE,
    Tiling,
    plan_tiles,
    segment_scaled,
    tile_size,
    upsample_threshold,
)
from racam.errors import CheckpointError, ConfigError, DataError
from racam.segmentation.mask_cut import numpy_threshold, threshold_map

__all__ = ["SOURCES", "Inferencer", "onnx_session"]

#: Where masks come from: the segmentation network, or the heat map + Otsu (torch only).
SOURCES = ("seg", "cam")


class _Nets(Protocol):
    name: str
    files: list[Path]

    def classify(self, images: Tensor) -> Tensor: ...

    def segment(self, images: Tensor) -> Tensor: ...


class _TorchNets:
    """The run's checkpoints in torch on ``device``."""

    name = "torch"

    def __init__(self, run: TrainedRun, device: torch.device) -> None:
        from racam.checkpoint import load_classifier
        from racam.segmentation import load_segmentation

        self.device = device
        self.files = [run.classifier_path, run.segmentation_path]
        self.classifier: nn.Module = load_classifier(run.classifier_path, map_location=device)[0]
        self.segmentation: nn.Module = load_segmentation(run.segmentation_path,
                                                         map_location=device)[0]

    @torch.no_grad()
    def classify(self, images: Tensor) -> Tensor:
        return self.classifier(images.to(self.device)).float().cpu()

    @torch.no_grad()
    def segment(self, images: Tensor) -> Tensor:
        return self.segmentation(images.to(self.device)).float().cpu()


class _OnnxNets:
    """The ONNX files of a bundle, each checked against ``bundle.json`` (SHA-256, channels)."""

    name = "onnxruntime"

    def __init__(self, folder: Path, meta: BundleMeta, device: torch.device,
                 settings: SessionSettings | None = None) -> None:
        self.files, self.sessions = [], []
        for part in ("classifier", "segmentation"):
            model = meta.models.get(part)
            if model is None or model.format != "onnx":
                raise CheckpointError(f"{folder / BUNDLE_JSON}: no ONNX {part} listed")
            path = folder / model.file
            if path.is_file() and model.sha256 and file_sha256(path) != model.sha256:
                raise CheckpointError(f"{path}: not the file {BUNDLE_JSON} describes (SHA-256 "
                                      "differs); export the run again")
            session = onnx_session(path, device, settings)
            shape = session.get_inputs()[0].shape
            if len(shape) != 4 or (isinstance(shape[1], int) and shape[1] != meta.channels):
                raise CheckpointError(f"{path}: the network takes input {shape}, "
                                      f"{BUNDLE_JSON} says {meta.channels} channel(s)")
            self.files.append(path)
            self.sessions.append(session)

    def _run(self, k: int, images: Tensor) -> Tensor:
        x = np.ascontiguousarray(images.detach().cpu().numpy(), dtype=np.float32)
        session = self.sessions[k]
        try:
            out = session.run(None, {session.get_inputs()[0].name: x})[0]
        except Exception as exc:  # onnxruntime's own types; one line, not its traceback
            first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc)
            raise CheckpointError(f"{self.files[k]}: onnxruntime failed on input "
                                  f"{tuple(x.shape)} ({first})") from None
        return torch.from_numpy(np.asarray(out, dtype=np.float32))

    def classify(self, images: Tensor) -> Tensor:
        return self._run(0, images)

    def segment(self, images: Tensor) -> Tensor:
        return self._run(1, images)


class Inferencer:
    """A run's or bundle's networks with their metadata: ``prepare`` an image, ``predict`` the
    defect probability and a mask at the image's original size. Build with :meth:`open`."""

    def __init__(self, meta: BundleMeta, nets: _Nets, origin: Path, device: torch.device,
                 run: TrainedRun | None = None) -> None:
        self.meta, self.nets, self.origin, self.device, self.run = meta, nets, origin, device, run
        self._cam: Callable[..., Tensor] | None = None
        self._scale: tuple[float, float] | None = None

    @classmethod
    def open(cls, path: Path, *, onnx: Path | None = None, fold: int | None = None,
             device: str | torch.device = "cpu",
             settings: SessionSettings | None = None) -> Inferencer:
        """``path``: a run folder (torch; with ``onnx``, that bundle instead, checked against
        the run) or a bundle folder (onnxruntime, sessions set by ``settings``). Refusals are
        one-line racam errors."""
        from racam.training import resolve_device

        path = Path(path)
        if path.is_dir() and not (path / "config.json").is_file() and not is_bundle(path):
            raise DataError(f"{path}: neither a racam run folder (no config.json) nor an "
                            f"export bundle (no {BUNDLE_JSON})")
        if is_bundle(path) and not (path / "config.json").is_file():
            if onnx is not None:
                raise ConfigError(f"--onnx {onnx}: {path} is a bundle already; give one of them")
            meta = read_bundle(path)
            if fold is not None and fold != meta.source.fold:
                raise ConfigError(f"--fold {fold}: the bundle {path} holds fold "
                                  f"{meta.source.fold}")
            dev = resolve_device(device)
            return cls(meta, _OnnxNets(path, meta, dev, settings), path, dev)
        run = open_run(path, fold)
        digests = run_digests(run)
        dev = resolve_device(device)
        if onnx is None:
            return cls(meta_from_run(run, digests), _TorchNets(run, dev), run.root, dev, run)
        meta = read_bundle(Path(onnx))
        check_against_run(meta, Path(onnx), run, digests)
        return cls(meta, _OnnxNets(Path(onnx), meta, dev, settings), Path(onnx), dev, run)

    @property
    def backend(self) -> str:
        """``torch`` or ``onnxruntime``."""
        return self.nets.name

    def model_key(self) -> str:
        """Size and mtime of the model files: outputs made with other files are redone."""
        return ",".join(f"{p.stat().st_size}-{p.stat().st_mtime_ns}" for p in self.nets.files)

    def prepare(self, path: Path) -> tuple[Image.Image, Tensor]:
        """The image (converted to the networks' channels) and its input tensor ``(C, H, W)``."""
        from racam.data.io import image_to_tensor, read_image

        m = self.meta
        img = read_image(path, m.channels)
        x = image_to_tensor(img, m.size, m.channels)
        if m.normalisation.mean != 0.0 or m.normalisation.std != 1.0:
            x = (x - m.normalisation.mean) / m.normalisation.std
        return img, x

    def mask_rule(self, source: str = "seg") -> MaskRule:
        """The rule of ``source``: the metadata's for ``seg``; heat map + Otsu, gated by the
        decision, for ``cam`` (a run folder's torch classifier only)."""
        if source not in SOURCES:
            raise ConfigError(f"--source must be one of {', '.join(SOURCES)}, got {source!r}")
        if source == "seg":
            return self.meta.mask
        if self.run is None or not isinstance(self.nets, _TorchNets):
            raise ConfigError("--source cam needs the run's torch classifier (heat maps use its "
                              "gradients); give the run folder without --onnx")
        if self._cam is None:
            from racam.run_cam import build_run_cam

            self._cam = build_run_cam(self.run.cfg, self.nets.classifier, self.run.cfg.cam.method)
        return MaskRule("cam", f"heat map {self.run.cfg.cam.method} (B, H, W)", "none", 1,
                        "bilinear", "otsu", gated=True)

    def predict(self, x: Tensor, sizes: list[tuple[int, int]], source: str = "seg",
                threshold: float | None = None) -> tuple[Tensor, Iterator[Tensor]]:
        """Defect probabilities ``(B,)`` of a batch and its bool masks at ``sizes`` (``(w, h)``
        each), by the mask rule of ``source`` (``threshold``: the decision threshold, the
        metadata's when ``None``; it gates the ``cam`` masks, and the ``seg`` masks of a gated
        rule, :mod:`racam.evaluation.gate`)."""
        from racam.evaluation.gate import gate_mask
        from racam.pseudo.heatmaps import to_original_size
        from racam.pseudo.otsu import otsu_threshold

        rule = self.mask_rule(source)
        decision = self.meta.decision_threshold if threshold is None else threshold
        probs = self.nets.classify(x).softmax(1)[:, 1]
        if source == "seg":
            seg = self.nets.segment(x).softmax(1)[:, rule.channel]
            seg_masks = (threshold_map(to_original_size(p[None], s)[0], rule.threshold)
                         for p, s in zip(seg, sizes))
            if rule.gated:
                seg_masks = (gate_mask(m, float(q), decision) for m, q in zip(seg_masks, probs))
            return probs, seg_masks
        assert self._cam is not None
        heat = self._cam(x.to(self.device), targets=rule.channel).detach().float().cpu()

        def masks() -> Iterator[Tensor]:
            for h, s, p in zip(heat, sizes, probs):
                big = to_original_size(h[None], s)
                yield gate_mask(big[0] > otsu_threshold(big)[0], float(p), decision)

        return probs, masks()

    def scale(self) -> tuple[float, float]:
        """Network input pixels per image pixel ``(x, y)``: the bundle's, else measured on the
        run's training images (:func:`racam.deploy.run_dir.training_scale`), else 1."""
        if self._scale is None:
            s = self.meta.scale
            if s is None and self.run is not None:
                from racam.deploy.run_dir import training_scale

                s = training_scale(self.run)
            self._scale = (float(s[0]), float(s[1])) if s else (1.0, 1.0)
        return self._scale

    def tiling(self, size: tuple[int, int]) -> Tiling | None:
        """How an image of ``size`` ``(w, h)`` is segmented in tiles when it is far larger
        than the network input (:data:`racam.deploy.tiles.TILE_ABOVE` times, at the run's
        scale); ``None``: resized to the input size as a whole."""
        sx, sy = self.scale()
        w, h = self.meta.size
        if size[0] * sx <= TILE_ABOVE * w and size[1] * sy <= TILE_ABOVE * h:
            return None
        dynamic = all("height" in m.dynamic_axes for m in self.meta.models.values()
                      if m.format == "onnx")  # torch networks take any size
        return plan_tiles(size, (sx, sy), tile_size(self.meta.size, dynamic))

    def predict_large(self, image: Image.Image, x: Tensor, tiling: Tiling,
                      tiled: bool = True, threshold: float | None = None
                      ) -> tuple[float, np.ndarray]:
        """Defect probability (the classifier on ``x``, the image resized to the input size)
        and the bool segmentation mask at the image's size, by tiles
        (:mod:`racam.deploy.tiles`; ``tiled=False``: the whole image at the run's scale at
        once; a gated rule: empty, and not segmented, below ``threshold``, the metadata's
        decision threshold when ``None``). Memory: the image, its copy at the run's scale, and
        the mask."""
        from racam.evaluation.gate import passes

        rule, norm = self.meta.mask, self.meta.normalisation
        prob = float(self.nets.classify(x[None]).softmax(1)[0, 1])
        decision = self.meta.decision_threshold if threshold is None else threshold
        if rule.gated and not passes(prob, decision):
            return prob, np.zeros((image.size[1], image.size[0]), dtype=bool)
        seg = segment_scaled(image, tiling, self.meta.channels, self.nets.segment,
                             tiled=tiled, mean=norm.mean, std=norm.std, channel=rule.channel)
        return prob, upsample_threshold(seg, image.size, numpy_threshold(seg, rule.threshold))
