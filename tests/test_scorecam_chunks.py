"""Score-CAM's masked-image chunks: configurable, large on CUDA, halved on running out of memory."""

from __future__ import annotations

import dataclasses

import torch
from helpers import TINY_CFG, tiny_vgg
from torch import nn

from racam.cam import scorecam
from racam.cam.scorecam import ScoreCAM
from racam.config import RunConfig, load_config
from racam.engine import Engine
from racam.run_cam import build_run_cam


class _SmallCard(nn.Module):
    """``model`` on a pretend card that holds at most ``limit`` images per forward pass."""

    def __init__(self, model: nn.Module, limit: int) -> None:
        super().__init__()
        self.model, self.limit, self.sizes = model, limit, []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.sizes.append(len(x))
        if len(x) > self.limit:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (pretend)")
        return self.model(x)


def test_out_of_memory_halves_the_chunk_and_keeps_the_maps() -> None:
    vgg = tiny_vgg()
    x = torch.rand(2, 3, 64, 32, generator=torch.Generator().manual_seed(1))
    want = ScoreCAM(vgg, batch_size=8)(x, 1)
    card = _SmallCard(vgg, limit=5)
    cam = ScoreCAM(card, batch_size=24, target_layers="model.features.29")
    got = cam(x, 1)
    torch.testing.assert_close(got, want, atol=1e-6, rtol=0)
    assert cam.batch_size == 3  # 24 -> 12 -> 6 -> 3 fits, and is kept
    assert max(n for n in card.sizes[1:] if n <= card.limit) <= 5
    assert scorecam.BATCH_GPU == 256 and scorecam.BATCH_CPU == 8


def test_config_sets_the_chunk_and_leaves_stage_keys_alone() -> None:
    cfg = RunConfig()
    model = tiny_vgg()
    assert build_run_cam(cfg, model, "scorecam").batch_size is None  # device default
    big = dataclasses.replace(cfg, cam=dataclasses.replace(cfg.cam, scorecam_batch=64))
    assert build_run_cam(big, model, "scorecam").batch_size == 64
    assert not hasattr(build_run_cam(big, model, "gradcam"), "batch_size")
    keys = [Engine(load_config(TINY_CFG, {"cam.scorecam_batch": b, "device": "cpu"}),
                   progress=False, log=lambda _: None).ctx.key("data", "classifier", "cam")
            for b in (None, 512)]
    assert keys[0] == keys[1]  # a chunk size changes the speed, not the maps
