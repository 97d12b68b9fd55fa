"""``classifier.precision: bf16`` + ``classifier.channels_last``: the training forward runs in
bfloat16 on channels-last batches, validation and the stored weights stay float32, and the heat
maps of such a classifier are computed in float32 without autocast, equal to those of the same
weights loaded into a plain float32 model."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
from test_classifier_train import Blobs
from torch import nn

import racam.classifier.train as cls_train
from racam.checkpoint import load_classifier
from racam.config import ClassifierConfig, load_config
from racam.models import build_classifier
from racam.run_cam import build_run_cam

CFG = ClassifierConfig(backbone="vgg16_narrow", width=16, batch_norm=True, epochs=2,
                       batch_size=4, samples_per_epoch=12, lr=0.01)


def _conv_hooks(model: nn.Module, seen: list[tuple[bool, torch.dtype, bool, bool]]) -> None:
    """Record (training, output dtype, input channels-last, autocast on) of every conv call."""
    def hook(mod: nn.Module, inp: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        x = inp[0]
        seen.append((mod.training, out.dtype,
                     x.is_contiguous(memory_format=torch.channels_last),
                     torch.is_autocast_enabled("cpu")))
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            m.register_forward_hook(hook)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, list]:
    """A classifier trained under bf16 + channels-last, and its conv calls."""
    seen: list = []
    build = cls_train.build_classifier

    def hooked(*args, **kwargs):
        model = build(*args, **kwargs)
        _conv_hooks(model, seen)
        return model

    out = tmp_path_factory.mktemp("bf16")
    cfg = dataclasses.replace(CFG, precision="bf16", channels_last=True)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(cls_train, "build_classifier", hooked)
        res = cls_train.train_classifier(cfg, Blobs(24, augment=True), Blobs(9, seed=1), out,
                                         seed=0, device="cpu", progress=False)
    assert [h["epoch"] for h in res.history] == [1, 2]
    assert all(torch.isfinite(torch.tensor(h["loss"])) for h in res.history)
    return res.best_path, seen


def test_training_runs_in_bfloat16_on_channels_last_batches(trained) -> None:
    _, seen = trained
    train = {s[1:] for s in seen if s[0]}
    val = {s[1:] for s in seen if not s[0]}
    assert train == {(torch.bfloat16, True, True)}  # every training conv: bf16, NHWC, autocast
    assert val and all(dtype == torch.float32 and not amp for dtype, _, amp in val)


def test_the_stored_weights_are_float32(trained) -> None:
    model, meta = load_classifier(trained[0])
    assert meta["config"]["precision"] == "bf16"
    assert {p.dtype for p in model.state_dict().values() if p.is_floating_point()} == {
        torch.float32}


@pytest.mark.parametrize("method", ["racam", "gradcam"])
def test_heat_maps_are_float32_and_equal_those_of_a_plain_float32_copy(trained,
                                                                       method) -> None:
    model, _ = load_classifier(trained[0])
    plain = build_classifier("vgg16_narrow", num_classes=2, in_channels=1, width=16,
                             batch_norm=True)
    plain.load_state_dict({k: v.float().contiguous() for k, v in model.state_dict().items()})
    cfg = load_config("ksdd-cpu")
    images = torch.stack([Blobs(6, seed=2)[i].image for i in range(0, 6, 3)])
    seen: list = []
    _conv_hooks(model, seen)
    maps = build_run_cam(cfg, model.eval(), method, 10)(images, targets=1)
    again = build_run_cam(cfg, plain.eval(), method, 10)(images, targets=1)
    assert seen and all(dtype == torch.float32 and not amp for _, dtype, _, amp in seen)
    assert maps.dtype == torch.float32 and torch.equal(maps, again)
    assert float(maps.amax()) > 0  # maps, not zeros
