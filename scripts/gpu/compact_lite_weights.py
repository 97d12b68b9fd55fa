"""A compact copy of the offline ImageNet EfficientNet-Lite weights, for a machine that gets them
carried (64 MiB for everything carried, KolektorSDD included): the ImageNet head (``_fc``, 5 MB,
replaced by a 2-class head anyway) left out and every floating tensor stored in float16, about
40 % of the package file. Load it with ``classifier.weights=PATH`` (or
``segmentation.encoder_weights=PATH``); racam converts it back to float32. Rounding to float16
changes a weight by at most 2**-11 of its value.

    python scripts/gpu/compact_lite_weights.py 2 .device/weights/efficientnet-lite2-fp16.pth
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from racam.models.registry import lite_weights_path, load_state_dict_file


def compact(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``state_dict`` without the ImageNet head, floating tensors in float16."""
    return {k: v.half() if v.is_floating_point() else v for k, v in state_dict.items()
            if not k.startswith(("_fc.", "classifier."))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("variant", type=int, choices=[0, 1, 2])
    ap.add_argument("dest", type=Path)
    a = ap.parse_args()
    src = lite_weights_path(a.variant)
    a.dest.parent.mkdir(parents=True, exist_ok=True)
    torch.save(compact(load_state_dict_file(src)), a.dest)
    mib = a.dest.stat().st_size / 2**20
    print(f"{a.dest}: {mib:.1f} MiB (from {src.stat().st_size / 2**20:.1f})")


if __name__ == "__main__":
    main()
