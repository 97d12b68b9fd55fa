"""The classifier stage: train (or resume) the image-level classifier of a fold, choosing among
restarts and ``classifier.candidates`` (:mod:`racam.classifier.restarts`), and score it on the
fold's test images. Stored as ``fold<k>/classifier/result.json``."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from torch import nn
from torch.utils.data import Subset

from racam import distributed
from racam.classifier.epochs import EPOCHS_DIR, EpochChoice
from racam.classifier.threshold import ThresholdChoice
from racam.classifier.train import ClassifierResult
from racam.pseudo.scale_choice import ScaleChoice, Scales, choose_scale, scales_text
from racam.run_cam import build_run_cam
from racam.stages.cache import plain_key
from racam.stages.context import StageContext
from racam.stages.identity import file_digest
from racam.stages.results import StageResult, optional

#: Key entries whose change chooses the classifier again instead of refusing the stored result:
#: the ``cam`` options shape only the choice among trained weights, not the training, and
#: ``classifier.threshold_rule`` only the decision threshold of the kept weights.
RECOMPUTE = ("cam", "scale_candidates", "threshold_rule")


@dataclasses.dataclass(frozen=True, kw_only=True)
class ClassifierStageResult(StageResult):
    """The kept classifier of a fold and its test scores (``None``: one class in the test
    images). ``attempts``: one record per trained attempt when there were several."""

    checkpoint: str = ""
    best_epoch: int | None = None
    history: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    diverged_at: int | None = optional()
    attempts: list[dict[str, Any]] | None = optional()
    #: ``classifier.keep_epoch: pseudo_area``: the kept epoch, its file, the epoch validation
    #: AUROC keeps and each scored epoch's area (:class:`racam.classifier.epochs.EpochChoice`)
    epoch_choice: dict[str, Any] | None = optional()
    #: ``cam.scale_candidates``: the pseudo-labels' scale and each candidate's area
    #: (:class:`racam.pseudo.scale_choice.ScaleChoice`)
    scale_choice: dict[str, Any] | None = optional()
    #: ``classifier.threshold_rule: val_f1``: the threshold chosen on the validation images
    #: (:class:`racam.classifier.threshold.ThresholdChoice`)
    threshold_choice: dict[str, Any] | None = optional()
    test_ids: list[str] = dataclasses.field(default_factory=list)
    test_labels: list[int] = dataclasses.field(default_factory=list)
    test_probs: list[float] = dataclasses.field(default_factory=list)
    test_auroc: float | None = None
    test_ap: float | None = None
    test_accuracy: float | None = None

    def decision_threshold(self, fixed: float) -> float:
        """The defect probability at or above which this classifier calls an image defective:
        the validation-chosen one when stored, else ``fixed`` (``classifier.threshold``)."""
        return fixed if self.threshold_choice is None else float(
            self.threshold_choice["threshold"])


@dataclasses.dataclass(frozen=True)
class Candidate:
    """One of ``classifier.candidates``: its seed, the share of the defective training images
    its pseudo-labels mark, and whether it was kept."""

    seed: int
    pseudo_area: float
    chosen: bool


@dataclasses.dataclass(frozen=True)
class ClassifierSummary:
    """The report's view of a classifier stage: test scores, kept epoch, seconds, and (where
    they happened) divergence, a restart and the scored candidates."""

    test_auroc: float | None
    test_ap: float | None
    best_epoch: int | None
    seconds: float | None
    diverged_at: int | None = None
    restarted: bool = False
    candidates: tuple[Candidate, ...] = ()
    epoch_choice: dict[str, Any] | None = None
    scale_choice: dict[str, Any] | None = None
    threshold_choice: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return {"test_auroc": self.test_auroc, "test_ap": self.test_ap,
                "best_epoch": self.best_epoch, "seconds": self.seconds,
                **({"diverged_at": self.diverged_at} if self.diverged_at else {}),
                **({"restarted": True} if self.restarted else {}),
                **({"candidates": [dataclasses.asdict(c) for c in self.candidates]}
                   if self.candidates else {}),
                **({"epoch_choice": self.epoch_choice} if self.epoch_choice else {}),
                **({"scale_choice": self.scale_choice} if self.scale_choice else {}),
                **({"threshold_choice": self.threshold_choice} if self.threshold_choice
                   else {})}

    @classmethod
    def of(cls, v: ClassifierStageResult) -> ClassifierSummary:
        """The summary of a classifier stage result."""
        attempts = v.attempts or []
        return cls(v.test_auroc, v.test_ap, v.best_epoch, v.seconds, v.diverged_at or None,
                   any(a.get("chosen") and a.get("attempt", 0) > 0 and "pseudo_area" not in a
                       for a in attempts),
                   tuple(Candidate(a["seed"], a["pseudo_area"], a["chosen"])
                         for a in attempts if "pseudo_area" in a), v.epoch_choice,
                   v.scale_choice, v.threshold_choice)

    @classmethod
    def from_json(cls, v: dict[str, Any]) -> ClassifierSummary:
        return cls(v.get("test_auroc"), v.get("test_ap"), v.get("best_epoch"), v.get("seconds"),
                   v.get("diverged_at"), bool(v.get("restarted")),
                   tuple(Candidate(**c) for c in v.get("candidates", [])),
                   v.get("epoch_choice"), v.get("scale_choice"), v.get("threshold_choice"))


def classifier_summary(v: ClassifierStageResult | dict[str, Any]) -> dict[str, Any]:
    """The stored form of :meth:`ClassifierSummary.of` (the paper reproduction's JSON) of a
    classifier stage result, typed or stored."""
    if isinstance(v, dict):
        v = ClassifierStageResult.from_json(v)
    return ClassifierSummary.of(v).to_json()


class ClassifierStage:
    """Trains, stores and loads the classifiers of a run's folds."""

    def __init__(self, ctx: StageContext) -> None:
        self.ctx = ctx
        self._models: dict[int, nn.Module] = {}
        self._scales: dict[Path, ScaleChoice] = {}  # by attempt folder
        self._areas: dict[tuple[str, Scales | None], float] = {}  # by (weights digest, scales)

    def folder(self, fold: int) -> Path:
        return self.ctx.fold_dir(fold) / "classifier"

    def key(self, fold: int) -> dict[str, Any]:
        """The config the kept classifier depends on: ``data``, ``classifier`` and the images;
        ``cam`` too where the pseudo-labels' area chooses (``classifier.candidates`` above 1,
        ``keep_epoch: pseudo_area``, ``cam.scale_candidates``), less ``cam.good_prior``, which
        the area does not see."""
        cfg = self.ctx.cfg
        scales = cfg.cam.scale_candidates  # they shape the area choices
        by_area = (cfg.classifier.candidates > 1 or cfg.classifier.keep_epoch == "pseudo_area"
                   or bool(scales))
        key = self.ctx.key("data", "classifier", *(["cam"] if by_area else []))
        if "cam" in key:  # the area is the map's alone (:meth:`pseudo_area`)
            key["cam"] = {k: v for k, v in key["cam"].items() if k != "good_prior"}
        rule = cfg.classifier.threshold_rule  # volatile in other stages' keys: its own entry
        return {**key, "inputs": self.ctx.inputs(fold),
                **({"scale_candidates": scales} if scales else {}),
                **({"threshold_rule": rule} if rule != "fixed" else {})}

    def run(self, fold: int) -> ClassifierStageResult:
        """The fold's classifier: stored, or trained (resuming from ``last.pt``) and scored. A
        stored one whose ``cam`` options changed (:data:`RECOMPUTE`) is chosen again among the
        stored weights: finished training resumes at its end, so only the area passes run."""
        path = self.folder(fold) / "result.json"
        return self.ctx.stage(ClassifierStageResult, f"fold {fold}: classifier", path,
                              lambda: self._compute(fold), self.key(fold), recompute=RECOMPUTE)

    def checkpoint(self, fold: int) -> str:
        """Path of the fold's kept classifier checkpoint (training it if needed)."""
        return self.run(fold).checkpoint

    def model(self, fold: int) -> nn.Module:
        """The fold's kept classifier, loaded once, in eval mode."""
        if fold not in self._models:
            from racam.classifier import load_classifier
            model, _ = load_classifier(self.checkpoint(fold), map_location=self.ctx.device)
            self._models[fold] = model.eval()
        return self._models[fold]

    def _compute(self, fold: int) -> ClassifierStageResult:
        from sklearn.metrics import average_precision_score, roc_auc_score

        from racam.classifier import load_classifier, predict_proba
        from racam.classifier.restarts import train_until_learned

        ctx, cfg = self.ctx, self.ctx.cfg
        fd = ctx.data(fold)
        choices: dict[Path, EpochChoice] = {}
        ctx.note_precision("classifier.precision", cfg.classifier.precision)
        res, attempts = train_until_learned(
            cfg.classifier, fd.train, fd.val, self.folder(fold), seed=cfg.seed + fold,
            log=ctx.log, device=ctx.device, in_channels=cfg.data.channels,
            progress=ctx.progress, score_name="pseudo_area",
            score=lambda r: self.pseudo_area(fold, r.best_path),
            keep=(lambda r: self.keep_epoch(fold, r, choices))
            if cfg.classifier.keep_epoch == "pseudo_area" else None)
        choice = choices.get(Path(res.best_path))
        scale = self.scale_choice(fold, Path(res.best_path))
        model, _ = load_classifier(res.best_path, map_location=ctx.device)
        bs = cfg.cam.batch_size
        probs = distributed.sharded_map(  # each rank 1/N of the test images
            lambda idx: predict_proba(model, Subset(fd.test, idx), batch_size=bs,
                                      device=ctx.device).tolist(),
            range(len(fd.test)), block=bs)
        labels = list(fd.test.labels)
        two = len(set(labels)) == 2
        chosen = self._threshold(fold, model) if cfg.classifier.threshold_rule == "val_f1" else None
        cut = cfg.classifier.threshold if chosen is None else chosen.threshold
        return ClassifierStageResult(
            checkpoint=str(res.best_path), best_epoch=res.best_epoch, history=res.history,
            diverged_at=res.diverged_at or None,
            attempts=attempts if len(attempts) > 1 else None,
            epoch_choice=None if choice is None else choice.to_json(),
            scale_choice=None if scale is None else scale.to_json(),
            threshold_choice=None if chosen is None else chosen.to_json(),
            test_ids=[r.id for r in fd.test.records], test_labels=labels, test_probs=probs,
            test_auroc=roc_auc_score(labels, probs) if two else None,
            test_ap=average_precision_score(labels, probs) if two else None,
            test_accuracy=sum((p >= cut) == bool(y)
                              for p, y in zip(probs, labels)) / max(1, len(labels)))

    def _threshold(self, fold: int, model: nn.Module) -> ThresholdChoice:
        """The decision threshold of the kept ``model`` chosen on the fold's validation images
        (``classifier.threshold_rule: val_f1``; image labels only)."""
        from racam.classifier import predict_proba
        from racam.classifier.threshold import choose_threshold

        ctx, c = self.ctx, self.ctx.cfg.classifier
        val = ctx.data(fold).val
        probs = predict_proba(model, val, batch_size=ctx.cfg.cam.batch_size,
                              device=ctx.device).tolist() if len(val) else []
        choice = choose_threshold(list(val.labels), probs, c.threshold)
        how = (f"kept {c.threshold:g} (the validation images hold one class)" if choice.fallback
               else f"{choice.threshold:.4g}, validation F1 {choice.f1:.3f} on {choice.images} "
                    f"images ({choice.defective} defective; {choice.f1_fixed:.3f} at "
                    f"{c.threshold:g})")
        ctx.log(f"[racam] fold {fold}: decision threshold {how}")
        return choice

    def keep_epoch(self, fold: int, res: ClassifierResult,
                   choices: dict[Path, EpochChoice]) -> ClassifierResult:
        """``res`` with the epoch kept by pseudo-label area (``classifier.keep_epoch``); the
        choice is added to ``choices`` under the kept weights' path."""
        from racam.classifier.epochs import keep_smallest_area

        c = self.ctx.cfg.classifier
        choice = keep_smallest_area(Path(res.best_path).parent, res.history, res.best_epoch,
                                    c.keep_tolerance, lambda p: self.pseudo_area(fold, p))
        self.ctx.log(f"[racam] fold {fold}: kept classifier epoch {choice.epoch} (smallest "
                     f"pseudo-label area of {len(choice.areas)} epochs within "
                     f"{c.keep_tolerance:g} of the best validation AUROC, epoch "
                     f"{choice.by_auroc})")
        choices[choice.path] = choice
        return dataclasses.replace(res, best_path=choice.path, best_epoch=choice.epoch)

    def scale_choice(self, fold: int, checkpoint: Path) -> ScaleChoice | None:
        """The pseudo-labels' scales of the classifier attempt ``checkpoint`` belongs to
        (``cam.scale_candidates``, ``cam.scale_rule``; ``None`` when unset), chosen at the
        attempt's ``best.pt`` the first time it is asked for (:mod:`racam.pseudo.scale_choice`)."""
        cam = self.ctx.cfg.cam
        if not cam.scale_candidates:
            return None
        folder = checkpoint.parent
        folder = folder.parent if folder.name == EPOCHS_DIR else folder
        if folder not in self._scales:
            best = folder / "best.pt"
            c = self._scales[folder] = choose_scale(
                cam.scale_candidates, lambda s: self.pseudo_area(fold, best, scales=(s,)),
                lambda s: self.called_share(fold, best, s), rule=cam.scale_rule)
            evidence = [f"; {what} " + ", ".join(f"{100 * v:.2f} % at {s:g}" for s, v in d.items())
                        for what, d in (("defective images called defective", c.called),
                                        ("area", c.areas)) if d]
            self.ctx.log(f"[racam] fold {fold}: pseudo-labels at {scales_text(c.scales)}"
                         + "".join(evidence))
        return self._scales[folder]

    def called_share(self, fold: int, checkpoint: Path, scale: float) -> float:
        """Share of the fold's defective training images the classifier at ``checkpoint`` calls
        defective on the input resized by ``scale`` (:func:`racam.pseudo.scale_choice.called_share`;
        image labels only)."""
        from racam.classifier import load_classifier
        from racam.pseudo.scale_choice import called_share

        ds = self.ctx.data(fold).train_all
        model, _ = load_classifier(checkpoint, map_location=self.ctx.device)
        return called_share(model.eval(), ds, [i for i, y in enumerate(ds.labels) if y == 1],
                            scale, threshold=self.ctx.cfg.classifier.threshold,
                            batch_size=self.ctx.cfg.cam.batch_size, device=self.ctx.device)

    def pseudo_scales(self, fold: int) -> Scales | None:
        """The input scales whose maps the fold's pseudo-labels are drawn from (``None``:
        ``cam.scales``)."""
        if not self.ctx.cfg.cam.scale_candidates:
            return None
        choice = self.run(fold).scale_choice
        return None if choice is None else ScaleChoice.from_json(choice).scales

    def pseudo_area(self, fold: int, checkpoint: Path, scales: Scales | None = None) -> float:
        """Share of the defective training images that the config's pseudo-labels from
        ``checkpoint`` mark (:func:`racam.pseudo.area.pseudo_label_area`; label-free), the
        score by which ``classifier.candidates`` and ``keep_epoch`` choose; from the mean of the
        maps at ``scales``, else at the attempt's chosen scales (:meth:`scale_choice`). The
        classifier's map alone: ``cam.good_prior`` flattens the areas across epochs and is
        applied to the labels only (docs/protocol.md). Without it the masks are kept for the
        pseudo-label stage under its key (:mod:`racam.pseudo.stash`).
        Weights scored before at the same scales are not scored again (``best.pt`` is a copy of
        its epoch's file)."""
        from racam.classifier import load_classifier
        from racam.layout import pseudo_key
        from racam.pseudo.area import pseudo_label_area
        from racam.pseudo.stash import MaskStash, stash_dir

        ctx = self.ctx
        if scales is None and (chosen := self.scale_choice(fold, checkpoint)) is not None:
            scales = chosen.scales
        digest = file_digest(checkpoint)
        if (digest, scales) in self._areas:
            return self._areas[digest, scales]
        ds = ctx.data(fold).train_all
        model, _ = load_classifier(checkpoint, map_location=ctx.device)
        c = ctx.cfg.cam
        cam = build_run_cam(ctx.cfg, model.eval(), c.method, c.delta,
                            scales=None if scales is None else list(scales))
        keep = None if c.good_prior else MaskStash(
            stash_dir(checkpoint, pseudo_key(ctx.cfg, scales)),
            plain_key(pseudo_labels_key(ctx, fold, digest, scales))).keep
        area = pseudo_label_area(cam, ds,
                                 [i for i, y in enumerate(ds.labels) if y == 1],
                                 keep=keep, **ctx.pseudo_mask_options())
        ctx.log(f"[racam] fold {fold}: classifier {checkpoint}: pseudo-labels mark "
                f"{100 * area:.2f} % of the defective training images"
                + ("" if scales is None else f" ({scales_text(scales)})"))
        self._areas[digest, scales] = area
        return area


def pseudo_labels_key(ctx: StageContext, fold: int, checkpoint_digest: str,
                      scales: Scales | None = None) -> dict[str, Any]:
    """The pseudo-label stage's key for the fold's classifier whose checkpoint has the digest
    ``checkpoint_digest`` (:func:`racam.stages.identity.file_digest`): the config's ``data``,
    ``classifier`` and ``cam`` sections, the digests of the images and the checkpoint, and the
    chosen input ``scales`` (``cam.scale_candidates``; :func:`scales_entry`)."""
    return {**ctx.key("data", "classifier", "cam"),
            "inputs": {**ctx.inputs(fold), "checkpoint": checkpoint_digest},
            **scales_entry(scales)}


def scales_entry(scales: Scales | None) -> dict[str, Any]:
    """The stage-key entry of the pseudo-labels' chosen ``scales``: none when unset, one number
    for one scale (as keys were written before the ``mean`` rule), else their list."""
    if scales is None:
        return {}
    return {"scale": scales[0] if len(scales) == 1 else list(scales)}
