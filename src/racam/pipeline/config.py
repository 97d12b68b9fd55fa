"""Run configuration: typed dataclasses loaded from YAML.

A config file has one section per pipeline stage (``data``, ``classifier``, ``cam``,
``segmentation``, ``evaluation``) plus ``name``, ``seed``, ``output`` and ``device``. Unknown
keys are errors (a typo should not silently fall back to a default).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_type_hints

import yaml

from racam.errors import ConfigError


@dataclass
class DataConfig:
    """Which images, at what size.

    ``size`` is ``(width, height)``. ``root`` defaults to ``$RACAM_DATA/KolektorSDD`` (or
    ``KolektorSDD2``) for the Kolektor datasets. ``folds`` lists the KolektorSDD folds to run
    (results are pooled over them). ``val_fraction`` of the *training* images (stratified,
    seeded) is held out to select the classifier checkpoint.
    """

    dataset: str = "ksdd"
    root: str | None = None
    size: tuple[int, int] = (256, 704)
    channels: int = 1
    folds: list[int] = field(default_factory=lambda: [0, 1, 2])
    split_file: str = "split_33_0.pyb"
    test_fraction: float = 0.3
    val_fraction: float = 0.15
    units: list[str] | None = None


@dataclass
class ClassifierConfig:
    """Classifier backbone and its SGD training.

    ``balance``: ``"sampler"`` draws defective and defect-free images equally often
    (WeightedRandomSampler), ``"loss"`` weights the cross-entropy by inverse class frequency,
    ``"none"`` does neither. ``samples_per_epoch`` caps the images drawn per epoch (``None``:
    the training set size). ``batch_norm`` adds BatchNorm after every VGG conv (``vgg16_bn``
    layout; used at CPU scale, where the narrow VGG16 is trained from scratch).
    """

    backbone: str = "vgg16_narrow"
    width: int = 4
    batch_norm: bool = False
    weights: str | None = None
    epochs: int = 20
    batch_size: int = 8
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4
    balance: str = "sampler"
    samples_per_epoch: int | None = None
    amp: bool = True
    num_workers: int = 0


@dataclass
class CamConfig:
    """Heat-map method for pseudo-labels (``racam``, ``gradcam``, ..., ``layercam+fgbp``)."""

    method: str = "racam"
    delta: float = 50.0
    fusion: str = "max"
    layers: list[str] | None = None
    batch_size: int = 4


@dataclass
class SegmentationConfig:
    """Segmentation network trained on pseudo-labels (or true masks for baselines).

    ``output_stride`` (8 or 16) is the DeepLab encoder's output stride (``None``: smp's default,
    8 for DeepLabV3 and 16 for DeepLabV3+); 16 makes DeepLabV3 about 3x cheaper on a CPU.
    ``balance: sampler`` draws defective and defect-free images equally often, ``none`` shuffles.
    ``loss``: ``ce`` (the paper) or ``ce+dice`` (cross-entropy plus soft Dice).
    """

    arch: str = "deeplabv3"
    encoder: str = "resnet18"
    encoder_weights: str | None = None
    output_stride: int | None = None
    balance: str = "sampler"
    loss: str = "ce"
    epochs: int = 10
    batch_size: int = 4
    lr: float = 5e-4
    momentum: float = 0.9
    weight_decay: float = 1e-4
    samples_per_epoch: int | None = None
    amp: bool = True
    num_workers: int = 0


@dataclass
class ReproduceConfig:
    """What ``racam reproduce`` sweeps beyond the main pipeline."""

    methods: list[str] = field(default_factory=lambda: [
        "gradcam", "gradcam++", "xgradcam", "ablationcam", "scorecam", "layercam", "fullgrad",
        "racam"])
    plugin_methods: list[str] = field(default_factory=lambda: ["layercam", "fullgrad"])
    deltas: list[float] = field(default_factory=lambda: [0, 10, 20, 30, 40, 50, 60, 70, 80, 90])
    supervised_archs: list[str] = field(default_factory=lambda: ["unet", "deeplabv3",
                                                                 "deeplabv3plus"])
    figure_images: int = 4
    max_train_images_for_delta: int | None = None


@dataclass
class RunConfig:
    """A whole pipeline run."""

    name: str = "run"
    seed: int = 0
    output: str = "runs/run"
    device: str = "auto"
    data: DataConfig = field(default_factory=DataConfig)
    classifier: ClassifierConfig = field(default_factory=ClassifierConfig)
    cam: CamConfig = field(default_factory=CamConfig)
    segmentation: SegmentationConfig = field(default_factory=SegmentationConfig)
    reproduce: ReproduceConfig = field(default_factory=ReproduceConfig)

    def to_dict(self) -> dict[str, Any]:
        """Plain-data view (for manifests and reports)."""
        return dataclasses.asdict(self)


def _build(cls: type, values: dict[str, Any], where: str) -> Any:
    if not isinstance(values, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(values).__name__}")
    hints = get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(values) - names
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {sorted(unknown)}; allowed: {sorted(names)}")
    kwargs: dict[str, Any] = {}
    for key, value in values.items():
        hint = hints[key]
        if dataclasses.is_dataclass(hint):
            kwargs[key] = _build(hint, value or {}, f"{where}.{key}")
        elif key == "size" and value is not None:
            if not (isinstance(value, (list, tuple)) and len(value) == 2):
                raise ConfigError(f"{where}.size: expected [width, height], got {value!r}")
            kwargs[key] = (int(value[0]), int(value[1]))
        else:
            kwargs[key] = value
    return cls(**kwargs)


def config_from_dict(values: dict[str, Any], where: str = "config") -> RunConfig:
    """Build a :class:`RunConfig` from plain data, rejecting unknown keys."""
    return _build(RunConfig, values, where)


BUILTIN_CONFIGS = Path(__file__).resolve().parent.parent / "configs"


def load_config(path: str | os.PathLike[str], overrides: dict[str, Any] | None = None) -> RunConfig:
    """Load a YAML config; ``path`` may also name a built-in config (e.g. ``ksdd-cpu``).

    ``overrides`` maps dotted keys to values, e.g. ``{"classifier.epochs": 2}``.
    """
    p = Path(path)
    if not p.exists():
        builtin = BUILTIN_CONFIGS / f"{path}.yaml"
        if builtin.exists():
            p = builtin
        else:
            names = sorted(x.stem for x in BUILTIN_CONFIGS.glob("*.yaml"))
            raise ConfigError(f"config {path}: no such file, and not a built-in config {names}")
    try:
        values = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"config {p}: not valid YAML: {exc}") from exc
    for dotted, value in (overrides or {}).items():
        node = values
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return config_from_dict(values, where=str(p))
