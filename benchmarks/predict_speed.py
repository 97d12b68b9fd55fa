"""Images per second of ``racam predict`` with torch, onnxruntime fp32 and onnxruntime INT8,
on one thread and on all threads, with peak memory.

    python benchmarks/predict_speed.py RUN_DIR [--images DIR] [--repeat 3] [--batch-size 4]
    python benchmarks/predict_speed.py --arch ksdd-cpu     # untrained networks of a config

``RUN_DIR`` is a finished run (e.g. ``racam demo --out racam-demo``). The run is exported to
an fp32 and an INT8 bundle in a temporary folder, then ``racam predict`` runs on ``--images``
(default: the 96 images of the KolektorSDD sample bundled with racam) into a fresh output
folder per repetition with each backend. Printed per thread count: images/s of the whole
command (reading, networks, masks at original size, overlays, CSV, gallery; median of the
repetitions) and of the networks alone (classifier + segmentation forward passes on one batch
at the input size, median of 10), and the peak RSS of a child process that only loads the
backend and runs the networks (``VmHWM``, which starts afresh at ``exec``). With ``--arch
CONFIG`` the networks of that config are built untrained at its input size (speed does not
depend on the weights) and only the networks are timed (INT8 calibrated on random inputs:
speed only).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

BACKENDS = ("torch", "onnxruntime fp32", "onnxruntime int8")


def _time_nets(classify, segment, x: torch.Tensor, n: int = 10) -> float:
    classify(x), segment(x)  # warm-up
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        classify(x)
        segment(x)
        times.append(time.perf_counter() - t0)
    return x.shape[0] / statistics.median(times)


def _child(spec: dict) -> None:
    """Networks of one backend (in a fresh process, so its peak RSS is the backend's)."""
    from racam.deploy.inference import Inferencer

    torch.set_num_threads(spec["threads"])
    if spec.get("arch"):
        from racam.deploy.ort_session import onnx_session

        folder = Path(spec["arch"])
        w, h = spec["size"]
        if spec["backend"] == "torch":
            nets = _arch_nets(spec["config"])
            for part, m in zip(("classifier", "segmentation"), nets):
                m.load_state_dict(torch.load(folder / f"{part}.pt"))
            fns = [torch.no_grad()(m) for m in nets]
        else:
            suffix = ".int8.onnx" if spec["backend"].endswith("int8") else ".onnx"
            sess = [onnx_session(folder / f"{p}{suffix}") for p in ("classifier", "segmentation")]
            fns = [lambda x, s=s: s.run(None, {"image": x.numpy()})[0] for s in sess]
        x = torch.rand(spec["batch"], spec["channels"], h, w)
        rate = _time_nets(fns[0], fns[1], x)
    else:
        onnx = None if spec["backend"] == "torch" else Path(spec["bundle"])
        inf = Inferencer.open(Path(spec["run"]), onnx=onnx, device="cpu")
        w, h = inf.meta.size
        x = torch.rand(spec["batch"], inf.meta.channels, h, w)
        rate = _time_nets(inf.nets.classify, inf.nets.segment, x)
    print(json.dumps({"rate": rate, "peak_mb": peak_rss_mb()}))


def peak_rss_mb() -> float:
    """This process's peak resident memory (``VmHWM``, MB): unlike ``getrusage``'s
    ``ru_maxrss``, it starts afresh at ``exec``, so a child does not inherit its parent's."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _run_child(spec: dict) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": str(spec["threads"])}
    out = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)], env=env,
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _whole(run_dir: Path, bundles: dict[str, Path | None], images: Path, repeat: int,
           batch: int, tmp: Path, threads: int) -> dict[str, float]:
    """Images/s of whole ``racam predict`` calls, each into a fresh folder (an earlier
    call's folder would let predict skip every image)."""
    from racam.deploy.images import list_images
    from racam.deploy.predict import PredictOptions, predict_folder

    n, rates = len(list_images(images)), {}
    for name, bundle in bundles.items():
        times = []
        for r in range(repeat):
            t0 = time.perf_counter()
            predict_folder(run_dir, PredictOptions(
                images=images, out=tmp / f"{name.replace(' ', '-')}-t{threads}-{r}",
                onnx=bundle, batch_size=batch, device="cpu", progress=False))
            times.append(time.perf_counter() - t0)
        rates[name] = n / statistics.median(times)
    return rates


def _arch_nets(config: str) -> list[torch.nn.Module]:
    """Untrained classifier and segmentation network of ``config`` (seed 0)."""
    from racam.config import load_config
    from racam.models.registry import build_classifier
    from racam.segmentation.networks import build_segmentation

    cfg = load_config(config, {})
    c = cfg.data.channels
    torch.manual_seed(0)
    clf = build_classifier(cfg.classifier.backbone, num_classes=2, in_channels=c,
                           width=cfg.classifier.width, batch_norm=cfg.classifier.batch_norm)
    seg = build_segmentation(cfg.segmentation.arch, cfg.segmentation.encoder, c, None, 2,
                             cfg.segmentation.output_stride
                             if cfg.segmentation.arch.startswith("deeplab") else None)
    return [clf.eval(), seg.eval()]


def _build_arch(config: str, folder: Path) -> tuple[tuple[int, int], int]:
    """The untrained networks of ``config`` in ``folder`` (files already there are kept):
    torch weights, fp32 and INT8 ONNX (INT8 calibrated on random inputs: speed only)."""
    from racam.config import load_config
    from racam.deploy.export import export_module
    from racam.deploy.quantize import quantize_model

    cfg = load_config(config, {})
    w, h = cfg.data.size
    c = cfg.data.channels
    gen = torch.Generator().manual_seed(0)
    calib = [torch.rand(c, h, w, generator=gen) for _ in range(8)]
    folder.mkdir(parents=True, exist_ok=True)
    for part, model in zip(("classifier", "segmentation"), _arch_nets(config)):
        if not (folder / f"{part}.pt").is_file():
            torch.save(model.state_dict(), folder / f"{part}.pt")
        model.load_state_dict(torch.load(folder / f"{part}.pt"))
        if not (folder / f"{part}.onnx").is_file():
            export_module(model, torch.rand(2, c, h, w), folder / f"{part}.onnx")
        if not (folder / f"{part}.int8.onnx").is_file():
            quantize_model(folder / f"{part}.onnx", folder / f"{part}.int8.onnx", calib)
    return (w, h), c


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run_dir", type=Path, nargs="?")
    ap.add_argument("--arch", help="time the untrained networks of this config instead")
    ap.add_argument("--arch-dir", type=Path, help="keep (and reuse) --arch's files here")
    ap.add_argument("--images", type=Path)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return _child(json.loads(args.child))
    from racam.deploy.export import export_run

    cores = len(os.sched_getaffinity(0))
    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text()
                .splitlines() if ln.startswith("model name")), "?")
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        base = {"batch": args.batch_size}
        if args.arch:
            folder = args.arch_dir or tmp
            size, channels = _build_arch(args.arch, folder)
            base.update(arch=str(folder), config=args.arch, size=list(size), channels=channels)
            what = f"untrained networks of {args.arch}, input {size[0]}x{size[1]}"
        else:
            from racam.data.registry import BUILTIN_ROOTS

            bundles = {"onnxruntime fp32": tmp / "fp32", "onnxruntime int8": tmp / "int8"}
            export_run(args.run_dir, bundles["onnxruntime fp32"])
            meta = export_run(args.run_dir, bundles["onnxruntime int8"], int8=True)
            assert meta.int8 is not None
            base.update(run=str(args.run_dir))
            what = (f"run {args.run_dir}, input {meta.size[0]}x{meta.size[1]}; INT8 mask "
                    f"agreement with fp32 {100 * meta.int8.mask_agreement:.2f} % on "
                    f"{meta.int8.agreement_images} training images")
            images = args.images or BUILTIN_ROOTS["builtin:ksdd_sample"]
        print(f"{what}; batch {args.batch_size}; CPU {cpu} ({cores} cores); load "
              f"{os.getloadavg()[0]:.2f}")
        print(f"{'threads':>7s} {'backend':17s} {'predict img/s':>13s} {'networks img/s':>14s} "
              f"{'peak RSS MB':>11s}")
        for threads in sorted({1, cores}):
            whole: dict[str, float] = {}
            if not args.arch:
                torch.set_num_threads(threads)
                whole = _whole(args.run_dir, {"torch": None, **bundles}, images, args.repeat,
                               args.batch_size, tmp, threads)
            for backend in BACKENDS:
                spec = {**base, "backend": backend, "threads": threads}
                if not args.arch and backend != "torch":
                    spec["bundle"] = str(bundles[backend])
                r = _run_child(spec)
                w = f"{whole[backend]:13.2f}" if backend in whole else f"{'-':>13s}"
                print(f"{threads:7d} {backend:17s} {w} {r['rate']:14.2f} {r['peak_mb']:11.0f}",
                      flush=True)


if __name__ == "__main__":
    main()
