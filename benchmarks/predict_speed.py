"""Images per second of ``racam predict`` with torch and with onnxruntime, on this machine.

    python benchmarks/predict_speed.py RUN_DIR [--images DIR] [--repeat 3] [--batch-size 4]

``RUN_DIR`` is a finished run (e.g. ``racam demo --out racam-demo``). The run is exported to
an ONNX bundle in a temporary folder, then ``racam predict`` runs on ``--images`` (default: the 96
images of the KolektorSDD sample bundled with racam) into a fresh output folder per
repetition, once with the torch checkpoints and once with ``--onnx``. Printed: images/s of the
whole command (reading, networks, masks at original size, overlays, CSV, gallery; median of
the repetitions) and of the networks alone (classifier + segmentation forward passes on one
batch at the run's input size, median of 20), with the thread count and CPU.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch


def _networks(run_dir: Path, onnx_dir: Path, batch: int) -> dict[str, float]:
    from racam.deploy.inference import Inferencer

    out = {}
    for onnx in (None, onnx_dir):
        inf = Inferencer.open(run_dir, onnx=onnx, device="cpu")
        w, h = inf.meta.size
        x = torch.rand(batch, inf.meta.channels, h, w)
        inf.nets.classify(x), inf.nets.segment(x)  # warm-up
        times = []
        for _ in range(20):
            t0 = time.perf_counter()
            inf.nets.classify(x)
            inf.nets.segment(x)
            times.append(time.perf_counter() - t0)
        out[inf.backend] = batch / statistics.median(times)
    return out


def main() -> None:
    from racam.data.registry import BUILTIN_ROOTS
    from racam.deploy.export import export_run
    from racam.deploy.images import list_images
    from racam.deploy.predict import PredictOptions, predict_folder

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--images", type=Path, default=BUILTIN_ROOTS["builtin:ksdd_sample"])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=4)
    args = ap.parse_args()
    n = len(list_images(args.images))
    with tempfile.TemporaryDirectory() as tmp:
        onnx_dir = Path(tmp) / "onnx"
        export_run(args.run_dir, onnx_dir)
        whole = {}
        for name, onnx in (("torch", None), ("onnxruntime", onnx_dir)):
            times = []
            for r in range(args.repeat):
                t0 = time.perf_counter()
                predict_folder(args.run_dir, PredictOptions(
                    images=args.images, out=Path(tmp) / f"{name}{r}", onnx=onnx,
                    batch_size=args.batch_size, device="cpu", progress=False))
                times.append(time.perf_counter() - t0)
            whole[name] = n / statistics.median(times)
        nets = _networks(args.run_dir, onnx_dir, args.batch_size)
    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text()
                .splitlines() if ln.startswith("model name")), "?")
    print(f"{n} images from {args.images}; torch threads {torch.get_num_threads()}; CPU {cpu}")
    print(f"{'backend':12s} {'predict images/s':>17s} {'networks images/s':>18s}")
    for name in whole:
        print(f"{name:12s} {whole[name]:17.2f} {nets[name]:18.2f}")


if __name__ == "__main__":
    main()
