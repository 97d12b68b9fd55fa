"""The evaluation stage: the folds' stage results pooled into a run's numbers (``results.json``,
:class:`RunResults`), bootstrap intervals of the pooled IoUs, and a heat-map method's quality
pooled over folds (``racam evaluate``, :class:`HeatmapEvaluation`)."""

from __future__ import annotations

import dataclasses
import platform
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from racam.evaluation.gate import GatedCounts, gated_per_image
from racam.evaluation.pooling import merged_per_image, pooled
from racam.stages.classifier import ClassifierStageResult, ClassifierSummary
from racam.stages.heatmaps import CamQualityResult
from racam.stages.label_next import LabelNextResult
from racam.stages.problems import DataProblems
from racam.stages.pseudo_labels import PseudoLabelResult
from racam.stages.segmentation import SegmentationStageResult

#: The pooled views of a run, in ``results.json`` and report order (``segmentation_gated``:
#: the same network's masks emptied where the classifier calls the image good, computed when
#: ``segmentation.gate: classifier``; :mod:`racam.evaluation.gate`).
VIEWS = ("cam_paper", "cam_deployment", "pseudo_labels", "segmentation", "segmentation_gated")
#: How a view is named where its key would not say it (printed summary).
VIEW_LABELS = {"segmentation_gated": "segmentation, gated by the classifier"}
#: Rows of each fold's label-next list kept in ``results.json`` and the report.
LABEL_NEXT_SHOWN = 10


@dataclasses.dataclass(frozen=True)
class FoldResults:
    """The stage results of one fold of ``racam run`` (``cam``: ``None`` without true masks;
    ``label_next``: ``None`` where the run does not compute the list)."""

    classifier: ClassifierStageResult
    cam: CamQualityResult | None
    pseudo: PseudoLabelResult
    segmentation: SegmentationStageResult
    label_next: LabelNextResult | None = None

    def stage_seconds(self) -> dict[str, float | None]:
        stages = {"classifier": self.classifier, "cam": self.cam, "pseudo": self.pseudo,
                  "segmentation": self.segmentation, "label_next": self.label_next}
        return {name: r.seconds for name, r in stages.items() if r is not None}


@dataclasses.dataclass(frozen=True)
class ClassifierPooled:
    """The classifiers' test scores pooled over folds, per fold, and their seconds."""

    test_auroc_pooled: float | None
    test_ap_pooled: float | None
    per_fold_auroc: dict[int, float | None]
    per_fold: dict[int, ClassifierSummary]
    seconds: float

    def to_json(self) -> dict[str, Any]:
        return {"test_auroc_pooled": self.test_auroc_pooled, "test_ap_pooled": self.test_ap_pooled,
                "per_fold_auroc": self.per_fold_auroc,
                "per_fold": {k: v.to_json() for k, v in self.per_fold.items()},
                "seconds": self.seconds}

    @classmethod
    def from_json(cls, v: dict[str, Any]) -> ClassifierPooled:
        return cls(v.get("test_auroc_pooled"), v.get("test_ap_pooled"),
                   {int(k): a for k, a in v.get("per_fold_auroc", {}).items()},
                   {int(k): ClassifierSummary.from_json(s)
                    for k, s in v.get("per_fold", {}).items()}, v.get("seconds", 0))


@dataclasses.dataclass(frozen=True)
class RunResults:
    """The numbers of a ``racam run`` (``results.json``): pooled views (``None``: not
    computed), their bootstrap ``intervals``, stage seconds by fold, the dataset's problems,
    wall time of the calls (:class:`racam.stages.elapsed.CallLedger`), the machine;
    ``train_masks``: by fold, which training images learned from their true mask
    (:meth:`racam.pseudo.mixed.TrainMasks.to_json`; empty with ``train_masks: none``);
    ``label_next``: by fold, the first :data:`LABEL_NEXT_SHOWN` rows of its label-next list;
    ``pseudo_deletion``: by fold, the label-free deletion check of its pseudo-labels
    (:class:`racam.pseudo.deletion.DeletionCheck` as JSON); ``network_agreement``: by fold,
    the pooled IoU of the masks drawn by the label-next list's network and the pseudo-labels
    on the listed defective training images (:func:`racam.pseudo.ranking.network_agreement`)."""

    folds: list[int]
    classifier: ClassifierPooled
    cam_paper: dict[str, Any] | None
    cam_deployment: dict[str, Any] | None
    pseudo_labels: dict[str, Any] | None
    segmentation: dict[str, Any] | None
    intervals: dict[str, dict[str, Any] | None]
    stage_seconds: dict[int, dict[str, float | None]]
    data: DataProblems = dataclasses.field(default_factory=DataProblems)
    wall_seconds_this_call: float | None = None
    wall_seconds_all_calls: float | None = None
    calls: int | None = None
    machine: dict[str, Any] = dataclasses.field(default_factory=dict)
    world_size: int = 1
    train_masks: dict[int, dict[str, Any]] = dataclasses.field(default_factory=dict)
    label_next: dict[int, list[dict[str, Any]]] = dataclasses.field(default_factory=dict)
    segmentation_gated: dict[str, Any] | None = None
    pseudo_deletion: dict[int, dict[str, Any]] = dataclasses.field(default_factory=dict)
    network_agreement: dict[int, float] = dataclasses.field(default_factory=dict)

    def view(self, name: str) -> dict[str, Any] | None:
        """One of the pooled :data:`VIEWS`."""
        value: dict[str, Any] | None = getattr(self, name)
        return value

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"folds": self.folds, "classifier": self.classifier.to_json()}
        out.update({name: self.view(name) for name in VIEWS
                    if name != "segmentation_gated" or self.segmentation_gated is not None})
        out.update(intervals=self.intervals, stage_seconds=self.stage_seconds,
                   data=self.data.to_json(), wall_seconds_this_call=self.wall_seconds_this_call,
                   wall_seconds_all_calls=self.wall_seconds_all_calls, calls=self.calls,
                   machine=self.machine, world_size=self.world_size,
                   train_masks=self.train_masks, label_next=self.label_next,
                   pseudo_deletion=self.pseudo_deletion,
                   network_agreement=self.network_agreement)
        return out

    @classmethod
    def from_json(cls, v: dict[str, Any]) -> RunResults:
        return cls(list(v["folds"]), ClassifierPooled.from_json(v["classifier"]),
                   v.get("cam_paper"), v.get("cam_deployment"), v.get("pseudo_labels"),
                   v.get("segmentation"), dict(v.get("intervals") or {}),
                   {int(k): s for k, s in v.get("stage_seconds", {}).items()},
                   DataProblems.from_json(v.get("data") or {}), v.get("wall_seconds_this_call"),
                   v.get("wall_seconds_all_calls"), v.get("calls"), v.get("machine") or {},
                   v.get("world_size", 1),
                   train_masks={int(k): t for k, t in (v.get("train_masks") or {}).items()},
                   label_next={int(k): r for k, r in (v.get("label_next") or {}).items()},
                   segmentation_gated=v.get("segmentation_gated"),
                   pseudo_deletion={int(k): d for k, d in
                                    (v.get("pseudo_deletion") or {}).items()},
                   network_agreement={int(k): a for k, a in
                                      (v.get("network_agreement") or {}).items()})


def summarize_run(folds: dict[int, FoldResults], gate_threshold: float | None = None,
                  **extra: Any) -> RunResults:
    """Pooled numbers of the folds' stage results (``extra``: the other fields of
    :class:`RunResults`); with ``gate_threshold`` (``segmentation.gate: classifier``), the
    segmentation's counts gated by each fold's classifier at its decision threshold too (the
    validation-chosen one where stored, else ``gate_threshold``)."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    labels: list[int] = sum((f.classifier.test_labels for f in folds.values()), [])
    probs: list[float] = sum((f.classifier.test_probs for f in folds.values()), [])
    two = len(set(labels)) == 2
    clf = ClassifierPooled(
        roc_auc_score(labels, probs) if two else None,
        average_precision_score(labels, probs) if two else None,
        {k: f.classifier.test_auroc for k, f in folds.items()},
        {k: ClassifierSummary.of(f.classifier) for k, f in folds.items()},
        sum(0 if f.classifier.seconds is None else f.classifier.seconds
            for f in folds.values()))
    gated = _gated(folds, gate_threshold)
    return RunResults(
        sorted(folds), clf,
        cam_paper=pooled(folds, lambda f: f.cam.paper if f.cam else None),
        cam_deployment=pooled(folds, lambda f: f.cam.deployment if f.cam else None),
        pseudo_labels=pooled(folds, lambda f: f.pseudo.pseudo_vs_true_defective),
        segmentation=pooled(folds, lambda f: f.segmentation.counts),
        intervals={
            "cam_paper": iou_interval(folds, lambda f: f.cam.paper_per_image if f.cam else None),
            "segmentation": iou_interval(folds, lambda f: f.segmentation.per_image),
            **({"segmentation_gated": iou_interval(gated, lambda g: g.per_image)}
               if gated else {})},
        stage_seconds={k: f.stage_seconds() for k, f in folds.items()},
        train_masks={k: f.segmentation.train_masks for k, f in folds.items()
                     if f.segmentation.train_masks is not None},
        label_next={k: f.label_next.rows[:LABEL_NEXT_SHOWN] for k, f in folds.items()
                    if f.label_next is not None},
        segmentation_gated=_gated_view(gated, None if gate_threshold is None else {
            k: f.classifier.decision_threshold(gate_threshold) for k, f in folds.items()}),
        pseudo_deletion={k: f.pseudo.deletion for k, f in folds.items() if f.pseudo.deletion},
        network_agreement=_agreement(folds),
        **extra)


def _agreement(folds: dict[int, FoldResults]) -> dict[int, float]:
    """Each listed fold's :func:`~racam.pseudo.ranking.network_agreement` (where defined)."""
    from racam.pseudo.ranking import network_agreement

    out = {}
    for k, f in folds.items():
        value = None if f.label_next is None else network_agreement(f.label_next.ranked())
        if value is not None:
            out[k] = value
    return out


def _gated(folds: dict[int, FoldResults], threshold: float | None
           ) -> dict[int, GatedCounts] | None:
    """Each fold's segmentation per-image counts gated by its classifier's test probabilities
    (:func:`racam.evaluation.gate.gated_per_image`); ``None`` without a threshold, or when a
    fold lacks per-image counts or an image's probability."""
    if threshold is None:
        return None
    out = {}
    for k, f in folds.items():
        per, c = f.segmentation.per_image, f.classifier
        g = None if per is None else gated_per_image(per, c.test_ids, c.test_probs,
                                                     c.decision_threshold(threshold))
        if g is None:
            return None
        out[k] = g
    return out


def _gated_view(gated: dict[int, GatedCounts] | None, thresholds: dict[int, float] | None
                ) -> dict[str, Any] | None:
    """The pooled gated view: scores and counts, the decision threshold (one number when every
    fold shares it, else one per fold) and how many test images' masks the gate emptied."""
    view = pooled(gated or {}, lambda g: g.pooled())
    if view is None or gated is None or not thresholds:
        return None
    values = set(thresholds.values())
    shown = values.pop() if len(values) == 1 else {str(k): t for k, t in thresholds.items()}
    return {**view, "gate_threshold": shown,
            "emptied_images": sum(g.emptied_images for g in gated.values())}


def iou_interval(folds: dict[int, Any], per_image: Callable[[Any], dict[str, Any] | None]
                 ) -> dict[str, Any] | None:
    """Bootstrap interval (:func:`racam.evaluation.bootstrap.bootstrap_iou`) of the pooled
    IoU over the per-image counts ``per_image(fold result)`` of every fold, the images of all
    folds resampled together; ``None`` when a fold has none."""
    from racam.evaluation.bootstrap import BOOTSTRAP_SEED, CONFIDENCE, bootstrap_iou

    merged = merged_per_image(folds, per_image)
    if not merged:
        return None
    return bootstrap_iou([merged[i] for i in sorted(merged)], confidence=CONFIDENCE,
                         seed=BOOTSTRAP_SEED).to_dict()


@dataclasses.dataclass(frozen=True)
class HeatmapEvaluation:
    """A heat-map method's quality pooled over folds: paper and deployment views."""

    paper: dict[str, Any] | None
    deployment: dict[str, Any] | None

    @classmethod
    def of(cls, folds: dict[int, CamQualityResult]) -> HeatmapEvaluation:
        return cls(pooled(folds, lambda f: f.paper), pooled(folds, lambda f: f.deployment))

    def to_json(self) -> dict[str, Any]:
        return {"paper": self.paper, "deployment": self.deployment}


def machine_info() -> dict[str, Any]:
    """Where the run happened, for reports."""
    import os

    from racam.precision import native_bf16

    info = {"platform": platform.platform(), "python": platform.python_version(),
            "torch": torch.__version__, "cpus": os.cpu_count(),
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            # the CPU's vector instructions: the numerics and the speed of a run follow them
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "cpu_native_bf16": native_bf16(torch.device("cpu"))}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return info
