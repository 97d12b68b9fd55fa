"""Each stage of the paper-scale reproduction, timed: seconds, images/s, FLOPs, share of peak.

    python benchmarks/paper_scale.py                          # CUDA: ksdd-paper at 512 x 1408
    python benchmarks/paper_scale.py --size 64 176 --tiny     # CPU: a minute at most
    python benchmarks/paper_scale.py --config ksdd-paper --peak-tflops 790 --steps 10

Stages, each on random inputs already on the device (what ``device_cache`` gives the trainers)
in the config's precision, memory format and batch sizes:

- ``classifier train``: forward, cross-entropy, backward and SGD step of the config's
  classifier (no pretrained weights are loaded: they do not change the speed);
- ``classifier forward``: inference batches (validation, test scores);
- ``cam <method>``: one heat-map call on ``cam.batch_size`` images for every method of
  ``reproduce.methods`` and each ``+fgbp`` plug-in (Score-CAM with its CUDA chunk size);
- ``seg train <arch>``: a training step on ``segmentation.crop`` crops for the pseudo-label
  network and every ``reproduce.supervised_archs`` network;
- ``seg predict <arch>``: inference on whole images (test scoring);
- ``device-cache crops``: drawing a batch of crops from a :class:`DeviceCache` of 264 images.

Per stage: seconds per iteration (median of ``--steps`` after ``--warmup``; CUDA synchronised),
images/s, FLOPs per image (``torch.utils.flop_counter.FlopCounterMode``, one iteration: convs
and matmuls, forward and backward; elementwise work is not counted; a training step counts as
3 x its forward pass, because torch's counter overstates the backward pass of grouped
convolutions about tenfold), the achieved TFLOP/s and its share of ``--peak-tflops`` (default
790, the H200's dense bf16 rate).

Then an ESTIMATE of the whole ``racam reproduce`` wall time from those rates and the
workload of the config (KolektorSDD's image counts per fold; heat maps on defective images
only; decoding, compiling, start-up, I/O and the report are not included).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import torch
from torch.nn import functional as F
from torch.utils.flop_counter import FlopCounterMode

#: KolektorSDD per fold (399 images, 52 defective, 3 folds; 15 % of training for validation).
KSDD_TRAIN, KSDD_TEST, KSDD_TRAIN_DEFECTIVE, KSDD_TEST_DEFECTIVE = 266, 133, 35, 17
VAL_FRACTION = 0.15


@dataclass
class Stage:
    """One measured stage: ``seconds`` per iteration of ``images`` images, ``flops`` per image."""

    name: str
    seconds: float
    images: int
    flops: float

    @property
    def rate(self) -> float:
        return self.images / self.seconds


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class _NoModules:
    """Stands in for FlopCounterMode's module tracker, whose backward hooks clash with the
    heat-map methods' ``torch.autograd.grad`` calls: every count goes to ``Global``."""

    parents = {"Global"}

    def __enter__(self) -> _NoModules:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def count_flops(fn: Callable[[], object]) -> float:
    """FLOPs of one call of ``fn`` (convolutions and matmuls, forward and backward)."""
    counter = FlopCounterMode(display=False)
    counter.mod_tracker = _NoModules()  # type: ignore[assignment]  # the attributes it uses
    with counter:
        fn()
    return float(counter.get_total_flops())


def measure(name: str, fn: Callable[[], object], images: int, device: torch.device,
            steps: int, warmup: int, forward: Callable[[], object] | None = None) -> Stage:
    """Median seconds of ``fn`` over ``steps`` calls after ``warmup``; FLOPs of one call, or
    3 x those of ``forward`` when given (a training step: see the module docstring)."""
    for _ in range(warmup):
        fn()
    _sync(device)
    flops = count_flops(fn) if forward is None else 3 * count_flops(forward)
    times = []
    for _ in range(steps):
        _sync(device)
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return Stage(name, statistics.median(times), images, flops / images)


def main() -> None:
    from racam.accel import configure_backends, to_format
    from racam.cam import scorecam
    from racam.config import load_config
    from racam.data.device_cache import DeviceCache
    from racam.models.registry import build_classifier
    from racam.precision import resolve_precision
    from racam.run_cam import build_run_cam
    from racam.segmentation import build_segmentation
    from racam.segmentation.device_crops import DeviceCropSampler
    from racam.segmentation.losses import segmentation_loss
    from racam.training import resolve_device

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="ksdd-paper")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--size", type=int, nargs=2, metavar=("W", "H"),
                    help="image size (default: the config's on CUDA, 64 x 176 on CPU)")
    ap.add_argument("--crop", type=int, nargs=2, metavar=("W", "H"),
                    help="segmentation crop (default: the config's, scaled like --size)")
    ap.add_argument("--tiny", action="store_true",
                    help="narrow VGG16 (width 16) as the classifier: CPU smoke runs")
    ap.add_argument("--steps", type=int, default=None, help="timed iterations (CUDA 10, CPU 2)")
    ap.add_argument("--warmup", type=int, default=None, help="untimed first iterations "
                    "(CUDA 3, CPU 1)")
    ap.add_argument("--peak-tflops", type=float, default=790.0)
    ap.add_argument("--methods", nargs="*", help="heat-map methods (default: the config's)")
    a = ap.parse_args()

    cfg = load_config(a.config)
    dev = resolve_device(a.device)
    cuda = dev.type == "cuda"
    configure_backends(dev)
    steps = a.steps or (10 if cuda else 2)
    warmup = a.warmup if a.warmup is not None else (3 if cuda else 1)
    w, h = a.size or (cfg.data.size if cuda else (64, 176))
    scale = w / cfg.data.size[0]
    crop = a.crop or tuple(max(32, int(c * scale) // 32 * 32) for c in (cfg.segmentation.crop
                                                                         or (w, h)))
    c_cfg, s_cfg, chans = cfg.classifier, cfg.segmentation, cfg.data.channels
    if a.tiny:
        c_cfg = replace(c_cfg, backbone="vgg16_narrow", width=16)
    cp = resolve_precision(c_cfg.precision, dev)
    sp = resolve_precision(s_cfg.precision, dev)
    print(f"racam paper-scale benchmark: config {a.config}, device {dev}"
          f"{' (' + torch.cuda.get_device_name(dev) + ')' if cuda else ''}, torch "
          f"{torch.__version__}, images {w} x {h} x {chans}, crops {crop[0]} x {crop[1]}, "
          f"classifier {c_cfg.backbone} ({cp.name}), segmentation {s_cfg.encoder} ({sp.name}), "
          f"channels-last {c_cfg.channels_last}/{s_cfg.channels_last}, "
          f"peak {a.peak_tflops:g} TFLOP/s")
    stages: list[Stage] = []

    def run(name: str, fn: Callable[[], object], images: int,
            forward: Callable[[], object] | None = None) -> Stage:
        st = measure(name, fn, images, dev, steps, warmup, forward)
        stages.append(st)
        tflops = st.flops * st.rate / 1e12
        print(f"{name:<28}{st.seconds:>9.3f}{st.rate:>10.1f}{st.flops / 1e9:>12.4g}"
              f"{tflops:>10.2f}{100 * tflops / a.peak_tflops:>9.2f}%", flush=True)
        return st

    print(f"{'stage':<28}{'s/iter':>9}{'img/s':>10}{'GFLOP/img':>12}{'TFLOP/s':>10}"
          f"{'of peak':>10}")

    # classifier
    torch.manual_seed(0)
    model = to_format(build_classifier(c_cfg.backbone, 2, chans, c_cfg.width, None,
                                       c_cfg.batch_norm).to(dev), c_cfg.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)
    bs = c_cfg.batch_size
    x = to_format(torch.rand(bs, chans, h, w, device=dev), c_cfg.channels_last)
    y = torch.randint(0, 2, (bs,), device=dev)

    def clf_step() -> None:
        with cp.autocast():
            logits = model(x)
        loss = F.cross_entropy(logits.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def clf_fwd_only() -> None:
        with torch.no_grad(), cp.autocast():
            model(x)

    clf_train = run("classifier train", clf_step, bs, clf_fwd_only)
    model.eval()

    def clf_forward() -> None:
        with torch.inference_mode():
            model(x)

    clf_fwd = run("classifier forward", clf_forward, bs)

    # heat maps
    cam_bs = cfg.cam.batch_size
    xc = torch.rand(cam_bs, chans, h, w, device=dev)
    methods = a.methods or (list(cfg.reproduce.methods)
                            + [f"{m}+fgbp" for m in cfg.reproduce.plugin_methods])
    cam_rate: dict[str, float] = {}
    for m in methods:
        cam = build_run_cam(cfg, model, m)
        if m == "scorecam" and cuda and cfg.cam.scorecam_batch is None:
            cam.batch_size = scorecam.BATCH_GPU  # type: ignore[attr-defined]  # ScoreCAM's
        cam_rate[m] = run(f"cam {m}", lambda cam=cam: cam(xc, 1), cam_bs).rate

    # segmentation
    seg_rate: dict[str, float] = {}
    pred_rate: dict[str, float] = {}
    archs = [s_cfg.arch] + [x for x in cfg.reproduce.supervised_archs if x != s_cfg.arch]
    loss_fn = segmentation_loss(s_cfg.loss)
    sb = s_cfg.batch_size
    xs = to_format(torch.rand(sb, chans, crop[1], crop[0], device=dev), s_cfg.channels_last)
    ys = (torch.rand(sb, crop[1], crop[0], device=dev) > 0.99).long()
    xp = to_format(torch.rand(sb, chans, h, w, device=dev), s_cfg.channels_last)
    for arch in archs:
        torch.manual_seed(0)
        stride = s_cfg.output_stride if arch.startswith("deeplab") else None
        net = to_format(build_segmentation(arch, s_cfg.encoder, chans, None, 2, stride).to(dev),
                        s_cfg.channels_last)
        sopt = torch.optim.AdamW(net.parameters(), lr=1e-4)

        def seg_step(net=net, sopt=sopt) -> None:
            with sp.autocast():
                logits = net(xs)
            loss = loss_fn(logits.float(), ys)
            sopt.zero_grad(set_to_none=True)
            loss.backward()
            sopt.step()

        def seg_fwd_only(net=net) -> None:
            with torch.no_grad(), sp.autocast():
                net(xs)

        seg_rate[arch] = run(f"seg train {arch}", seg_step, sb, seg_fwd_only).rate
        net.eval()

        def seg_pred(net=net) -> None:
            with torch.inference_mode(), sp.autocast():
                net(xp)

        pred_rate[arch] = run(f"seg predict {arch}", seg_pred, sb).rate
        del net, sopt

    # device cache
    n_cache = KSDD_TRAIN
    images = torch.randint(0, 256, (n_cache, 1, h, w), dtype=torch.uint8, device=dev)
    masks = torch.zeros(n_cache, h, w, dtype=torch.bool, device=dev)
    masks[:KSDD_TRAIN_DEFECTIVE, h // 2, w // 2] = True
    labels = (torch.arange(n_cache, device=dev) < KSDD_TRAIN_DEFECTIVE).long()
    cache = DeviceCache(images, labels, masks, None, chans, True)
    sampler = DeviceCropSampler(cache, crop, s_cfg.defect_crop_fraction, sb * 16, seed=0)
    run("device-cache crops", lambda: list(sampler.epoch_batches(0, sb)), sb * 16)

    # estimate
    seeds, folds = len(cfg.reproduce.seeds), len(cfg.data.folds)
    train = round(KSDD_TRAIN * (1 - VAL_FRACTION))
    val = KSDD_TRAIN - train
    clf_s = seeds * folds * (c_cfg.epochs * (c_cfg.samples_per_epoch or train) / clf_train.rate
                             + (c_cfg.epochs * val + KSDD_TEST) / clf_fwd.rate)
    per_method = {m: KSDD_TEST_DEFECTIVE for m in methods}  # Tables I and IV
    racam = KSDD_TEST_DEFECTIVE + KSDD_TRAIN_DEFECTIVE  # each delta, both splits
    variants = (len(cfg.reproduce.weightings) - 1) + (len(cfg.reproduce.fgbp_heads) - 1)
    cam_s = seeds * folds * sum(n / cam_rate[m] for m, n in per_method.items())
    if "racam" in cam_rate:
        cam_s += seeds * folds * (len(cfg.reproduce.deltas) * racam
                                  + variants * KSDD_TEST_DEFECTIVE) / cam_rate["racam"]
        cam_s += folds * KSDD_TRAIN_DEFECTIVE / cam_rate["racam"]  # pseudo-labels, first seed
    seg_s = 0.0
    if cfg.reproduce.segmentation:
        n_seg = s_cfg.samples_per_epoch or KSDD_TRAIN
        for arch in [s_cfg.arch] + list(cfg.reproduce.supervised_archs):
            seg_s += folds * (s_cfg.epochs * n_seg / seg_rate[arch] + KSDD_TEST / pred_rate[arch])
    total = clf_s + cam_s + seg_s
    print(f"\nESTIMATE of racam reproduce {a.config} at {w} x {h} on this device (from the "
          f"rates above and KolektorSDD's counts; no decoding, compiling, start-up or I/O):")
    print(f"  classifiers {clf_s:8.1f} s  ({seeds} seeds x {folds} folds x {c_cfg.epochs} "
          "epochs)")
    print(f"  heat maps   {cam_s:8.1f} s  ({len(methods)} methods, {len(cfg.reproduce.deltas)} "
          f"deltas, {seeds} seeds; defective images only)")
    print(f"  segmentation{seg_s:8.1f} s  ({1 + len(cfg.reproduce.supervised_archs)} networks x "
          f"{folds} folds x {s_cfg.epochs} epochs)")
    print(f"  total       {total:8.1f} s = {total / 60:.1f} min")


if __name__ == "__main__":
    main()
