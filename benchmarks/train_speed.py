"""Seconds per image of one training step (forward + backward + SGD step) per network.

Usage::

    python benchmarks/train_speed.py [--budget 300] [--cap 60] [--device cpu] [--batch 2]
                                     [--threads 1] [--only vgg16,unet]

Networks: the classifier backbones (vgg16, vgg16_narrow width 4 and 8, efficientnet_lite0) and
the segmentation networks (deeplabv3, deeplabv3plus, unet x resnet18, resnet50, mobilenet_v2
encoders), 1-channel input, at KolektorSDD CPU scale (W=256, H=704) and paper scale (W=512,
H=1408).

Each measurement runs in its own subprocess (so one network's memory does not slow the next)
and is killed after ``--cap`` seconds (shown as ``>cap``). In it: one warm-up step (allocations,
oneDNN primitive creation; often several times slower), then the median of ``--repeats`` timed
steps. Half scale is measured first; at paper scale a network whose run would not fit the
remaining ``--budget`` (estimated from 4x its half-scale time) is not run and its row shows that
estimate marked ``~``. The peak resident memory of each measuring process is reported too.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

SCALES = {"half": (256, 704), "paper": (512, 1408)}
CLASSIFIERS = {
    "vgg16 (full)": ("vgg16", 1),
    "vgg16_narrow w4": ("vgg16_narrow", 4),
    "vgg16_narrow w8": ("vgg16_narrow", 8),
    "efficientnet_lite0": ("efficientnet_lite0", 1),
}
SEGMENTATION = [f"{a}-{e}" for a in ("deeplabv3", "deeplabv3plus", "unet")
                for e in ("resnet18", "resnet50", "mobilenet_v2")]
NETWORKS = list(CLASSIFIERS) + SEGMENTATION


def _builder(name: str) -> tuple[str, Callable]:
    from racam.models import build_classifier
    from racam.segmentation import build_segmentation

    if name in CLASSIFIERS:
        backbone, width = CLASSIFIERS[name]
        return "cls", lambda: build_classifier(backbone, width=width)
    arch, enc = name.split("-", 1)
    return "seg", lambda: build_segmentation(arch, enc, in_channels=1)


def measure(name: str, scale: str, batch: int, repeats: int, device_name: str,
            threads: int = 0) -> dict:
    """Run in the child: seconds per image of a training step and peak RSS (MiB)."""
    import torch
    from torch.nn import functional as F

    from racam.training import resolve_device

    if threads > 0:
        torch.set_num_threads(threads)

    device = resolve_device(device_name)
    torch.manual_seed(0)
    kind, build = _builder(name)
    model = build().to(device).train()
    w, h = SCALES[scale]
    x = torch.rand(batch, 1, h, w, device=device)
    y = (torch.randint(0, 2, (batch,), device=device) if kind == "cls"
         else torch.randint(0, 2, (batch, h, w), device=device))
    opt = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)

    def step() -> float:
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - t0

    first = step()  # warm-up: allocations, oneDNN primitive creation
    sec = statistics.median(step() for _ in range(max(1, repeats)))
    return {"per_image": sec / batch, "warmup_per_image": first / batch,
            "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "threads": torch.get_num_threads()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--budget", type=float, default=300.0, help="wall-clock seconds in all")
    ap.add_argument("--cap", type=float, default=60.0, help="seconds per measurement")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--threads", type=int, default=0,
                    help="torch intra-op threads (0: torch's default). On a machine shared with "
                         "other jobs, 1 thread gives stable figures; 2 competing threads can be "
                         "many times slower")
    ap.add_argument("--only", default="", help="comma-separated substrings of network names")
    ap.add_argument("--child", nargs=2, metavar=("NETWORK", "SCALE"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(measure(*args.child, args.batch, args.repeats, args.device,
                                 args.threads)))
        return 0

    only = [o for o in args.only.split(",") if o]
    nets = [n for n in NETWORKS if not only or any(o in n for o in only)]
    start = time.perf_counter()
    results: dict[tuple[str, str], str] = {}
    half: dict[str, float] = {}
    threads = "?"
    for scale in SCALES:
        for name in nets:
            left = args.budget - (time.perf_counter() - start)
            est = 4.0 * half[name] if name in half else None
            need = None if est is None else 4.0 + est * args.batch * (1 + args.repeats)
            if left <= 5 or (need is not None and need > left):
                results[(name, scale)] = f"~{est:.2f}" if est is not None else "not run"
                continue
            cmd = [sys.executable, __file__, "--child", name, scale, "--batch", str(args.batch),
                   "--repeats", str(args.repeats), "--device", args.device,
                   "--threads", str(args.threads)]
            try:
                out = subprocess.run(cmd, capture_output=True, text=True, check=True,
                                     timeout=min(args.cap, left))
                r = json.loads(out.stdout.strip().splitlines()[-1])
                threads = r["threads"]
                results[(name, scale)] = f"{r['per_image']:.3f} ({r['peak_mib'] / 1024:.1f} GiB)"
                if scale == "half":
                    half[name] = r["per_image"]
            except subprocess.TimeoutExpired:
                results[(name, scale)] = f">{min(args.cap, left):.0f} s/step"
            except subprocess.CalledProcessError as exc:
                results[(name, scale)] = "failed: " + (exc.stderr.strip().splitlines() or
                                                       ["?"])[-1][:60]
            print(f"{name:28s} {scale:6s} {results[(name, scale)]:>22s}  "
                  f"[{time.perf_counter() - start:.0f} s]", file=sys.stderr, flush=True)
    header = " | ".join(f"s/img {s} {w}x{h} (peak RSS)" for s, (w, h) in SCALES.items())
    print(f"\n| network | {header} |")
    print("| --- | " + " | ".join("---" for _ in SCALES) + " |")
    for name in nets:
        print(f"| {name} | " + " | ".join(results.get((name, s), "-") for s in SCALES) + " |")
    print(f"\n({args.device}, {threads} torch threads, batch {args.batch}, forward+backward+SGD "
          f"step; '~' = estimated as 4x the half-scale time, not run; total "
          f"{time.perf_counter() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
