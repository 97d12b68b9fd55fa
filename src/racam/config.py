"""Run configuration: typed dataclasses loaded from YAML and checked when loaded.

A config file has one section per pipeline stage (``data``, ``classifier``, ``cam``,
``segmentation``, ``reproduce``) plus ``name``, ``seed``, ``output`` and ``device``. Unknown
keys are errors, and so is any value of the wrong type, out of range or not allowed:
:func:`load_config` raises :class:`ConfigError` naming the dotted key before any stage runs.
The rules sit next to each field (:mod:`racam.config_checks`); reading the file and ``--set``
is :mod:`racam.config_file`.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from racam import config_choices as choices
from racam.compat import LATER_DEFAULTS as LATER_DEFAULTS  # old import path
from racam.compat import deprecation_line, translate_config, without_added
from racam.config_checks import above, at_least, checked, one_of, option, within
from racam.config_file import BUILTIN_CONFIGS as BUILTIN_CONFIGS  # re-exported
from racam.config_file import build_dataclass
from racam.config_file import config_values as config_values  # re-exported
from racam.errors import ConfigError

#: Allowed values of ``segmentation.loss``.
SEGMENTATION_LOSSES: tuple[str, ...] = ("ce", "ce+dice", "ce+dice_defect")
#: Allowed values of ``segmentation.optimizer`` and ``segmentation.schedule``.
OPTIMIZERS: tuple[str, ...] = ("sgd", "adamw")
SCHEDULES: tuple[str, ...] = ("constant", "cosine", "poly")
#: Allowed values of ``classifier.balance`` and ``segmentation.balance``.
CLASSIFIER_BALANCE: tuple[str, ...] = ("sampler", "loss", "none")
SEGMENTATION_BALANCE: tuple[str, ...] = ("sampler", "none")
#: Allowed values of ``classifier.precision`` and ``segmentation.precision`` (racam.precision).
PRECISIONS: tuple[str, ...] = ("auto", "float32", "bf16", "bf16_if_native", "fp16")
#: Allowed values of ``segmentation.gate`` (:mod:`racam.evaluation.gate`), ``data.plan``
#: (:mod:`racam.plan`), ``segmentation.train_masks_choice`` (:mod:`racam.pseudo.mixed`) and
#: ``segmentation.crop_centres`` (:mod:`racam.segmentation.crops`).
SEGMENTATION_GATES: tuple[str, ...] = ("none", "classifier")
PLAN_MODES: tuple[str, ...] = ("auto", "off")
TRAIN_MASK_CHOICES: tuple[str, ...] = ("random", "ranked", "typical")
CROP_CENTRES: tuple[str, ...] = ("defective_images", "defect_pixels")


def train_masks_rule(value: str) -> str | None:
    """``segmentation.train_masks``: ``none``, ``all`` or a count ``N >= 1``."""
    if value in ("none", "all") or (value.isdigit() and int(value) >= 1
                                    and str(int(value)) == value):
        return None
    return f"expected none, all or a number of images >= 1, got {value!r}"


@dataclass
class DataConfig:
    """Which images, at what size.

    ``size`` is ``(width, height)``. ``root`` defaults to ``$RACAM_DATA/KolektorSDD`` (or
    ``KolektorSDD2``) for the Kolektor datasets (:mod:`racam.data.registry`; with neither set
    the run stops naming both). ``folds`` lists the KolektorSDD folds to run
    (results are pooled over them). ``val_fraction`` of the *training* images (stratified,
    seeded) is held out to select the classifier checkpoint; ``test_fraction`` of a folder
    dataset's images is its test split; ``strict`` makes each problem of a folder dataset an
    error (see :mod:`racam.data.audit`).
    """

    dataset: str = option("ksdd", one_of(choices.datasets, "dataset"))
    root: str | None = None
    size: tuple[int, int] = option((256, 704), at_least(1))
    channels: int = option(1, one_of((1, 3), "channel count"))
    folds: list[int] = option([0, 1, 2], at_least(0))
    split_file: str = "split_33_0.pyb"
    test_fraction: float = option(0.3, within(0, 1, open_low=True, open_high=True))
    val_fraction: float = option(0.15, within(0, 1, open_high=True))
    #: folder datasets: every problem ``racam data info`` lists is an error (default: a warning;
    #: the classifier trains on every readable image, images without a usable mask are left
    #: out of the pixel metrics)
    strict: bool = False
    #: folder datasets: ``auto`` derives the input size, crops, batches, epochs and the recipe
    #: from a fingerprint of the images for every key the config and ``--set`` leave out
    #: (:mod:`racam.plan`; ``racam data info`` prints it); ``off``: the config's values alone
    plan: str = option("off", one_of(PLAN_MODES, "plan mode"))

    def __post_init__(self) -> None:
        """YAML 1.1 reads a bare ``off`` / ``on`` as a boolean: take it as the mode's name."""
        if isinstance(self.plan, bool):
            self.plan = "auto" if self.plan else "off"

    def cross_check(self, where: str = "data") -> None:
        """``plan: auto`` only for folder datasets (its fingerprint reads good/ and defect/)."""
        if self.plan == "auto" and self.dataset != "folder":
            raise ConfigError(f"{where or 'data'}.plan: auto applies to folder datasets, not "
                              f"{self.dataset!r} (set data.plan: off)")


@dataclass
class ClassifierConfig:
    """Classifier backbone and its SGD training.

    ``warmup_epochs``: the learning rate rises linearly from ``lr / W`` to ``lr`` over the first
    ``warmup_epochs`` epochs' steps (``W`` steps; 0: no warm-up); ``schedule``: the learning rate
    after it, ``constant``, ``cosine`` (per step, to 0 at the last step) or ``poly``
    (:mod:`racam.schedule`).

    ``balance``: ``"sampler"`` draws defective and defect-free images equally often
    (WeightedRandomSampler), ``"loss"`` weights the cross-entropy by inverse class frequency,
    ``"none"`` does neither. ``samples_per_epoch`` caps the images drawn per epoch (``None``:
    the training set size). ``batch_norm`` adds BatchNorm after every VGG conv (``vgg16_bn``
    layout; used at CPU scale, where the narrow VGG16 is trained from scratch).
    """

    backbone: str = option("vgg16_narrow", one_of(choices.backbones, "backbone"))
    width: int = option(4, at_least(1))
    batch_norm: bool = False
    weights: str | None = None
    epochs: int = option(20, at_least(1))
    batch_size: int = option(8, at_least(1))
    lr: float = option(0.01, above(0))
    warmup_epochs: float = option(0.0, at_least(0))
    schedule: str = option("constant", one_of(SCHEDULES, "schedule"))
    momentum: float = option(0.9, at_least(0))
    weight_decay: float = option(5e-4, at_least(0))
    balance: str = option("sampler", one_of(CLASSIFIER_BALANCE, "balance mode"))
    samples_per_epoch: int | None = option(None, at_least(1))
    num_workers: int = option(0, at_least(0))
    #: p(defect) at or above which an image is called defective (``threshold_rule: fixed``)
    threshold: float = option(0.5, within(0, 1))
    #: ``fixed``: decide at ``threshold``; ``val_f1``: at the best F1 on the fold's validation
    #: images, stored with the classifier (:mod:`racam.classifier.threshold`)
    threshold_rule: str = option("fixed", one_of(("fixed", "val_f1"), "threshold rule"))
    #: ``float32``, ``bf16`` / ``fp16`` (autocast; fp16 with a GradScaler), ``bf16_if_native``;
    #: ``auto``: fp16 on CUDA, float32 elsewhere (:mod:`racam.precision`; old keys: ``compat``)
    precision: str = option("auto", one_of(PRECISIONS, "precision"))
    #: NHWC memory format for the model and its input batches
    channels_last: bool = False
    #: ``torch.compile`` the training forward pass (eager, with a warning, if it fails)
    compile: bool = False
    #: decode the training (and validation) images once into a tensor on the training device
    #: and draw every batch there, flips included (:mod:`racam.data.device_cache`)
    device_cache: bool = False
    #: train again from a fresh initialisation (another seed) while the kept epoch's
    #: validation AUROC is below ``min_val_auroc``, at most ``restarts`` times
    #: (:mod:`racam.classifier.restarts`; 0: never)
    restarts: int = option(0, at_least(0))
    min_val_auroc: float = option(0.75, within(0, 1))
    #: train this many classifiers (seeds ``seed``, ``seed + 1000``, ...) and keep, of those
    #: passing ``min_val_auroc``, the one whose pseudo-labels mark the least of the defective
    #: training images (label-free; :mod:`racam.classifier.restarts`). 1: one classifier
    candidates: int = option(1, at_least(1))
    #: the epoch kept: best ``val_auroc``, or ``pseudo_area`` (:mod:`racam.classifier.epochs`)
    keep_epoch: str = option("val_auroc", one_of(choices.keep_epochs, "keep_epoch"))
    keep_tolerance: float = option(0.1, within(0, 1))

    def cross_check(self, where: str = "classifier") -> None:
        """``batch_norm`` only with a backbone that takes it (the VGG16 layouts; EfficientNet
        has its own BatchNorm)."""
        from racam.models.registry import batch_norm_backbones

        takers = batch_norm_backbones()
        if self.batch_norm and self.backbone not in takers:
            raise ConfigError(f"{where or 'classifier'}.batch_norm: applies to the "
                              f"{', '.join(takers)} backbones, not {self.backbone!r} (set "
                              "classifier.batch_norm: false)")


@dataclass
class CamConfig:
    """Heat-map method for pseudo-labels (``racam``, ``gradcam``, ..., ``layercam+fgbp``).

    ``weighting`` (RA-CAM only): the reading of the paper's Eq. 7, ``element`` (``W * A``
    element-wise, the default) or ``channel`` (one weight ``R_k = mean_ij W_k`` per channel,
    Grad-CAM-style). ``fgbp_head`` (RA-CAM and ``+fgbp`` methods): FGBP's map scope in the fully
    connected head, ``sample`` (one percentile map per sample over the layer's units, the
    default) or ``unit`` (one per unit). ``pseudo_threshold``: how pseudo-labels are cut from the
    maps, ``otsu`` (the protocol), ``otsu2`` (Otsu again inside the Otsu foreground,
    :func:`racam.pseudo.otsu.pseudo_mask`) or ``band`` (the ``otsu2`` mask, with the pixels
    between the two thresholds left out of segmentation training); heat-map scores (Table I)
    always use Otsu. ``guided_radius`` (``None``: off) refines the maps of the pseudo-labels with
    a guided filter, the image as guide, before they are cut (:mod:`racam.pseudo.guided`;
    radius in pixels of the model's input, regularisation ``guided_eps``).
    """

    method: str = option("racam", one_of(choices.methods, "method"))
    delta: float = option(50.0, within(0, 100))
    fusion: str = option("max", one_of(choices.fusions, "fusion"))
    weighting: str = option("element", one_of(choices.weightings, "weighting"))
    fgbp_head: str = option("sample", one_of(choices.head_scopes, "FGBP head scope"))
    pseudo_threshold: str = option("otsu", one_of(("otsu", "otsu2", "band"),
                                                  "pseudo-label threshold"))
    guided_radius: int | None = option(None, at_least(1))
    guided_eps: float = option(1e-3, above(0))
    #: Input scales whose heat maps are averaged, for every heat map of the run
    #: (racam.pseudo.tta.tta_cam; [1.0]: the map at the input size)
    scales: list[float] = option([1.0], above(0))
    #: Flips ("h": left-right, "v": top-bottom) whose maps are averaged in, at each scale.
    flips: list[str] = option([], one_of(("h", "v"), "heat-map flip"))
    #: Input scales tried for the pseudo-labels' maps (None: ``scales``); only those at which
    #: the classifier still calls most defects defective qualify (racam.pseudo.scale_choice)
    scale_candidates: list[float] | None = option(None, above(0))
    #: "area": the qualifying scale whose labels mark least; "mean": the mean of their maps
    scale_rule: str = option("area", one_of(("area", "mean"), "scale rule"))
    #: Pseudo-label maps times each patch's distance to the good images' (racam.pseudo.good_patches)
    good_prior: bool = False
    layers: list[str] | None = None
    batch_size: int = option(4, at_least(1))
    #: Score-CAM's masked images per pass (None: 256 on CUDA, halved when out of memory; 8 on CPU)
    scorecam_batch: int | None = option(None, at_least(1))


@dataclass
class SegmentationConfig:
    """Segmentation network trained on pseudo-labels (or true masks for baselines).

    ``output_stride`` (8 or 16) is the DeepLab encoder's output stride (``None``: smp's default,
    8 for DeepLabV3 and 16 for DeepLabV3+); 16 makes DeepLabV3 about 3x cheaper on a CPU.
    ``balance: sampler`` draws defective and defect-free images equally often, ``none`` shuffles.
    ``loss``: ``ce`` (the paper), ``ce+dice`` (cross-entropy plus soft Dice over both classes)
    or ``ce+dice_defect`` (cross-entropy plus soft Dice on the defect class alone).

    The crop recipe (``crop`` set): each draw is a ``crop`` = ``(width, height)`` window of a
    training image; a share ``defect_crop_fraction`` of the draws is centred on a random defect
    pixel of a random image with a non-empty mask, the rest lie uniformly in a random image.
    ``optimizer``: ``sgd`` (the paper; ``momentum``) or ``adamw``; ``schedule``: ``constant``,
    ``cosine`` (per step, to 0) or ``poly`` (power 0.9). ``channels_last``: NHWC memory format.

    ``self_training``: rounds of self-training on top of the pseudo-labels (0: none, the
    paper). Round ``r`` trains a new network on round ``r-1``'s masks (cut by ``mask_cut``) of
    the defective training images (defect-free ones keep an empty mask); the last round is the
    run's network.
    """

    arch: str = option("deeplabv3", one_of(choices.networks, "arch"))
    encoder: str = "resnet18"
    encoder_weights: str | None = None
    output_stride: int | None = option(None, one_of((8, 16), "output stride"))
    balance: str = option("sampler", one_of(SEGMENTATION_BALANCE, "balance mode"))
    loss: str = option("ce", one_of(SEGMENTATION_LOSSES, "loss"))
    epochs: int = option(10, at_least(1))
    batch_size: int = option(4, at_least(1))
    lr: float = option(5e-4, above(0))
    momentum: float = option(0.9, at_least(0))
    weight_decay: float = option(1e-4, at_least(0))
    samples_per_epoch: int | None = option(None, at_least(1))
    num_workers: int = option(0, at_least(0))
    optimizer: str = option("sgd", one_of(OPTIMIZERS, "optimizer"))
    schedule: str = option("constant", one_of(SCHEDULES, "schedule"))
    crop: tuple[int, int] | None = option(None, at_least(1))
    defect_crop_fraction: float = option(0.5, within(0, 1))
    #: which images the defect-centred crops are drawn from: every image labelled defective
    #: (``defective_images``; one with an empty mask gets a uniform window) or only those whose
    #: training mask has a defect pixel (``defect_pixels``: with ``train_masks_rest: ignore``,
    #: the images with a true mask, so a few masks fill every defect-centred crop)
    crop_centres: str = option("defective_images", one_of(CROP_CENTRES, "crop_centres"))
    channels_last: bool = False
    #: as ``classifier.precision`` (``bf16`` is what the CPU recipe trains under)
    precision: str = option("auto", one_of(PRECISIONS, "precision"))
    #: as ``classifier.compile``
    compile: bool = False
    #: as ``classifier.device_cache`` (crops, flips and the balanced draws on the device)
    device_cache: bool = False
    self_training: int = option(0, at_least(0))
    #: true masks in training (mixed supervision, :mod:`racam.pseudo.mixed`): ``none`` (masks
    #: only evaluate), ``all`` or ``N`` defective training images per fold replace their
    #: pseudo-label by their true mask; ``N`` are picked ``typical`` (the most typical image
    #: of each of ``N`` k-means clusters of the classifier's pooled features,
    #: :mod:`racam.pseudo.typical`: beat ``random`` on KolektorSDD), ``random`` (seed + fold)
    #: or ``ranked`` (the top of ``fold<k>/label-next.csv`` of the run with ``train_masks: none``)
    train_masks: str = option("none", train_masks_rule)
    train_masks_choice: str = option("typical", one_of(TRAIN_MASK_CHOICES, "train_masks choice"))
    #: the seed of the ``random`` draw and of ``typical``'s k-means (plus the fold); ``null``:
    #: the run's ``seed``. Another value draws other images with the same classifier.
    train_masks_seed: int | None = option(None, at_least(0))
    #: The defective training images without a true mask (with train_masks all or N): learn
    #: their pseudo-label (pseudo) or no pixel at all (ignore: their image teaches nothing
    #: pixel-wise, as mixed-supervision networks treat weakly labelled images; with no true
    #: mask at all, pseudo)
    train_masks_rest: str = option("pseudo", one_of(("pseudo", "ignore"), "train_masks rest"))

    #: ``classifier``: a test or predicted mask is empty when the classifier's p(defect) is below
    #: ``classifier.threshold`` (as mixed-supervision defect networks decide per image); an
    #: evaluation and deployment rule, the network is the same. ``none``: the network's mask.
    gate: str = option("none", one_of(SEGMENTATION_GATES, "gate"))
    #: Where the network's probability is cut into a mask: ``half`` (p > 0.5), ``foreground_otsu``
    #: (p > max(0.5, Otsu of the image's p above 0.5); racam.segmentation.mask_cut). Not trained.
    mask_cut: str = option("half", one_of(choices.mask_cuts, "mask_cut"))

    def __post_init__(self) -> None:
        """YAML and ``--set`` give ``train_masks: 5`` as a number: keep it as its name."""
        if isinstance(self.train_masks, int) and not isinstance(self.train_masks, bool):
            self.train_masks = str(self.train_masks)

    def train_mask_count(self) -> int | None:
        """``N`` of ``train_masks: N`` (``None``: ``none`` or ``all``)."""
        return int(self.train_masks) if self.train_masks.isdigit() else None


@dataclass
class ReproduceConfig:
    """What ``racam reproduce`` sweeps beyond the main pipeline."""

    methods: list[str] = option(["gradcam", "gradcam++", "xgradcam", "ablationcam", "scorecam",
                                 "layercam", "fullgrad", "racam"],
                                one_of(choices.methods, "method"))
    plugin_methods: list[str] = option(["layercam", "fullgrad"],
                                       one_of(choices.plugin_methods, "plug-in method"))
    deltas: list[float] = option([0, 10, 20, 30, 40, 50, 60, 70, 80, 90], within(0, 100))
    supervised_archs: list[str] = option(["unet", "deeplabv3", "deeplabv3plus"],
                                         one_of(choices.networks, "arch"))
    #: train Table III's networks (``false``: heat-map tables and figures only)
    segmentation: bool = True
    figure_images: int = option(4, at_least(1))
    #: classifier seeds: each trains its own classifiers (Table I as mean +- sd over them); the
    #: config's own ``seed`` writes to the output folder, any other seed ``s`` to ``seed<s>/``
    seeds: list[int] = option([0], at_least(0))
    #: RA-CAM readings of Eq. 7 reported in a second Table I block (see ``cam.weighting``)
    weightings: list[str] = option(["element", "channel"], one_of(choices.weightings, "weighting"))
    #: FGBP head scopes reported (see ``cam.fgbp_head``)
    fgbp_heads: list[str] = option(["sample", "unit"],
                                   one_of(choices.head_scopes, "FGBP head scope"))
    #: bootstrap resamples of the defective test images for RA-CAM minus each baseline
    bootstrap_resamples: int = option(10000, at_least(100))
    #: defect-IoU goals (%) the report checks next to Table III, by ``<arch>-<source>``
    #: (``unet-true``, ``unet-pseudo``, ``unet-pseudo-st1``, ...): met or not, per row
    segmentation_goals: dict[str, float] = option({}, within(0, 100))
    #: wall-time goal (minutes) of a whole reproduction, checked against its calls' wall time
    wall_goal_minutes: float | None = option(None, above(0))
    #: classifier seeds whose pseudo-labels train Table III's weakly supervised networks, each
    #: one of ``seeds`` (``null``: the first of ``seeds``); Table III then shows their mean +- sd.
    #: The fully supervised networks use the first seed.
    segmentation_seeds: list[int] | None = option(None, at_least(0))

    def cross_check(self, where: str = "reproduce") -> None:
        """``segmentation_seeds`` are distinct classifier seeds of ``seeds``."""
        chosen = self.segmentation_seeds
        if chosen is None:
            return
        name = f"{where or 'reproduce'}.segmentation_seeds"
        if not chosen or len(set(chosen)) != len(chosen):
            raise ConfigError(f"{name}: expected distinct seeds, got {chosen}")
        if any(s not in self.seeds for s in chosen):
            raise ConfigError(f"{name}: {chosen} must be among reproduce.seeds {self.seeds} "
                              "(each trains on the pseudo-labels of that seed's classifiers)")


@dataclass
class RunConfig:
    """A whole pipeline run."""

    name: str = "run"
    seed: int = option(0, at_least(0))
    output: str = "runs/run"
    device: str = option("auto", choices.device)
    data: DataConfig = field(default_factory=DataConfig)
    classifier: ClassifierConfig = field(default_factory=ClassifierConfig)
    cam: CamConfig = field(default_factory=CamConfig)
    segmentation: SegmentationConfig = field(default_factory=SegmentationConfig)
    reproduce: ReproduceConfig = field(default_factory=ReproduceConfig)

    def to_dict(self) -> dict[str, Any]:
        """Plain-data view (for manifests and reports)."""
        return dataclasses.asdict(self)


#: Old names kept for callers: the added keys' earlier values live in :mod:`racam.compat`.
without_later_defaults = without_added

T = TypeVar("T")


def check_config(cfg: T, section: str = "") -> T:
    """``cfg`` (a :class:`RunConfig` or one of its sections, named ``section``) with every
    value converted to its type and checked; :class:`ConfigError` names the bad key."""
    return checked(cfg, section)


def config_from_dict(values: dict[str, Any]) -> RunConfig:
    """Build and check a :class:`RunConfig` from plain data (see the module docstring); keys
    of earlier racam versions are read as today's (:func:`racam.compat.translate_config`)."""
    return check_config(build_dataclass(RunConfig, translate_config(values)[0], ""))


def load_config(path: str | os.PathLike[str], overrides: dict[str, Any] | None = None) -> RunConfig:
    """Load and check a YAML config; ``path`` may also name a built-in config (``ksdd-cpu``);
    ``overrides`` maps dotted keys to values, e.g. ``{"classifier.epochs": 2}``."""
    values, p = config_values(path, overrides)
    return config_from_values(values, p)


def config_from_values(values: dict[str, Any], path: Path) -> RunConfig:
    """:func:`config_from_dict`, naming the config file ``path`` in any error."""
    try:
        old = translate_config(values)[1]
        if old:
            print(deprecation_line(f"config {path}", old), file=sys.stderr)
        return config_from_dict(values)
    except ConfigError as exc:
        raise ConfigError(f"{exc} (config {path})") from None
