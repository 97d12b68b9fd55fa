"""The orchestrator of one config's run: :class:`Engine`, whose verbs are the CLI's commands.

``racam train-classifier`` -> :meth:`Engine.train_classifier`, ``pseudo-labels`` ->
:meth:`Engine.pseudo_labels`, ``train-seg`` -> :meth:`Engine.train_seg`, ``evaluate`` ->
:meth:`Engine.evaluate`, ``run`` (and ``demo``) -> :meth:`Engine.run`. Each verb runs the stages
of :mod:`racam.stages` it needs; a stage runs the stages it depends on when their results are
missing and reuses them when present.

Every stage writes its result under ``<output>/fold<k>/...`` last and atomically; when a run is
started again, finished stages are read back instead of recomputed (:mod:`racam.stages.cache`).
A stage's key holds the config it depends on and digests of the images and classifier
checkpoint it read (:mod:`racam.stages.identity`), so a stored result is reused only for the
same computation; results of earlier racam versions are read through :mod:`racam.compat`. The
input size is checked against the networks when the engine is created
(:mod:`racam.stages.preflight`), and :meth:`Engine.run` checks every stored result it would
reuse before computing anything, so a refused run changes nothing on disk; ``config.json`` is
written only when a stage is computed. Under ``torchrun`` every rank runs every stage (training
under DistributedDataParallel, per-image work split across ranks) and only rank 0 writes
results and the report (:mod:`racam.distributed`).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from racam import distributed
from racam.config import RunConfig
from racam.errors import ConfigError
from racam.evaluation.gate import is_gated
from racam.io import atomic_write_json
from racam.stages.cache import check_key
from racam.stages.classifier import RECOMPUTE as CLASSIFIER_RECOMPUTE
from racam.stages.classifier import (
    ClassifierStage,
    ClassifierStageResult,
    ClassifierSummary,
    classifier_summary,
)
from racam.stages.context import StageContext
from racam.stages.elapsed import CallLedger
from racam.stages.evaluate import (
    FoldResults,
    HeatmapEvaluation,
    RunResults,
    machine_info,
    summarize_run,
)
from racam.stages.folds import FoldData
from racam.stages.heatmaps import RECOMPUTE as HEATMAP_RECOMPUTE
from racam.stages.heatmaps import CamQualityResult, HeatmapStage
from racam.stages.label_next import LabelNextResult, LabelNextStage
from racam.stages.preflight import check_input_sizes
from racam.stages.pseudo_labels import PseudoLabelResult, PseudoLabelStage
from racam.stages.segmentation import SegmentationStage, SegmentationStageResult

if TYPE_CHECKING:
    from racam.plan.apply import PlannedRun

__all__ = ["ClassifierSummary", "Engine", "RunResults", "classifier_summary",
           "load_planned_config", "load_run_config", "machine_info", "parse_overrides"]


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """``KEY=VALUE`` strings (``--set classifier.epochs=2``) as dotted keys to values parsed as
    YAML; an item without ``=`` is refused (:class:`ConfigError`)."""
    import yaml

    values: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE")
        key, value = item.split("=", 1)
        values[key.strip()] = yaml.safe_load(value)
    return values


def load_planned_config(config: str | os.PathLike[str], overrides: Sequence[str] = (),
                        output: Path | None = None) -> tuple[RunConfig, PlannedRun | None]:
    """:func:`load_run_config`, and the run's :class:`racam.plan.apply.PlannedRun` (``None``:
    no plan)."""
    from racam.config import config_from_values, config_values
    from racam.plan.apply import planned_run

    values = parse_overrides(overrides)
    if output is not None:
        values["output"] = str(output)
    plain, path = config_values(config, values)
    cfg = config_from_values(plain, path)
    planned = planned_run(cfg, plain)
    return (cfg, None) if planned is None else (planned.config, planned)


def load_run_config(config: str | os.PathLike[str], overrides: Sequence[str] = (),
                    output: Path | None = None) -> RunConfig:
    """The config as ``racam run CONFIG --set KEY=VALUE ... --out OUTPUT`` loads it: a YAML file
    or a built-in name, the ``KEY=VALUE`` overrides applied, ``output`` replacing the config's
    ``output`` when given, and a folder run with ``data.plan: auto`` given its plan's values
    for the keys it leaves out."""
    return load_planned_config(config, overrides, output)[0]


class Engine:
    """Runs and caches the stages of one config in ``output`` (the config's ``output`` when
    ``None``). ``log`` receives progress lines; ``progress`` shows progress bars."""

    def __init__(self, cfg: RunConfig, output: Path | None = None, *, progress: bool = True,
                 log: Callable[[str], None] = print) -> None:
        self.ctx = StageContext(cfg, Path(output or cfg.output), progress=progress, log=log)
        self.classifier_stage = ClassifierStage(self.ctx)
        self.heatmaps = HeatmapStage(self.ctx, self.classifier_stage)
        self.pseudo = PseudoLabelStage(self.ctx, self.classifier_stage)
        self.seg = SegmentationStage(self.ctx, self.classifier_stage, self.pseudo)
        self.label_next = LabelNextStage(self.ctx, self.classifier_stage, self.pseudo, self.seg)
        self.seg.ranking = self.label_next.ranked_ids  # train_masks_choice: ranked
        self.folds  # noqa: B018  # a fold the dataset lacks is refused here
        check_input_sizes(cfg)

    # ------------------------------------------------------------- the run
    @property
    def cfg(self) -> RunConfig:
        return self.ctx.cfg

    @cfg.setter
    def cfg(self, cfg: RunConfig) -> None:  # the paper reproduction sets the chosen delta
        self.ctx.cfg = cfg

    @property
    def out(self) -> Path:
        return self.ctx.out

    @property
    def device(self) -> torch.device:
        return self.ctx.device

    @property
    def log(self) -> Callable[[str], None]:
        return self.ctx.log

    @property
    def stages_computed(self) -> int:
        """Stages this engine computed (not reused from the cache)."""
        return self.ctx.stages_computed

    @property
    def folds(self) -> list[int]:
        return self.ctx.folds

    def select_folds(self, fold: int | None = None) -> list[int]:
        """The config's folds, or ``[fold]`` when the dataset has that fold (``--fold``)."""
        from racam.data import registry

        if fold is None:
            return self.folds
        data = dataclasses.replace(self.cfg.data, folds=[fold])
        try:
            return registry.get(data.dataset).folds(data)
        except ConfigError as exc:
            raise ConfigError(f"--fold {fold}: {exc}") from None

    def fold_dir(self, fold: int) -> Path:
        return self.ctx.fold_dir(fold)

    def data(self, fold: int) -> FoldData:
        return self.ctx.data(fold)

    def has_masks(self, fold: int) -> bool:
        return self.ctx.has_masks(fold)

    # ------------------------------------------------------ one fold's stages
    def classifier(self, fold: int) -> ClassifierStageResult:
        """The fold's classifier stage (trained, or read back)."""
        return self.classifier_stage.run(fold)

    def model(self, fold: int) -> nn.Module:
        """The fold's kept classifier (eval mode)."""
        return self.classifier_stage.model(fold)

    def cam(self, fold: int, method: str, delta: float | None = None,
            layers: list[str] | None = None, *, weighting: str | None = None,
            fgbp_head: str | None = None) -> Callable[..., torch.Tensor]:
        """A heat-map callable on the fold's classifier (:meth:`HeatmapStage.cam`)."""
        return self.heatmaps.cam(fold, method, delta, layers, weighting=weighting,
                                 fgbp_head=fgbp_head)

    def cam_quality(self, fold: int, method: str, delta: float | None = None,
                    split: str = "test", *, weighting: str | None = None,
                    fgbp_head: str | None = None, per_image: bool = False) -> CamQualityResult:
        """Heat-map quality of ``method`` on the fold's ``split`` (:meth:`HeatmapStage.quality`)."""
        return self.heatmaps.quality(fold, method, delta, split, weighting=weighting,
                                     fgbp_head=fgbp_head, per_image=per_image)

    def pseudo_dir(self, fold: int) -> Path:
        """The folder of the fold's pseudo-labels."""
        return self.pseudo.folder(fold)

    def segmentation(self, fold: int, arch: str | None = None, source: str = "pseudo",
                     round: int | None = None, *, per_image: bool = False
                     ) -> SegmentationStageResult:
        """A segmentation network of the fold (:meth:`SegmentationStage.run`)."""
        return self.seg.run(fold, arch, source, round, per_image=per_image)

    # ----------------------------------------------------- verbs (CLI commands)
    def train_classifier(self, folds: list[int] | None = None
                         ) -> dict[int, ClassifierStageResult]:
        """``racam train-classifier``: each fold's classifier, trained and scored on test."""
        return {k: self.classifier(k) for k in folds or self.folds}

    def pseudo_labels(self, folds: list[int] | None = None) -> dict[int, PseudoLabelResult]:
        """``racam pseudo-labels``: each fold's pseudo-labels of the config's heat map."""
        return {k: self.pseudo.run(k) for k in folds or self.folds}

    def train_seg(self, folds: list[int] | None = None, arch: str | None = None,
                  source: str = "pseudo") -> dict[int, SegmentationStageResult]:
        """``racam train-seg``: each fold's segmentation network on pseudo-labels (or true
        masks), scored on test."""
        return {k: self.segmentation(k, arch, source) for k in folds or self.folds}

    def evaluate(self, method: str | None = None, delta: float | None = None
                 ) -> HeatmapEvaluation:
        """``racam evaluate``: a heat-map method's quality on the test images, pooled over
        folds (the config's method and delta when ``None``)."""
        method = method or self.cfg.cam.method
        return HeatmapEvaluation.of({k: self.cam_quality(k, method, delta) for k in self.folds})

    def run(self) -> RunResults:
        """``racam run``: every stage on every fold, pooled results in ``results.json`` and a
        short report."""
        gated = is_gated(self.cfg.segmentation.gate)  # gated counts come from per-image ones
        with CallLedger(self.out, lambda: self.stages_computed) as calls:
            self.check_stored()
            folds = {}
            for k in self.folds:
                clf = self.classifier(k)
                cam = (self.cam_quality(k, self.cfg.cam.method) if self.has_masks(k)
                       else None)  # without masks there is nothing to score heat maps against
                folds[k] = FoldResults(clf, cam, self.pseudo.run(k),
                                       self.segmentation(k, per_image=gated),
                                       self.label_list(k))
            return self._finish(folds, calls)

    def label_list(self, fold: int) -> LabelNextResult:
        """The fold's label-next list (:mod:`racam.stages.label_next`), also written as
        ``fold<k>/label-next.csv``: of the weak run (``segmentation.train_masks: none``) when
        this run is it or chose its images ``ranked`` from it, else of this run's network
        without the images that learned from their true mask."""
        s = self.cfg.segmentation
        ranked = s.train_mask_count() is not None and s.train_masks_choice == "ranked"
        result = self.label_next.run(fold, weak=ranked or s.train_masks == "none")
        self.label_next.write_csv(fold, result)
        return result

    # ------------------------------------------------------------------ checks
    def check_stored(self, folds: list[int] | None = None, *, cam: bool = True,
                     pseudo: bool = True, segmentation: bool = True,
                     arch: str | None = None, source: str = "pseudo") -> None:
        """Refuse (:class:`ConfigError`, nothing written) when a stored result that the stages
        would reuse was computed under another key or in a format this racam does not read.
        Stages after the classifier are checked only when the classifier result exists (their
        key holds its checkpoint's digest)."""
        for k in self.folds if folds is None else folds:
            result = self.classifier_stage.folder(k) / "result.json"
            if check_key(result, self.classifier_stage.key(k), CLASSIFIER_RECOMPUTE) is None:
                if pseudo and result.exists():  # chosen again: refused whichever it keeps
                    check_key(self.pseudo.folder(k) / "result.json",
                              self.ctx.key("data", "classifier", "cam"), ("inputs", "scale"))
                continue  # none stored, or chosen again: later keys need the new checkpoint
            if cam and self.has_masks(k):
                check_key(*self.heatmaps.path_key(k, self.cfg.cam.method), HEATMAP_RECOMPUTE)
            if pseudo:
                check_key(self.pseudo.folder(k) / "result.json", self.pseudo.key(k))
            if segmentation:
                seg_dir, seg_key = self.seg.path_key(k, arch or self.cfg.segmentation.arch,
                                                     source)
                check_key(seg_dir / "result.json", seg_key)

    # ------------------------------------------------------------------ report
    def _finish(self, folds: dict[int, FoldResults], calls: CallLedger) -> RunResults:
        """``results.json`` and the report from the folds' stage results."""
        from racam.report.heatmap_methods import compare_methods
        from racam.report.run_report import write_run_report

        fold = self.folds[0]
        gate = (self.cfg.classifier.threshold if is_gated(self.cfg.segmentation.gate)
                else None)
        results = summarize_run(folds, gate, data=self.ctx.data_problems(fold),
                                **calls.summary(), machine=machine_info(),
                                world_size=distributed.world_size())
        overlays = self.overlays(fold)  # every rank: it reads cached stages in step
        if distributed.is_main():
            atomic_write_json(self.out / "results.json", results.to_json())
            methods = compare_methods([self.heatmaps.path_key(k, self.cfg.cam.method)[0]
                                       for k in folds if self.has_masks(k)])
            write_run_report(self.cfg, results, self.out, device=self.device,
                             overlays=overlays, overlay_fold=fold, methods=methods)
        distributed.barrier()  # the report is written
        return results

    def overlays(self, fold: int, n: int = 4) -> list[list[tuple]]:
        """Report panels (image, heat map, Otsu mask, segmentation) of the first ``n``
        defective test images of ``fold``."""
        from racam.report.run_report import overlay_rows
        from racam.segmentation import load_segmentation

        test = self.data(fold).test
        seg, _ = load_segmentation(self.segmentation(fold).checkpoint, map_location=self.device)
        return overlay_rows(test, self.cam(fold, self.cfg.cam.method), seg, self.device,
                            self.cfg.cam.method, n, self.cfg.segmentation.mask_cut)
