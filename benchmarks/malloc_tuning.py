"""Score-CAM on CPU with and without racam's malloc tuning (``racam.heap``): ms per masked image.

    OMP_NUM_THREADS=1 python benchmarks/malloc_tuning.py             # about a minute
    python benchmarks/malloc_tuning.py --width 4 --batches 1 8 32 --threads 2

Every (batch size, tuning) pair runs in its own fresh interpreter, because the tuning changes
glibc's settings for the rest of the process: same model (narrow VGG16, seed 0), same input
(``--images`` random images of ``--size`` H W, target class 1). One untimed call on the same
input first, then ``--repeats`` timed calls. "masked image" = one image of a Score-CAM forward
pass (the first, unmasked pass included in the time, not in the count). Tuning on =
``ScoreCAM(..., reuse_freed_memory=True)``; off = the default (``RACAM_MALLOC_TUNING`` unset).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time


def _worker(spec: dict) -> dict:
    """One configuration in this process: ms per masked image and the masked image count."""
    import torch

    from racam.cam import ScoreCAM
    from racam.models import build_classifier

    torch.set_num_threads(spec["threads"])
    torch.manual_seed(0)
    model = build_classifier("vgg16_narrow", in_channels=3, width=spec["width"]).eval()
    x = torch.rand(spec["images"], 3, *spec["size"], generator=torch.Generator().manual_seed(1))
    cam = ScoreCAM(model, batch_size=spec["batch"], reuse_freed_memory=spec["tuning"])
    seen: list[int] = []
    handle = model.register_forward_pre_hook(lambda _m, args: seen.append(args[0].shape[0]))
    cam(x, 1)  # warm-up, and the count of masked images
    handle.remove()
    masked = sum(seen) - x.shape[0]
    t0 = time.perf_counter()
    for _ in range(spec["repeats"]):
        cam(x, 1)
    seconds = (time.perf_counter() - t0) / spec["repeats"]
    return {"ms_per_image": 1000 * seconds / masked, "masked": masked, "seconds": seconds}


def _spawn(spec: dict) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "RACAM_MALLOC_TUNING"}
    r = subprocess.run([sys.executable, os.path.abspath(__file__), "--worker", json.dumps(spec)],
                       capture_output=True, text=True, env=env, check=False)
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("{")]
    if r.returncode != 0 or not lines:
        raise SystemExit(f"worker failed: {r.stderr[-2000:]}")
    return json.loads(lines[-1])


def main(argv: list[str] | None = None) -> None:
    """Print a table: masked images per pass, ms per masked image off / on, ratio."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--width", type=int, default=8, help="channel divisor of the VGG16")
    ap.add_argument("--size", type=int, nargs=2, default=[640, 224], metavar=("H", "W"))
    ap.add_argument("--images", type=int, default=2)
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 8, 32],
                    help="masked images per forward pass")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1, help="torch threads")
    args = ap.parse_args(argv)
    if args.worker:
        print(json.dumps(_worker(json.loads(args.worker))))
        return

    from racam import heap

    print(f"# {time.strftime('%Y-%m-%d %H:%M')}, {platform.machine()}, {os.cpu_count()} CPUs, "
          f"{args.threads} torch thread(s), glibc tuning available: {heap.available()}")
    print(f"# Score-CAM, vgg16_narrow/{args.width}, {args.images} x 3 x {args.size[0]} x "
          f"{args.size[1]}, S5, {args.repeats} timed call(s) after one untimed")
    rows = []
    for batch in args.batches:
        got = {}
        for tuning in (False, True):
            got[tuning] = _spawn({"width": args.width, "size": args.size,
                                  "images": args.images, "batch": batch, "tuning": tuning,
                                  "repeats": args.repeats, "threads": args.threads})
        rows.append((batch, got[False], got[True]))
        print(f"  done batch {batch}", file=sys.stderr, flush=True)
    print()
    print("| masked images per pass | masked images | off (ms / image) | on (ms / image) "
          "| off / on |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    for batch, off, on in rows:
        print(f"| {batch} | {off['masked']} | {off['ms_per_image']:.1f} | "
              f"{on['ms_per_image']:.1f} | {off['ms_per_image'] / on['ms_per_image']:.2f} |")


if __name__ == "__main__":
    main()
