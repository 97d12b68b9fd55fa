"""Peak memory of the pseudo-labels' heat maps at enlarged input scales (``cam.scale_candidates``).

    python benchmarks/cam_memory.py [--size 288x704] [--batch 4] [--scales 1 2 1,1.5,2]

RA-CAM (mean fusion, delta 50) on EfficientNet-Lite0 with its offline ImageNet weights, one
channel, as ``folder-example`` computes it: a batch of ``--batch`` real images of the bundled
KolektorSDD sample resized to ``--size`` (width x height), its maps averaged over each set of
``--scales`` (:func:`racam.pseudo.tta.tta_cam`). Each set runs in a fresh child process, twice:
as racam runs it (an enlarged batch in passes of :func:`racam.pseudo.tta.images_per_pass`
images) and as one pass of the whole batch (the behaviour before). Printed: the child's peak
RSS (``VmHWM``), seconds, and the sum of the maps (equal in both rows: the passes change no
value). Target: the scales 1, 1.5, 2 within 1.3 times the peak of scale 1 alone.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

CHILD = """
import sys, time
from pathlib import Path
import numpy as np, torch
from PIL import Image
import racam.pseudo.tta as tta
from racam.cam import build_cam
from racam.data.registry import BUILTIN_ROOTS
from racam.models import build_classifier, classifier_target_layers

width, height, batch, whole = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[5]
scales = [float(s) for s in sys.argv[4].split(",")]
if whole == "1":
    tta.images_per_pass = lambda n, s: n
torch.manual_seed(0)
model = build_classifier("efficientnet_lite0", in_channels=1, weights="imagenet").eval()
layers = list(classifier_target_layers(model).values())
cam = tta.tta_cam(build_cam("racam", model, target_layers=layers, delta=50, fusion="mean"), scales)
files = sorted(BUILTIN_ROOTS["builtin:ksdd_sample"].glob("kos*/Part*.jpg"))[:batch]
x = torch.stack([torch.from_numpy(np.asarray(Image.open(f).convert("L").resize((width, height)),
                                             dtype=np.float32) / 255)[None] for f in files])
t0 = time.perf_counter()
maps = cam(x, targets=1)
seconds = time.perf_counter() - t0
hwm = [ln for ln in Path("/proc/self/status").read_text().splitlines() if ln.startswith("VmHWM")]
print(int(hwm[0].split()[1]) / 1024.0, seconds, float(maps.sum()))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="288x704", help="input width x height (KolektorSDD's plan)")
    ap.add_argument("--batch", type=int, default=4, help="cam.batch_size")
    ap.add_argument("--scales", nargs="+", default=["1", "2", "1,1.5,2"])
    args = ap.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    print(f"RA-CAM on Lite0, {args.batch} images of {width}x{height}, "
          f"{env['OMP_NUM_THREADS']} thread(s)")
    print(f"{'scales':>10} {'how':>12} {'peak MB':>9} {'seconds':>8} {'map sum':>12}")
    for scales in args.scales:
        for whole, how in (("0", "in passes"), ("1", "whole batch")):
            out = subprocess.run([sys.executable, "-c", CHILD, str(width), str(height),
                                  str(args.batch), scales, whole],
                                 env=env, capture_output=True, text=True, check=True).stdout
            peak, seconds, total = (float(v) for v in out.split())
            print(f"{scales:>10} {how:>12} {peak:9.0f} {seconds:8.1f} {total:12.3f}")


if __name__ == "__main__":
    main()
