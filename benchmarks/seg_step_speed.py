"""Steps per second of one segmentation training step on crops: fp32 against bf16 autocast,
with and without channels-last, in one run (the CPU recipe's network by default).

    python benchmarks/seg_step_speed.py [--arch unet] [--encoder efficientnet_lite0]
                                        [--crop 256 256] [--batch 8] [--steps 6] [--threads 2]

Each variant builds the network afresh (same seed), runs two warm-up steps (oneDNN primitive
creation), then times ``--steps`` steps (forward, CE + defect Dice loss, backward, AdamW step) and
prints the median seconds per step and steps/s. Run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch


def measure(arch: str, encoder: str, crop: tuple[int, int], batch: int, steps: int,
            bf16: bool, channels_last: bool) -> float:
    """Median seconds of one training step."""
    from racam.precision import resolve_precision
    from racam.segmentation import build_segmentation
    from racam.segmentation.losses import segmentation_loss

    torch.manual_seed(0)
    model = build_segmentation(arch, encoder, 1, None, 2)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    loss_fn = segmentation_loss("ce+dice_defect")
    w, h = crop
    x = torch.rand(batch, 1, h, w).contiguous(memory_format=fmt)
    y = (torch.rand(batch, h, w) > 0.99).long()
    times = []
    for i in range(steps + 2):
        t0 = time.perf_counter()
        with resolve_precision("bf16" if bf16 else "float32", torch.device("cpu")).autocast():
            logits = model(x)
        loss = loss_fn(logits.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if i >= 2:
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", default="unet")
    ap.add_argument("--encoder", default="efficientnet_lite0")
    ap.add_argument("--crop", type=int, nargs=2, default=(256, 256), metavar=("W", "H"))
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    print(f"{a.arch} / {a.encoder}, crops {a.crop[0]}x{a.crop[1]}, batch {a.batch}, "
          f"{a.threads} threads, torch {torch.__version__}")
    print(f"{'variant':<26}{'s/step':>9}{'steps/s':>9}{'vs fp32':>9}")
    base = None
    for bf16 in (False, True):
        for cl in (False, True):
            s = measure(a.arch, a.encoder, tuple(a.crop), a.batch, a.steps, bf16, cl)
            base = base or s
            name = ("bf16 autocast" if bf16 else "fp32") + (" + channels-last" if cl else "")
            print(f"{name:<26}{s:>9.3f}{1 / s:>9.2f}{base / s:>8.2f}x")


if __name__ == "__main__":
    main()
