"""Small builders shared by several test modules."""

from __future__ import annotations

import contextlib
import io
import sys

import torch
from torch import nn

from racam.models.vgg import VGG16LeakyReLU

#: ``--set`` values that read the bundled sample as KolektorSDD (the demo's data before the demo
#: read it as a folder dataset): for tests that need its items as folds.
KSDD_SAMPLE = {"data.dataset": "ksdd", "data.root": "builtin:ksdd_sample",
               "data.split_file": "demo_split.pyb", "data.folds": [0], "data.plan": "off"}


def tiny_vgg(seed: int = 0, slope: float = 0.01, dropout: float = 0.5) -> VGG16LeakyReLU:
    """A width-16 VGG16 in eval mode with non-trivial biases and default-initialised linear
    layers (VGG's N(0, 0.01) head would make every map nearly flat)."""
    torch.manual_seed(seed)
    m = VGG16LeakyReLU(width=16, negative_slope=slope, dropout=dropout)
    for mod in m.modules():
        if isinstance(mod, nn.Linear):
            mod.reset_parameters()
        if isinstance(mod, (nn.Conv2d, nn.Linear)):
            nn.init.normal_(mod.bias, 0, 0.1)
    return m.eval()


def tiny_folder_run(root, out, classifier_epochs: int = 1) -> list[str]:
    """CLI arguments of ``racam run folder-example`` on ``root`` at 64 x 64 with a tiny
    narrow VGG16 and one segmentation epoch, writing to ``out`` (seconds on a CPU)."""
    return ["run", "folder-example", "--quiet", "--out", str(out),
            "--set", f"data.root={root}", "--set", "data.size=[64, 64]",
            "--set", "data.channels=1", "--set", "classifier.backbone=vgg16_narrow",
            "--set", "classifier.weights=null", "--set", "classifier.width=16",
            "--set", "classifier.batch_norm=true",
            "--set", f"classifier.epochs={classifier_epochs}",
            "--set", "segmentation.epochs=1", "--set", "device=cpu"]


def racam(*args: object) -> tuple[int, str, str]:
    """Run the ``racam`` entry point in this process: (exit code, stdout, stderr)."""
    from racam.cli import main

    out, err = io.StringIO(), io.StringIO()
    argv, sys.argv = sys.argv, ["racam", *map(str, args)]
    code = 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    finally:
        sys.argv = argv
    return code, out.getvalue(), err.getvalue()
