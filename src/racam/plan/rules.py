"""Rules that turn a :class:`~racam.plan.fingerprint.Fingerprint` into a :class:`Plan`.

As in nnU-Net, a few fixed rules read the fingerprint; none reads a mask. The numbers the rules
start from are the CPU recipe that was shown to learn (``ksdd-cpu.yaml``: 256 x 704 inputs,
batches of 8, 256 x 256 crops, 8 epochs of 48 crop batches) and the folder preset whose
classifier transferred to a dataset nobody tuned on (ImageNet EfficientNet-Lite0, 15 epochs;
GitHub issue 29: AUROC 0.98 there against 0.59 for the narrow VGG16 from scratch):

- **input size** (``data.size``): the median aspect ratio (clipped to :data:`MAX_ASPECT`), the
  median long side bounded by :data:`MAX_LONG_SIDE` (CPU time), the short side at least
  :data:`MIN_SHORT_SIDE` (small images are enlarged: Lite0's deepest maps are 1/32 of the
  input), each side rounded to a multiple of :data:`STRIDE` (the networks' total stride);
- **channels**: 1 when every image is single-channel, else 3;
- **crop** (``segmentation.crop``): :data:`CROP_SIDE` per side, or the whole side when shorter;
- **batches**: as many images as fit the pixels of ksdd-cpu's batch (:data:`CLASSIFIER_PIXELS`,
  :data:`SEGMENTATION_PIXELS`), within [:data:`MIN_BATCH`, :data:`MAX_BATCH`], and at most a
  quarter of the training images (nnU-Net likewise caps a batch to a share of the dataset);
- **classifier draws per epoch**: twice the larger class's training images (the balanced
  sampler then draws each image of that class about once), within [:data:`MIN_DRAWS`,
  :data:`MAX_DRAWS`], rounded up to whole batches; :data:`CLASSIFIER_EPOCHS` epochs;
- **segmentation steps**: a fixed budget, as nnU-Net's fixed iterations per epoch: the crops
  are drawn with replacement, so the dataset size sets no epoch. :data:`SEGMENTATION_EPOCHS`
  epochs of :data:`SEGMENTATION_STEPS` batches (ksdd-cpu: 8 x 384 crops of 256 x 256; with the
  batch rule every plan trains on the same number of pixels);
- **recipe** (:data:`RECIPE`): the classifier and segmentation choices that transferred.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from racam.data.stratify import class_quota
from racam.plan.fingerprint import Fingerprint

#: Longest side of a planned input (ksdd-cpu's 704: its classifier and segmentation train in
#: minutes per fold on 2 CPU cores).
MAX_LONG_SIDE = 704
#: Shortest side of a planned input: Lite0's deepest maps (1/32) keep 4 cells.
MIN_SHORT_SIDE = 128
#: Largest long / short side ratio a planned input keeps (both bounds above then hold).
MAX_ASPECT = MAX_LONG_SIDE / MIN_SHORT_SIDE
#: Every side is a multiple of the networks' total stride (Lite0 and its UNet: 32).
STRIDE = 32
#: Side of a segmentation crop (ksdd-cpu's 256 x 256).
CROP_SIDE = 256
#: Pixels per batch: ksdd-cpu's classifier batch (8 x 256 x 704) and crop batch (8 x 256 x 256).
CLASSIFIER_PIXELS = 8 * 256 * 704
SEGMENTATION_PIXELS = 8 * 256 * 256
MIN_BATCH, MAX_BATCH = 2, 32
#: Classifier draws per epoch: ksdd-cpu's 96 at least, at most 1024.
MIN_DRAWS, MAX_DRAWS = 96, 1024
#: The folder preset's classifier epochs (AUROC 0.98 on the unseen dataset of issue 29).
CLASSIFIER_EPOCHS = 15
#: ksdd-cpu's segmentation schedule: 8 epochs of 48 batches (384 crops of 8).
SEGMENTATION_EPOCHS = 8
SEGMENTATION_STEPS = 48
#: Below this many images in a class the plan warns (splits and scores get noisy).
FEW_IMAGES = 10
#: Below this many defective validation images the plan warns: they pick the classifier's epoch
#: (the demo's sample has 2: with folder-example's recipe at 2 threads it kept an epoch at
#: chance; docs/results.md).
FEW_VALIDATION_DEFECTS = 5
#: Above this many images of one class per image of the other the plan warns.
IMBALANCED = 10.0

_TRANSFER = ("issue 29: on a dataset nobody tuned on it scored 13.3 / 19.1 segmentation IoU "
             "against 4.9 for SGD + CE on whole images without a pretrained encoder")


@dataclass(frozen=True)
class Setting:
    """One planned config value: the dotted ``key``, its ``value`` and why (one line)."""

    key: str
    value: Any
    reason: str


#: The recipe choices that transferred to a dataset nobody tuned on (issue 29); a plan sets them
#: on every dataset.
RECIPE: tuple[Setting, ...] = (
    Setting("classifier.backbone", "efficientnet_lite0",
            "the ImageNet EfficientNet-Lite0 reached AUROC 0.98 on a dataset nobody tuned on, "
            "the narrow VGG16 from scratch 0.59 (issue 29)"),
    Setting("classifier.weights", "imagenet",
            "ImageNet features transfer to a new material; the offline Lite0 file needs no "
            "network"),
    Setting("segmentation.arch", "unet", f"ksdd-cpu's crop recipe; {_TRANSFER}"),
    Setting("segmentation.encoder", "efficientnet_lite0",
            "the pretrained Lite0 encoder of ksdd-cpu's crop recipe (offline weights)"),
    Setting("segmentation.encoder_weights", "imagenet", f"crop recipe; {_TRANSFER}"),
    Setting("segmentation.loss", "ce+dice_defect",
            "Dice on the defect class keeps thin defects from vanishing under the background "
            "(crop recipe)"),
    Setting("segmentation.optimizer", "adamw", "AdamW with a cosine decay: the crop recipe"),
    Setting("segmentation.lr", 0.001, "the crop recipe's AdamW learning rate"),
    Setting("segmentation.weight_decay", 0.0001, "the crop recipe's weight decay"),
    Setting("segmentation.schedule", "cosine", "the crop recipe's cosine decay to 0"),
    Setting("segmentation.defect_crop_fraction", 0.5,
            "half of the crops centred on a pseudo-label pixel, so each batch holds defects"),
    Setting("classifier.keep_epoch", "pseudo_area",
            "of the epochs within classifier.keep_tolerance of the best validation AUROC, the "
            "one whose pseudo-labels mark the least of the defective training images: better "
            "labels than the AUROC epoch's on two datasets (KolektorSDD 30.5 against 25.3 IoU, "
            "BSData 48.8 against 45.2)"),
    Setting("cam.fusion", "mean",
            "with otsu2, first of 8 pseudo-label rules on the training images of two datasets "
            "(KolektorSDD 30.5 against 5.9 IoU for max + Otsu, BSData 18.7 against 2.7)"),
    Setting("cam.pseudo_threshold", "otsu2",
            "the second Otsu cut keeps the map's core: pseudo-labels of 1-2 % of an image "
            "where Otsu marked 7-17 % (with mean fusion, as above)"),
    Setting("cam.scale_candidates", [1.0, 1.5, 2.0],
            "the input scales tried for the pseudo-labels' maps; only those at which the "
            "classifier still calls most defective training images defective are used"),
    Setting("cam.scale_rule", "mean",
            "the maps of the scales used are averaged: pseudo-labels +1.5 IoU on KolektorSDD "
            "(two folds), +8.0 on BSData (another epoch kept), unchanged on DeepPCB"),
    Setting("cam.good_prior", False,
            "the maps times each patch's distance to the good training images' patches gave "
            "networks +4.4 IoU on KolektorSDD and +3.5 on DeepPCB but -5.0 on BSData (training "
            "images); set it true to try it"),
    Setting("classifier.threshold_rule", "val_f1",
            "the decision threshold of the best F1 on the validation images (image labels): "
            "on KolektorSDD it kept 2 of 4 defective test images 0.5 emptied, and it lowered "
            "the gated masks on none of 3 runs"),
    Setting("segmentation.gate", "classifier",
            "an image the classifier calls good gets no mask: the network alone marked defects "
            "on most good images of a folder dataset (issue 29)"),
    Setting("segmentation.mask_cut", "foreground_otsu",
            "each image's probability cut at max(0.5, Otsu of its pixels above 0.5): "
            "label-free, only narrows; defective test images +0.9 to +2.6 IoU on 4 KolektorSDD "
            "networks, +1.7 on DeepPCB"),
)


@dataclass(frozen=True)
class Plan:
    """The values a folder run takes from its images (see the module docstring).

    ``size`` and ``crop`` are ``(width, height)``; ``reasons`` maps each planned dotted config
    key to a one-line reason; ``notes`` are warnings about the data (few images, imbalance).
    """

    size: tuple[int, int]
    channels: int
    crop: tuple[int, int]
    classifier_batch: int
    classifier_samples_per_epoch: int
    classifier_epochs: int
    segmentation_batch: int
    segmentation_samples_per_epoch: int
    segmentation_epochs: int
    reasons: dict[str, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    def settings(self) -> tuple[Setting, ...]:
        """Every planned config value with its reason: the data's, then :data:`RECIPE`."""
        values = {"data.size": list(self.size), "data.channels": self.channels,
                  "segmentation.crop": list(self.crop),
                  "classifier.batch_size": self.classifier_batch,
                  "classifier.samples_per_epoch": self.classifier_samples_per_epoch,
                  "classifier.epochs": self.classifier_epochs,
                  "segmentation.batch_size": self.segmentation_batch,
                  "segmentation.samples_per_epoch": self.segmentation_samples_per_epoch,
                  "segmentation.epochs": self.segmentation_epochs}
        return tuple(Setting(k, v, self.reasons[k]) for k, v in values.items()) + RECIPE


@dataclass(frozen=True)
class Counts:
    """Training images per class after the test and validation hold-outs (``fit``: what the
    classifier trains on; ``train``: the training split, which segmentation trains on)."""

    train: tuple[int, int]
    fit: tuple[int, int]


def split_counts(fp: Fingerprint, test_fraction: float, val_fraction: float) -> Counts:
    """Per class (good, defect): the images left after the stratified test split and then the
    validation hold-out (:func:`racam.data.stratify.class_quota`; a ``split.yaml`` may differ)."""
    n = np.array([fp.good, fp.defect])
    train = n - class_quota(n, test_fraction)
    fit = train - class_quota(train, val_fraction)
    return Counts((int(train[0]), int(train[1])), (int(fit[0]), int(fit[1])))


def _round_stride(x: float) -> int:
    """``x`` to the nearest multiple of :data:`STRIDE` (halves up), at least one stride."""
    return max(STRIDE, STRIDE * int(x / STRIDE + 0.5))


def input_size(fp: Fingerprint) -> tuple[tuple[int, int], str]:
    """The planned ``(width, height)`` and its reason (module docstring)."""
    ratio = max(fp.median_aspect, 1 / fp.median_aspect)  # long / short, >= 1
    kept = min(ratio, MAX_ASPECT)
    long = min(fp.median_long_side, MAX_LONG_SIDE)
    short = long / kept
    why = [f"median image {fp.median_size[0]:g}x{fp.median_size[1]:g}, aspect "
           f"{fp.median_aspect:.3g} (width / height)"]
    if kept < ratio:
        why.append(f"aspect capped at {MAX_ASPECT:g}:1 so the short side keeps "
                   f"{MIN_SHORT_SIDE} px")
    if fp.median_long_side > MAX_LONG_SIDE:
        why.append(f"long side bounded at {MAX_LONG_SIDE} px for CPU time")
    if short < MIN_SHORT_SIDE:
        short, long = MIN_SHORT_SIDE, MIN_SHORT_SIDE * kept
        why.append(f"enlarged to a {MIN_SHORT_SIDE} px short side (Lite0's deepest maps are "
                   "1/32 of the input)")
    a, b = _round_stride(long), _round_stride(short)
    size = (a, b) if fp.median_aspect >= 1 else (b, a)
    why.append(f"sides rounded to multiples of {STRIDE}")
    return size, "; ".join(why)


def _batch(budget: int, pixels: int, images: int) -> int:
    """Images of ``pixels`` that fit ``budget`` pixels, within the batch bounds and at most a
    quarter of ``images`` (but never below :data:`MIN_BATCH`)."""
    return max(MIN_BATCH, min(budget // pixels, MAX_BATCH, images // 4))


def plan_for(fp: Fingerprint, *, test_fraction: float = 0.3, val_fraction: float = 0.15,
             size: tuple[int, int] | None = None,
             crop: tuple[int, int] | None = None) -> Plan:
    """The :class:`Plan` of the dataset ``fp`` split with ``test_fraction`` and ``val_fraction``
    (``data.*``). A ``size`` or ``crop`` the user set is kept, and the batches follow it."""
    counts = split_counts(fp, test_fraction, val_fraction)
    reasons: dict[str, str] = {}
    if size is None:
        size, reasons["data.size"] = input_size(fp)
    else:
        reasons["data.size"] = "set in your config (the batches below follow it)"
    channels = 1 if fp.gray else 3
    modes = ", ".join(f"{m} {n}" for m, n in fp.modes)
    reasons["data.channels"] = (f"image modes {modes}: "
                                + ("every image is single-channel (Lite0's ImageNet filters are "
                                   "summed over RGB, the same as the gray image repeated)"
                                   if channels == 1 else "colour images"))
    if crop is None:
        crop = (min(CROP_SIDE, size[0]), min(CROP_SIDE, size[1]))
        whole = " (a side shorter than that is taken whole)" if min(size) < CROP_SIDE else ""
        reasons["segmentation.crop"] = (f"{CROP_SIDE} x {CROP_SIDE} crops of the {size[0]}x"
                                        f"{size[1]} input, as ksdd-cpu's crop recipe{whole}")
    else:
        reasons["segmentation.crop"] = "set in your config (the batch below follows it)"
    fit, train = sum(counts.fit), sum(counts.train)
    cls_batch = _batch(CLASSIFIER_PIXELS, size[0] * size[1], fit)
    reasons["classifier.batch_size"] = _batch_reason(
        cls_batch, CLASSIFIER_PIXELS, size, "ksdd-cpu's classifier batch (8 x 256x704)", fit,
        "images the classifier trains on")
    draws = min(max(2 * max(counts.fit), MIN_DRAWS), MAX_DRAWS)
    draws = math.ceil(draws / cls_batch) * cls_batch
    reasons["classifier.samples_per_epoch"] = (
        f"twice the larger class ({max(counts.fit)} of {counts.fit[0]} good / {counts.fit[1]} "
        f"defective training images), within {MIN_DRAWS}-{MAX_DRAWS}, in whole batches: the "
        "balanced sampler draws each image of that class about once per epoch")
    reasons["classifier.epochs"] = ("the folder preset's epochs, with which the ImageNet Lite0 "
                                    "reached AUROC 0.98 on a dataset nobody tuned on")
    seg_batch = _batch(SEGMENTATION_PIXELS, crop[0] * crop[1], train)
    reasons["segmentation.batch_size"] = _batch_reason(
        seg_batch, SEGMENTATION_PIXELS, crop, "ksdd-cpu's crop batch (8 x 256x256)", train,
        "training images")
    reasons["segmentation.samples_per_epoch"] = (
        f"{SEGMENTATION_STEPS} batches per epoch whatever the image count (crops are drawn "
        "with replacement, as nnU-Net's fixed iterations): ksdd-cpu's 384 crops of 8")
    reasons["segmentation.epochs"] = ("ksdd-cpu's crop schedule, about 6 minutes per fold on 2 "
                                      "CPU cores there")
    return Plan(size=size, channels=channels, crop=crop, classifier_batch=cls_batch,
                classifier_samples_per_epoch=draws, classifier_epochs=CLASSIFIER_EPOCHS,
                segmentation_batch=seg_batch,
                segmentation_samples_per_epoch=SEGMENTATION_STEPS * seg_batch,
                segmentation_epochs=SEGMENTATION_EPOCHS, reasons=reasons,
                notes=notes_for(fp) + validation_notes(counts))


def _batch_reason(batch: int, budget: int, size: tuple[int, int], what: str, images: int,
                  which: str) -> str:
    fits = budget // (size[0] * size[1])
    text = f"{fits} inputs of {size[0]}x{size[1]} fit the pixels of {what}"
    if batch != fits:
        text += (f"; kept within {MIN_BATCH}-{MAX_BATCH} and at most a quarter of the "
                 f"{images} {which}")
    return text


def validation_notes(counts: Counts) -> tuple[str, ...]:
    """A warning when few defective validation images pick the classifier's epoch."""
    held = counts.train[1] - counts.fit[1]
    if held >= FEW_VALIDATION_DEFECTS:
        return ()
    return (f"only {held} defective validation image(s) pick the classifier's epoch "
            "(data.val_fraction; a split.yaml may differ): that choice is noisy, and another "
            "seed or thread count may keep another epoch",)


def notes_for(fp: Fingerprint) -> tuple[str, ...]:
    """Warnings about the data a plan cannot fix (few images, imbalance, mixed sizes)."""
    notes = []
    for cls, n in (("defect-free", fp.good), ("defective", fp.defect)):
        if n < FEW_IMAGES:
            notes.append(f"only {n} {cls} images: the test split holds few of them, so scores "
                         "and intervals are noisy")
    if fp.imbalance > IMBALANCED:
        notes.append(f"classes imbalanced {fp.good} good / {fp.defect} defective: the "
                     "classifier's sampler draws both equally often")
    if fp.distinct_sizes > 1:
        notes.append(f"{fp.distinct_sizes} image sizes ({fp.min_size[0]}x{fp.min_size[1]} to "
                     f"{fp.max_size[0]}x{fp.max_size[1]}): every image is resized to the input "
                     "size")
    if fp.has_masks:
        notes.append(f"masks/ holds {fp.masks} masks: the plan never reads them")
    if fp.unreadable:
        notes.append(f"{len(fp.unreadable)} image(s) whose header cannot be read are left out "
                     f"(first: {fp.unreadable[0]})")
    return tuple(notes)
