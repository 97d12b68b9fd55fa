"""Images per second of classifier training steps and RA-CAM heat maps with 1 and 2 processes
under torchrun (DistributedDataParallel; gloo on CPU, NCCL on CUDA).

Usage::

    python benchmarks/ddp_scaling.py [--procs 1,2] [--steps 12] [--images 48] [--device cpu]

The bundled KolektorSDD sample at 128 x 320 (the test suite's size), ``vgg16_narrow`` width 8
with BatchNorm, global batch 8 (each of N ranks takes 8/N images per step, as ``racam run`` under
torchrun does), SGD; RA-CAM (delta 50, max fusion) heat maps in batches of 4, the images split
across ranks with :func:`racam.distributed.sharded_map`. For each N the script starts
``torchrun --standalone --nproc_per_node N`` on itself; every rank runs one thread
(``OMP_NUM_THREADS=1``), so N processes use N cores. Two warm-up steps/batches are not timed;
the timed part runs between barriers and counts every rank's images.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time


def worker(steps: int, images: int, device_name: str) -> None:
    """One rank: time training steps and heat maps; rank 0 prints one JSON line."""
    import torch
    from torch.nn import functional as F

    from racam import distributed
    from racam.cam.registry import build_cam, cam_options, get_method
    from racam.config import load_config
    from racam.models import build_classifier, classifier_target_layers
    from racam.stages.folds import fold_datasets
    from racam.training import global_batch_loss, resolve_device, wrap_ddp

    distributed.init_from_env()
    dev = resolve_device(device_name)
    cfg = load_config("demo", {"data.size": [128, 320], "data.channels": 1})  # the sample
    data = fold_datasets(cfg.data, 0, cfg.seed)
    n, r = distributed.world_size(), distributed.rank()

    torch.manual_seed(0)
    model = build_classifier("vgg16_narrow", width=8, batch_norm=True).to(dev)
    net = wrap_ddp(model, dev)
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    batch = 8
    pool = [data.train_all[i] for i in range(batch * 4)]

    def step(k: int) -> None:
        part = pool[(k * batch) % len(pool):][:batch][r::n]
        x = torch.stack([s.image for s in part]).to(dev)
        y = torch.tensor([s.label for s in part], device=dev)
        loss = F.cross_entropy(net(x), y, reduction="sum")
        loss, _, _ = global_batch_loss(loss, len(y), len(y))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    net.train()
    for k in range(2):
        step(k)
    distributed.barrier()
    t0 = time.perf_counter()
    for k in range(steps):
        step(k)
    distributed.barrier()
    train_ips = steps * batch / (time.perf_counter() - t0)

    model.eval()
    spec = get_method("racam")
    stages = classifier_target_layers(model)
    cam = build_cam("racam", model, target_layers=[stages[s] for s in spec.default_layers],
                    **cam_options("racam", delta=50, fusion="max"))
    test = data.test
    todo = [i % len(test) for i in range(images)]

    def maps(indices: list[int]) -> list[float]:
        out = []
        for i in range(0, len(indices), 4):
            x = torch.stack([test[j].image for j in indices[i:i + 4]]).to(dev)
            out.extend(float(m.mean()) for m in cam(x, targets=1))
        return out

    maps(todo[:4 * n])  # warm-up
    distributed.barrier()
    t0 = time.perf_counter()
    distributed.sharded_map(maps, todo, block=4)
    cam_ips = images / (time.perf_counter() - t0)
    if distributed.is_main():
        print(json.dumps({"procs": n, "train_images_per_s": train_ips,
                          "heatmap_images_per_s": cam_ips}), flush=True)
    distributed.shutdown()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--procs", default="1,2", help="comma-separated process counts")
    ap.add_argument("--steps", type=int, default=12, help="timed training steps (batch 8)")
    ap.add_argument("--images", type=int, default=48, help="heat maps to time")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args.steps, args.images, args.device)
        return
    env = dict(os.environ, OMP_NUM_THREADS="1")
    rows = []
    for n in (int(p) for p in args.procs.split(",")):
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc_per_node", str(n), __file__, "--worker", "--steps", str(args.steps),
               "--images", str(args.images), "--device", args.device]
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
        rows.append(json.loads([ln for ln in out.splitlines() if ln.startswith("{")][-1]))
    base = rows[0]
    print(f"{'processes':>9}  {'train img/s':>11}  {'speed-up':>8}  {'heat maps img/s':>15}  "
          f"{'speed-up':>8}")
    for row in rows:
        print(f"{row['procs']:>9}  {row['train_images_per_s']:>11.2f}  "
              f"{row['train_images_per_s'] / base['train_images_per_s']:>8.2f}  "
              f"{row['heatmap_images_per_s']:>15.2f}  "
              f"{row['heatmap_images_per_s'] / base['heatmap_images_per_s']:>8.2f}")
    print(f"cpus: {os.cpu_count()}, device: {args.device}, one thread per process")


if __name__ == "__main__":
    main()
