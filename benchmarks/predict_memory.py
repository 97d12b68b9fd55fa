"""Peak memory of ``racam predict`` against image size, up to a 16384 x 11500 line-scan image.

    python benchmarks/predict_memory.py MODEL [--sizes 1000x1250,6000x4000,16384x11500]

``MODEL`` is a finished run or an export bundle (what ``racam predict`` takes). For each size a
grey PNG of that size is made from the real KolektorSDD sample images bundled with racam
(tiled side by side), then ``racam predict`` runs on it alone in a fresh process; printed: the
image's megapixels and 8-bit size, the number of tiles (0: not tiled), the child's peak RSS
(``VmHWM`` of ``/proc/self/status``: unlike ``getrusage``, not inherited from the parent)
and seconds. The child raises PIL's decompression-bomb
limit (``Image.MAX_IMAGE_PIXELS = None``) before reading: PIL refuses images over 179 M
pixels, and image reading (its own pixel limit) is not what this measures.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

CHILD = """
import sys
from pathlib import Path
from PIL import Image
Image.MAX_IMAGE_PIXELS = None
from racam.cli import main
sys.argv = ['racam'] + sys.argv[1:]
try:
    main()
finally:
    status = Path('/proc/self/status').read_text().splitlines()
    hwm = [ln for ln in status if ln.startswith('VmHWM')]
    print('PEAK', int(hwm[0].split()[1]) / 1024.0, file=sys.stderr)
"""


def make_image(path: Path, size: tuple[int, int]) -> None:
    """A grey PNG of ``size`` ``(w, h)`` tiled from the bundled sample's images."""
    from racam.data.registry import BUILTIN_ROOTS

    files = sorted(BUILTIN_ROOTS["builtin:ksdd_sample"].glob("kos*/Part*.jpg"))[:8]
    ims = [np.asarray(Image.open(f).convert("L")) for f in files]
    h0 = min(a.shape[0] for a in ims)
    strip = np.concatenate([a[:h0] for a in ims], axis=1)  # 8 images side by side
    reps = (-(-size[1] // strip.shape[0]), -(-size[0] // strip.shape[1]))
    big = np.tile(strip, reps)[:size[1], :size[0]]
    Image.fromarray(np.ascontiguousarray(big)).save(path, compress_level=1)


def measure(model: Path, folder: Path, out: Path) -> tuple[float, float]:
    """``(peak RSS MB, seconds)`` of ``racam predict`` on ``folder`` in a child process."""
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", CHILD, "predict", str(model), "--images",
                             str(folder), "--out", str(out), "--device", "cpu", "--quiet"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, err = proc.communicate()
    seconds = time.perf_counter() - t0
    text = err.decode()
    if proc.returncode != 0:
        raise SystemExit(f"racam predict failed on {folder}: {text.strip()[-500:]}")
    return float(text.rsplit("PEAK", 1)[1].split()[0]), seconds


def main() -> None:
    from racam.deploy.inference import Inferencer

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model", type=Path)
    ap.add_argument("--sizes", default="500x1250,2000x5000,6000x4000,16384x11500")
    args = ap.parse_args()
    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes.split(",")]
    inf = Inferencer.open(args.model, device="cpu")
    print(f"model {args.model} ({inf.backend}, input {inf.meta.size[0]}x{inf.meta.size[1]}, "
          f"scale {inf.scale()[0]:.3f}x{inf.scale()[1]:.3f}); OMP_NUM_THREADS="
          f"{os.environ.get('OMP_NUM_THREADS', '1')}; load {os.getloadavg()[0]:.2f}")
    print(f"{'image':>12s} {'Mpixels':>8s} {'8-bit MB':>8s} {'tiles':>6s} {'peak RSS MB':>11s} "
          f"{'seconds':>8s}")
    with tempfile.TemporaryDirectory() as name:
        for w, h in sizes:
            folder = Path(name) / f"{w}x{h}"
            folder.mkdir()
            make_image(folder / "image.png", (w, h))
            tiling = inf.tiling((w, h))
            tiles = len(tiling.xs) * len(tiling.ys) if tiling is not None else 0
            peak, secs = measure(args.model, folder, Path(name) / f"out-{w}x{h}")
            print(f"{w:>5d}x{h:<6d} {w * h / 1e6:8.1f} {w * h / 2**20:8.0f} {tiles:6d} "
                  f"{peak:11.0f} {secs:8.1f}", flush=True)
            (folder / "image.png").unlink()


if __name__ == "__main__":
    main()
