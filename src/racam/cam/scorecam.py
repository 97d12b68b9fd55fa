"""Score-CAM (Wang et al. 2020), in grad-cam's form, batched over channels and images."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from racam.cam.base import BaseCAM, weighted_sum
from racam.cam.capture import forward_capture, target_scores
from racam.cam.layers import LayerSpec
from racam.errors import ConfigError, RacamError

EPS = 1e-8
#: Default masked images per forward pass: large batches feed a GPU (halved whenever one runs
#: out of memory, :meth:`ScoreCAM._layer`); on a CPU small batches stay in cache
#: (narrow VGG16 at 640 x 224, 4 images: 8 per pass took 7.5 s and 424 MB, 32 per pass 8.3 s
#: and 1231 MB; docs/cam.md).
BATCH_GPU = 256
BATCH_CPU = 8


class ScoreCAM(BaseCAM):
    """Score-CAM: each channel ``A_k`` of the target layer, upsampled to the input size
    (bilinear, ``align_corners=True`` as grad-cam) and min-max scaled to a mask
    ``M_k = (U_k - min) / (max - min + 1e-8)``, masks the image; with ``s_k`` the target logit
    of ``image * M_k``::

        w = softmax_k(s_k),     map = ReLU(sum_k w_k A_k)      (default layer S5)

    ``batch_size`` masked images per forward pass, across images (``None``: 256 on a GPU, 8 on
    a CPU; config ``cam.scorecam_batch``). On CUDA a pass that runs out of memory is retried
    with half as many, and the smaller size is kept for later passes. A constant channel gives
    an all-zero mask, so those channels share one forward pass of a zero image. On a CPU,
    ``reuse_freed_memory=True`` (or ``RACAM_MALLOC_TUNING=1``) lets every pass reuse the memory
    the previous one freed (:mod:`racam.heap`): same numbers, faster where page faults dominate
    (``benchmarks/malloc_tuning.py``).
    """

    name = "scorecam"
    display_name = "Score-CAM"

    def __init__(self, model: nn.Module, target_layers: Sequence[LayerSpec] | LayerSpec | None
                 = None, *, batch_size: int | None = None, fusion: str = "max",
                 channels_last: bool | None = None, reuse_freed_memory: bool | None = None
                 ) -> None:
        super().__init__(model, target_layers, fusion=fusion, channels_last=channels_last,
                         reuse_freed_memory=reuse_freed_memory)
        if batch_size is not None and batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        self.batch_size = batch_size

    @torch.no_grad()
    def _raw_maps(self, x: Tensor, targets: object) -> list[Tensor]:
        logits, acts = forward_capture(self.model, x, self.layers, grad="none")
        idx, _ = target_scores(logits, targets)
        return [self._layer(x, idx, a) for a in acts]

    def _scores(self, x: Tensor, a: Tensor, idx: Tensor, pair: Tensor, c: int, cl: bool
                ) -> Tensor:
        """Target logits of ``x`` masked by the channels ``pair`` (flat ``image * c + k``)."""
        bi, ki = pair // c, pair % c
        up = F.interpolate(a[bi, ki][:, None].float(), size=x.shape[-2:], mode="bilinear",
                           align_corners=True)
        lo = up.amin(dim=(2, 3), keepdim=True)
        hi = up.amax(dim=(2, 3), keepdim=True)
        masked = x[bi] * ((up - lo) / (hi - lo + EPS)).to(x.dtype)
        if cl:
            masked = masked.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            out = self.model(masked)
        return out.gather(1, idx[bi, None])[:, 0].float()

    def _layer(self, x: Tensor, idx: Tensor, a: Tensor) -> Tensor:
        if a.dim() != 4:
            raise RacamError(f"target layer output must be (B, C, h, w), got {tuple(a.shape)}")
        b, c = a.shape[:2]
        flat = a.flatten(2)
        const = (flat.amax(dim=2) == flat.amin(dim=2)).flatten()
        scores = torch.empty(b * c, dtype=torch.float32, device=x.device)
        todo = (~const).nonzero()[:, 0]
        cl = x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
        step = self.batch_size or (BATCH_CPU if x.device.type == "cpu" else BATCH_GPU)
        s = 0
        while s < todo.numel():
            pair = todo[s:s + step]
            try:
                scores[pair] = self._scores(x, a, idx, pair, c, cl)
            except torch.cuda.OutOfMemoryError:
                if step == 1:
                    raise
                step = max(1, step // 2)  # the card's size: keep the smaller chunks
                self.batch_size = step
                torch.cuda.empty_cache()
                continue
            s += len(pair)
        if bool(const.any()):
            with torch.inference_mode():
                zero = self.model(torch.zeros_like(x[:1]))[0]
            scores[const] = zero[idx].float().repeat_interleave(c)[const]
        w = torch.softmax(scores.view(b, c), dim=1)
        return weighted_sum(w.to(a.dtype), a)
