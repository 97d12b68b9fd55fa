"""Speed settings of the trainers: precision, no per-batch host syncs, compile, channels-last."""

from __future__ import annotations

import dataclasses
import math
import platform
import warnings
from pathlib import Path

import pytest
import torch
from test_classifier_train import Blobs
from test_segmentation import Discs
from torch import nn

from racam import training
from racam.accel import configure_backends
from racam.classifier import train as cls_train
from racam.classifier import train_classifier
from racam.compiled import CompiledForward
from racam.config import (
    LATER_DEFAULTS,
    ClassifierConfig,
    SegmentationConfig,
    load_config,
    without_later_defaults,
)
from racam.errors import ConfigError, RacamError
from racam.precision import native_bf16, precision_warning, resolve_precision
from racam.schedule import StepSchedule
from racam.segmentation import train as seg_train
from racam.segmentation import train_segmentation
from racam.stages.evaluate import machine_info

CPU, CUDA = torch.device("cpu"), torch.device("cuda")


def _cfg(**kw) -> ClassifierConfig:
    base = dict(backbone="vgg16_narrow", width=16, epochs=1, batch_size=4, lr=0.01,
                batch_norm=True)
    return ClassifierConfig(**{**base, **kw})


# ------------------------------------------------------------------------------ precision
def test_precision_auto_and_explicit_settings_cover_cuda() -> None:
    assert resolve_precision("auto", CUDA).name == "fp16"  # the old CUDA default (amp: true)
    assert resolve_precision("auto", CPU).name == "float32"
    bf16 = resolve_precision("bf16", CUDA)  # explicit: any device, no scaler
    assert bf16.dtype == torch.bfloat16 and not bf16.uses_scaler
    fp16 = resolve_precision("fp16", CPU)
    assert fp16.uses_scaler and fp16.grad_scaler().is_enabled()
    assert not resolve_precision("float32", CUDA).grad_scaler().is_enabled()
    with resolve_precision("bf16", CPU).autocast():
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.bfloat16
    with resolve_precision("float32", CPU).autocast():
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.float32
    with pytest.raises(ValueError, match="precision"):
        resolve_precision("half", CPU)


def _cpu_flags() -> set[str]:
    text = Path("/proc/cpuinfo").read_text()
    return set(next(line for line in text.splitlines() if line.startswith("flags")).split())


@pytest.mark.skipif(platform.machine() != "x86_64" or not Path("/proc/cpuinfo").exists(),
                    reason="reads the x86 CPU flags of Linux")
def test_bf16_if_native_follows_the_cpu_flags() -> None:
    """oneDNN's bfloat16 path needs AVX512 BW, VL and DQ on x86 (ATen's mkldnn_bf16_device_check);
    without it bf16 is emulated, 24x slower than float32 on an AVX2 EPYC (the precision module)."""
    native = {"avx512bw", "avx512vl", "avx512dq"} <= _cpu_flags()
    assert native_bf16(CPU) is native
    assert resolve_precision("bf16_if_native", CPU).name == ("bf16" if native else "float32")
    assert resolve_precision("bf16", CPU).name == "bf16"  # explicit: as written
    warning = precision_warning("segmentation.precision", "bf16", CPU)
    assert (warning is None) is native
    if not native:
        assert "segmentation.precision=bf16_if_native" in str(warning)
    assert precision_warning("segmentation.precision", "float32", CPU) is None
    machine = machine_info()  # what the run report records
    assert machine["cpu_native_bf16"] is native
    want = "AVX512" if {"avx512f", "avx512bw", "avx512vl", "avx512dq"} <= _cpu_flags() else \
        "AVX2" if "avx2" in _cpu_flags() else None
    if want:
        assert machine["cpu_capability"] == want


def test_bf16_if_native_on_cuda_asks_the_device(monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    for native in (True, False):
        monkeypatch.setattr(torch.cuda, "is_bf16_supported",
                            lambda including_emulation=True, n=native: n or including_emulation)
        assert resolve_precision("bf16_if_native", CUDA).name == ("bf16" if native else "float32")
        assert (precision_warning("classifier.precision", "bf16", CUDA) is None) is native


def test_new_keys_leave_old_configs_and_stage_keys_alone() -> None:
    cfg = load_config("ksdd-cpu")
    for section in ("classifier", "segmentation"):
        part = dataclasses.asdict(getattr(cfg, section))
        kept = without_later_defaults(section, part)
        assert not {"compile", "device_cache"} & set(kept)  # defaults: not keyed
        assert not {"amp", "bf16"} & set(part)  # one precision key
    assert "precision" not in without_later_defaults(  # auto: not keyed
        "classifier", dataclasses.asdict(cfg.classifier))
    assert cfg.segmentation.precision == "bf16_if_native"  # the CPU recipe (was bf16: true)
    assert LATER_DEFAULTS["cam"]["scorecam_batch"] is None
    with pytest.raises(ConfigError, match="classifier.precision"):
        load_config("ksdd-cpu", {"classifier.precision": "half"})
    paper = load_config("ksdd-paper")
    assert paper.classifier.precision == "bf16" and paper.segmentation.precision == "bf16"


def test_bf16_classifier_trains_on_cpu_and_old_checkpoints_resume(tmp_path) -> None:
    train, val = Blobs(8, augment=True), Blobs(4, seed=1)
    first = train_classifier(_cfg(), train, val, tmp_path, seed=0, progress=False)
    state = torch.load(first.last_path, weights_only=False)
    for key in LATER_DEFAULTS["classifier"]:  # a run folder written before the keys existed
        state["meta"]["config"].pop(key)
    torch.save(state, first.last_path)
    more = train_classifier(_cfg(epochs=2, precision="bf16", channels_last=True), train, val,
                            tmp_path, seed=0, progress=False)
    assert [h["epoch"] for h in more.history] == [1, 2]
    assert all(torch.isfinite(torch.tensor(h["loss"])) for h in more.history)


# ------------------------------------------------------------------------ host syncs
class _SyncCounter:
    """Counts the Python-level ways of reading a tensor on the host."""

    NAMES = ("item", "tolist", "__bool__", "__float__", "__int__")

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[str] = []
        for name in self.NAMES:
            orig = getattr(torch.Tensor, name)

            def wrapped(t, *a, _orig=orig, _name=name, **k):
                self.calls.append(_name)
                return _orig(t, *a, **k)

            monkeypatch.setattr(torch.Tensor, name, wrapped)


def test_classifier_epoch_reads_the_loss_once(monkeypatch) -> None:
    ds = Blobs(24, augment=True)
    model = cls_train.build_classifier("vgg16_narrow", 2, 1, width=16, batch_norm=True)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    prec = resolve_precision("bf16", CPU)
    st = cls_train.TrainStep(CompiledForward(model, False, "classifier"), opt, prec.grad_scaler(),
                         None, CPU, prec, True)
    batches = list(training.make_loader(ds, 4, None, None, 0, CPU))  # 6 batches, decoded
    counter = _SyncCounter(monkeypatch)
    loss = cls_train.train_epoch(model, batches, st, 1, progress=False)
    assert len(counter.calls) <= 1, counter.calls  # the epoch mean, not one per batch
    assert loss > 0


def test_segmentation_epoch_reads_the_loss_once(monkeypatch) -> None:
    class Banded(Discs):  # ignore bands: set with torch.where, not boolean indexing
        def __getitem__(self, i):
            s = super().__getitem__(i)
            s.ignore = s.mask.roll(2, -1)
            return s

    cfg = SegmentationConfig(arch="unet", encoder="resnet18", batch_size=2, lr=0.01,
                             loss="ce+dice_defect", schedule="cosine")
    model = seg_train.build_segmentation("unet", "resnet18", 1, None, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    prec = resolve_precision("float32", CPU)
    st = seg_train.TrainStep(CompiledForward(model, False, "segmentation"), opt, prec.grad_scaler(),
                         CPU, prec, False, seg_train.segmentation_loss(cfg.loss))
    schedule = StepSchedule(opt, 0.01, "cosine", 3)  # per-step learning rates: no sync either
    schedule.begin_epoch(0, 4)
    batches = list(training.make_loader(Banded(8), 2, None, None, 0, CPU))
    counter = _SyncCounter(monkeypatch)
    loss = seg_train.train_epoch(model, batches, st, 1, progress=False)
    schedule.remove()
    assert len(counter.calls) <= 1, counter.calls
    assert opt.param_groups[0]["lr"] == pytest.approx(0.01 * (1 + math.cos(math.pi * 3 / 12)) / 2)
    assert loss > 0


def test_divergence_is_caught_once_per_epoch() -> None:
    meter = training.EpochLoss("classifier", 3)
    meter.add(torch.tensor(0.5), 4)
    meter.add(torch.tensor(float("nan")), 4)
    with pytest.raises(RacamError, match="classifier training diverged at epoch 3.*lr"):
        meter.mean()
    ok = training.EpochLoss("segmentation", 1)
    ok.add(torch.tensor(1.0), 2)
    ok.add(0.25, 2)  # a DDP step's float
    assert ok.mean() == pytest.approx(0.625)


# ---------------------------------------------------------------------------- compile
def test_compile_option_reaches_torch_compile_and_falls_back(tmp_path, monkeypatch) -> None:
    seen = []

    def fake_compile(module, *a, **k):
        seen.append(module)
        return module  # "compiled": the module itself

    monkeypatch.setattr(torch, "compile", fake_compile)
    train, val = Blobs(8), Blobs(4, seed=1)
    plain = train_classifier(_cfg(), train, val, tmp_path / "a", seed=0, progress=False)
    compiled = train_classifier(_cfg(compile=True), train, val, tmp_path / "b", seed=0,
                                progress=False)
    assert len(seen) == 1 and isinstance(seen[0], nn.Module)
    assert [h["loss"] for h in plain.history] == [h["loss"] for h in compiled.history]

    def broken(module, *a, **k):
        def run(*args, **kw):
            raise RuntimeError("inductor: no C compiler\nlong trace")
        return run

    monkeypatch.setattr(torch, "compile", broken)
    with pytest.warns(RuntimeWarning, match="segmentation.compile: torch.compile failed.*"
                                             "no C compiler.*eager"):
        res = train_segmentation(SegmentationConfig(arch="unet", encoder="resnet18", epochs=1,
                                                    batch_size=2, compile=True),
                                 Discs(4), tmp_path / "c", seed=0, progress=False)
    assert res.finished
    fwd = CompiledForward(nn.Identity(), True, "classifier")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert fwd(torch.ones(1)).item() == 1 and not fwd.active  # eager after the failure


@pytest.mark.slow
def test_torch_compile_runs_a_training_step_on_cpu() -> None:
    """The real inductor backend (about half a minute of compiling on one CPU thread)."""
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    fwd = CompiledForward(model, True, "classifier")
    x = torch.rand(4, 1, 16, 16)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # a fallback would fail the test
        out = fwd(x)
    out.sum().backward()
    assert fwd.active and model[0].weight.grad is not None
    torch.testing.assert_close(out, model(x), atol=1e-5, rtol=1e-4)


# ------------------------------------------------------------- channels-last, cudnn
def test_channels_last_reaches_the_classifier_forward(tmp_path, monkeypatch) -> None:
    formats = []

    class Spy(CompiledForward):
        def __call__(self, x):
            formats.append(x.is_contiguous(memory_format=torch.channels_last))
            return super().__call__(x)

    monkeypatch.setattr(cls_train, "CompiledForward", Spy)
    train_classifier(_cfg(channels_last=True, device_cache=True), Blobs(8, augment=True), None,
                     tmp_path, seed=0, progress=False)
    assert formats and all(formats)


def test_cudnn_benchmark_is_set_for_cuda_only(monkeypatch) -> None:
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    configure_backends(CPU)
    assert torch.backends.cudnn.benchmark is False
    configure_backends(CUDA)
    assert torch.backends.cudnn.benchmark is True
