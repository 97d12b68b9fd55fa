"""Small builders shared by several test modules."""

from __future__ import annotations

import contextlib
import io
import sys
from pathlib import Path

import torch
from torch import nn

from racam.models.vgg import VGG16LeakyReLU

#: The suite's base config: the bundled sample as a folder, small networks from scratch (seconds).
TINY_CFG = str(Path(__file__).resolve().parent / "configs" / "tiny.yaml")

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


#: KolektorSDD items of :func:`ksdd_folder`: (item, defective part), and the defect-free Part0s.
KSDD_DEFECTS = [("kos01", 5), ("kos02", 6), ("kos03", 2), ("kos04", 3), ("kos05", 5),
                ("kos06", 7), ("kos07", 1), ("kos08", 2), ("kos09", 6)]


def ksdd_folder(ksdd_root, root) -> dict[str, list[str]]:
    """A folder dataset (``good/``, ``defect/``, ``masks/``, ``split.yaml``) of real KolektorSDD
    images: 9 defective parts with their masks and 9 defect-free ones; train: 7 defective and
    6 defect-free, test: the other 2 and 3. Returns the stems by ``train``/``test`` and
    ``defect``."""
    import shutil

    for sub in ("good", "defect", "masks"):
        (root / sub).mkdir(parents=True)
    defects, goods = [], []
    for item, part in KSDD_DEFECTS:
        stem = f"{item}_Part{part}"
        shutil.copyfile(ksdd_root / item / f"Part{part}.jpg", root / "defect" / f"{stem}.jpg")
        shutil.copyfile(ksdd_root / item / f"Part{part}_label.png", root / "masks" / f"{stem}.png")
        shutil.copyfile(ksdd_root / item / "Part0.jpg", root / "good" / f"{item}_Part0.jpg")
        defects.append(stem)
        goods.append(f"{item}_Part0")
    split = {"train": defects[:7] + goods[:6], "test": defects[7:] + goods[6:]}
    (root / "split.yaml").write_text(f"train: {split['train']}\ntest: {split['test']}\n")
    return {**split, "defect": defects}


def tiny_folder_overrides(root, out) -> dict[str, object]:
    """``load_config("folder-example", ...)`` overrides for a seconds-long CPU run of a
    :func:`ksdd_folder` dataset at 64 x 160."""
    return {"output": str(out), "device": "cpu", "data.root": str(root), "data.plan": "off",
            "data.size": [64, 160], "data.channels": 1, "classifier.backbone": "vgg16_narrow",
            "classifier.weights": None, "classifier.width": 16, "classifier.batch_norm": True,
            "classifier.epochs": 1, "classifier.samples_per_epoch": 16,
            "segmentation.encoder": "resnet18", "segmentation.encoder_weights": None,
            "segmentation.precision": "float32", "segmentation.channels_last": False,
            "segmentation.epochs": 1, "segmentation.samples_per_epoch": 8}


def count_label_heat_maps(monkeypatch) -> list[int]:
    """The indices of every image whose heat map the pseudo-label stage computes from now on
    (``racam.pseudo.labels.iter_pseudo_masks`` wrapped): a list filled as it runs."""
    import racam.pseudo.labels as labels_mod

    computed: list[int] = []
    real = labels_mod.iter_pseudo_masks

    def counting(cam, dataset, indices, **kw):
        computed.extend(indices)
        return real(cam, dataset, indices, **kw)

    monkeypatch.setattr(labels_mod, "iter_pseudo_masks", counting)
    return computed
