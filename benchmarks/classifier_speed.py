"""Seconds per epoch of the ksdd-cpu classifier: float32 against bfloat16 autocast +
channels-last and ``torch.compile``, with and without the decoded-image store
(:mod:`racam.data.decoded`); ``--backbone efficientnet_lite0`` times the folder preset's
ImageNet Lite0 instead of the narrow VGG16.

Usage::

    RACAM_DATA=/work/shared/data OMP_NUM_THREADS=1 python benchmarks/classifier_speed.py \\
        [--epochs 3] [--samples 48] [--fold 0] [--modes fp32,bf16-cl,fp32-compile]
        [--store both] [--backbone efficientnet_lite0] [--batch 7]

With ``RACAM_DATA`` set: fold ``--fold`` of KolektorSDD as ``ksdd-cpu`` loads it (training part
with flips, validation part); else random images of ksdd-cpu's size (no decoding, so
``--store`` changes nothing). Each (mode, store) pair trains in its own subprocess, in a fresh
temporary folder, from the same seed: ``--epochs`` epochs of ``--samples`` draws (ksdd-cpu's
batch size, sampler and schedule otherwise), validation included as a run pays it. Printed: the
seconds of every epoch (the first also pays one-time costs: oneDNN primitives, the first
decoding) and the median of the later ones, and the last epoch's validation AUROC (a sanity
check only: a few epochs say nothing about the AUROC a full schedule reaches). Modes:
``fp32`` (``classifier.precision: float32``), ``bf16`` (bfloat16 autocast), ``bf16-cl``
(bfloat16 autocast + ``classifier.channels_last``); ``-compile`` after any of them adds
``classifier.compile`` (its first epoch pays the compilation).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import tempfile

MODES = {"fp32": ("float32", False), "bf16": ("bf16", False), "bf16-cl": ("bf16", True)}
#: Classifier keys of the folder preset's backbone (``--backbone efficientnet_lite0``).
LITE0 = {"backbone": "efficientnet_lite0", "weights": "imagenet", "lr": 0.01,
         "warmup_epochs": 0, "batch_norm": False}


def _datasets(fold: int, n_random: int = 64):
    """(train, validation) of ksdd-cpu's fold, or random images of its size."""
    import torch

    from racam.config import load_config
    from racam.data.sample import Sample

    cfg = load_config("ksdd-cpu")
    if os.environ.get("RACAM_DATA"):
        from racam.stages.folds import fold_datasets

        fd = fold_datasets(cfg.data, fold, cfg.seed)
        return fd.train, fd.val
    width, height = cfg.data.size

    class Random(torch.utils.data.Dataset):
        def __init__(self, n: int, seed: int) -> None:
            g = torch.Generator().manual_seed(seed)
            self.images = torch.rand(n, 1, height, width, generator=g)
            self.labels = [k % 2 for k in range(n)]

        def __len__(self) -> int:
            return len(self.labels)

        def __getitem__(self, i: int) -> Sample:
            return Sample(image=self.images[i].clone(), label=self.labels[i], id=str(i),
                          original_size=(width, height))

    return Random(n_random, 0), Random(n_random // 4, 1)


def child(mode: str, store: bool, epochs: int, samples: int, fold: int, backbone: str,
          batch: int | None) -> dict:
    """Train in this process; the epochs' seconds and the last validation AUROC."""
    from racam.classifier import train_classifier
    from racam.config import load_config

    if not store:
        os.environ["RACAM_DECODED_CACHE_MB"] = "0"
    base, _, compile_ = mode.partition("-compile")
    precision, channels_last = MODES[base]
    cfg = dataclasses.replace(load_config("ksdd-cpu").classifier, epochs=epochs,
                              samples_per_epoch=samples, precision=precision,
                              channels_last=channels_last, candidates=1, restarts=0,
                              compile=mode.endswith("-compile"),
                              **(LITE0 if backbone == "efficientnet_lite0" else {}),
                              **({"batch_size": batch} if batch else {}))
    train, val = _datasets(fold)
    with tempfile.TemporaryDirectory() as out:
        res = train_classifier(cfg, train, val, out, seed=fold, device="cpu", progress=False)
    return {"seconds": [round(h["seconds"], 2) for h in res.history],
            "val_auroc": res.history[-1]["val_auroc"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--samples", type=int, default=48)
    ap.add_argument("--fold", type=int, default=0)
    ap.add_argument("--modes", default="fp32,bf16-cl")
    ap.add_argument("--store", choices=("on", "off", "both"), default="on")
    ap.add_argument("--backbone", choices=("vgg16_narrow", "efficientnet_lite0"),
                    default="vgg16_narrow")
    ap.add_argument("--batch", type=int, help="batch size (default: ksdd-cpu's 8)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        mode, store = args.child.split(":")
        print(json.dumps(child(mode, store == "on", args.epochs, args.samples, args.fold,
                               args.backbone, args.batch)))
        return
    data = f"KolektorSDD fold {args.fold}" if os.environ.get("RACAM_DATA") else "random"
    print(f"classifier of ksdd-cpu ({args.backbone}, batch {args.batch or 8}), {data}, "
          f"{args.epochs} epochs of {args.samples} draws, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")
    stores = ["on", "off"] if args.store == "both" else [args.store]
    for mode in args.modes.split(","):
        for store in stores:
            out = subprocess.run([sys.executable, __file__, "--child", f"{mode}:{store}",
                                  "--epochs", str(args.epochs), "--samples", str(args.samples),
                                  "--fold", str(args.fold), "--backbone", args.backbone]
                                 + (["--batch", str(args.batch)] if args.batch else []),
                                 capture_output=True, text=True, check=True)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            later = r["seconds"][1:] or r["seconds"]
            print(f"{mode:8s} store {store:3s}: s/epoch {r['seconds']}, median after the "
                  f"first {statistics.median(later):.2f}, last val AUROC {r['val_auroc']}")


if __name__ == "__main__":
    main()
