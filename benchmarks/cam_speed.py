"""Time every heat-map method: racam vs the grad-cam package, on the same model and input.

    python benchmarks/cam_speed.py                       # full VGG16, 640 x 224, batch 4
    python benchmarks/cam_speed.py --model vgg16_narrow --width 4 --methods gradcam racam

Every (method, implementation) runs once in its own subprocess (fresh model, same seed, same
input), after one untimed no-grad forward pass (library warm-up). Printed per method: our time,
grad-cam's, the speed-up (theirs / ours), our time over the floor, and the peak memory of each.

- floor: one forward pass plus one backward pass to the input with no parameter gradients
  (parameters frozen), in the memory layout racam uses (channels-last on CPU).
- peak memory: on CPU, the growth of the subprocess's peak resident set size (``ru_maxrss``)
  during the timed call (tracemalloc does not see torch's allocations); on CUDA,
  ``torch.cuda.max_memory_allocated`` during the call.
- Score-CAM and Ablation-CAM run on ``--slow-model`` (default: the narrow VGG16 with
  ``--slow-width``, as the issue allows: grad-cam needs many minutes per image on full VGG16),
  each library at its own default batch size unless ``--slow-batch`` sets one for both.
- grad-cam has no RA-CAM and no FGBP; those rows show our time and the floor ratio only.
- Targets: class 1 for every image (the defect class), pre-softmax logit on both sides.
- The methods: every method of racam's registry (``racam.cam.registry``), no ``+fgbp``
  variants unless named with ``--methods``; grad-cam's class of the same name, if any.
- racam's malloc tuning (``racam.heap``) is off unless ``RACAM_MALLOC_TUNING=1`` is set.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time


def _methods() -> list[str]:
    """Every registered method (racam.cam.registry), without the "+fgbp" variants."""
    from racam.cam.registry import method_names

    return method_names(variants=False)


def _slow(method: str) -> bool:
    """Gradient-free methods (Score-CAM, Ablation-CAM: many forward passes) use --slow-model."""
    from racam.cam.registry import get_method

    return not get_method(method).uses_gradients


def _theirs(method: str) -> str | None:
    """grad-cam's class of the same name as ours, if grad-cam has one (not for RA-CAM, FGBP)."""
    import pytorch_grad_cam as pgc

    from racam.cam.registry import get_method

    spec = get_method(method)
    return None if spec.uses_delta or not hasattr(pgc, spec.cls.__name__) else spec.cls.__name__


def _worker(spec: dict) -> dict:
    """Run one timed call in this process; return time and peak memory."""
    import resource

    import torch

    from racam.cam.registry import get_method
    from racam.models import build_classifier, classifier_target_layers

    if spec["threads"]:
        torch.set_num_threads(spec["threads"])
    device = torch.device(spec["device"])
    torch.manual_seed(0)
    model = build_classifier(spec["model"], in_channels=3, width=spec["width"]).to(device).eval()
    x = torch.rand(spec["batch"], 3, *spec["size"], generator=torch.Generator().manual_seed(1))
    x = x.to(device)
    with torch.no_grad():
        model(x[:1])  # warm-up
    modules = dict(model.named_modules())
    method, impl = spec["method"], spec["impl"]
    stages = classifier_target_layers(model)
    layers = [stages[s] for s in get_method(method).default_layers]  # [] for FullGrad

    if impl == "floor":
        def call() -> None:
            flags = [p.requires_grad for p in model.parameters()]
            for p in model.parameters():
                p.requires_grad_(False)
            xi = x.contiguous(memory_format=torch.channels_last) if device.type == "cpu" else x
            xi = xi.detach().requires_grad_()
            torch.autograd.grad(model(xi)[:, 1].sum(), xi)
            for p, f in zip(model.parameters(), flags):
                p.requires_grad_(f)
    elif impl == "ours":
        from racam.cam import build_cam

        kw = {"batch_size": spec["slow_batch"]} if _slow(method) and spec["slow_batch"] else {}
        cam = build_cam(method, model, layers or None, **kw)

        def call() -> None:
            cam(x, 1)
    else:
        import pytorch_grad_cam as pgc
        from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

        cls = getattr(pgc, spec["theirs"])
        cam = cls(model=model, target_layers=[modules[n] for n in layers])
        if _slow(method) and spec["slow_batch"]:
            cam.batch_size = spec["slow_batch"]
        targets = [ClassifierOutputTarget(1)] * spec["batch"]

        def call() -> None:
            cam(input_tensor=x, targets=targets)

    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    for _ in range(spec["repeats"]):
        call()
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = (time.perf_counter() - t0) / spec["repeats"]
    if device.type == "cuda":
        peak_mb = (torch.cuda.max_memory_allocated() - base) / 2**20
    else:
        peak_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024
    return {"seconds": seconds, "peak_mb": peak_mb}


def _spawn(spec: dict, timeout: float) -> dict | None:
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", json.dumps(spec)]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"seconds": float("inf"), "peak_mb": float("nan"), "note": "timeout"}
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("{")]
    if r.returncode != 0 or not lines:
        sys.stderr.write(r.stderr[-2000:])
        return None
    return json.loads(lines[-1])


def _fmt(v: float | None, spec: str = ".2f") -> str:
    return "-" if v is None else format(v, spec)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--model", default="vgg16", choices=["vgg16", "vgg16_narrow"])
    ap.add_argument("--width", type=int, default=4, help="divisor for vgg16_narrow")
    ap.add_argument("--slow-model", default="vgg16_narrow", choices=["vgg16", "vgg16_narrow"],
                    help="model for Score-CAM and Ablation-CAM")
    ap.add_argument("--slow-width", type=int, default=4)
    ap.add_argument("--slow-batch", type=int, default=0,
                    help="channels per forward pass for Score-CAM / Ablation-CAM, both sides "
                         "(0: each library's default: grad-cam 16 / 32, racam 8 on CPU and 32 "
                         "on GPU / 256)")
    ap.add_argument("--size", type=int, nargs=2, default=[640, 224], metavar=("H", "W"))
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--methods", nargs="+", default=None,
                    help="method names (default: every registered method, no +fgbp variants)")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--no-theirs", action="store_true", help="skip grad-cam")
    ap.add_argument("--timeout", type=float, default=900, help="seconds per run")
    args = ap.parse_args(argv)
    if args.worker:
        print(json.dumps(_worker(json.loads(args.worker))))
        return

    def spec(method: str, impl: str) -> dict:
        slow = _slow(method)
        return {"method": method, "impl": impl, "model": args.slow_model if slow else args.model,
                "width": args.slow_width if slow else args.width, "size": args.size,
                "batch": args.batch, "repeats": args.repeats, "threads": args.threads,
                "device": args.device, "slow_batch": args.slow_batch,
                "theirs": None if args.no_theirs else _theirs(method)}

    import torch

    from racam import heap

    print(f"# {time.strftime('%Y-%m-%d %H:%M')}, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs, torch {torch.__version__}, threads "
          f"{args.threads or torch.get_num_threads()}, device {args.device}, malloc tuning "
          f"{'on' if heap.tuning_requested() else 'off'} ({heap.ENV})")
    print(f"# input {args.batch} x 3 x {args.size[0]} x {args.size[1]}; gradient methods on "
          f"{args.model}{'' if args.model == 'vgg16' else f' /{args.width}'}, Score/Ablation "
          f"on {args.slow_model}{'' if args.slow_model == 'vgg16' else f' /{args.slow_width}'}"
          f" (batch {args.slow_batch or 'library defaults'})")
    floors: dict[tuple[str, int], dict | None] = {}
    rows = []
    for method in args.methods or _methods():
        s = spec(method, "ours")
        key = (s["model"], s["width"])
        if key not in floors:
            floors[key] = _spawn(spec(method, "floor"), args.timeout)
        ours = _spawn(s, args.timeout)
        theirs = None
        if s["theirs"]:
            theirs = _spawn(spec(method, "theirs"), args.timeout)
        floor = floors[key]
        o = ours["seconds"] if ours else None
        t = theirs["seconds"] if theirs else None
        f = floor["seconds"] if floor else None
        model = s["model"] + ("" if s["model"] == "vgg16" else f"/{s['width']}")
        rows.append((method, model, o, t, t / o if o and t else None, o / f if o and f else None,
                     ours["peak_mb"] if ours else None, theirs["peak_mb"] if theirs else None))
        print(f"  done {method}: ours {_fmt(o)} s, grad-cam {_fmt(t)} s", file=sys.stderr,
              flush=True)
    print()
    print("| method | model | ours (s) | grad-cam (s) | speed-up | ours / floor "
          "| ours peak (MB) | grad-cam peak (MB) |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for m, model, o, t, r, fl, po, pt in rows:
        speed = "-" if r is None else f"{r:.1f}x"
        print(f"| {m} | {model} | {_fmt(o)} | {_fmt(t)} | {speed} | {_fmt(fl)} "
              f"| {_fmt(po, '.0f')} | {_fmt(pt, '.0f')} |")
    for (model, width), fl in floors.items():
        name = model + ("" if model == "vgg16" else f"/{width}")
        print(f"\nfloor ({name}): {_fmt(fl['seconds'] if fl else None)} s, peak "
              f"{_fmt(fl['peak_mb'] if fl else None, '.0f')} MB")


if __name__ == "__main__":
    main()
