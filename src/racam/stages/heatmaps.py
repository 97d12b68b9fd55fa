"""The heat-map stage: heat-map callables on a fold's classifier, and their quality (paper and
deployment views, :func:`racam.evaluation.cam_quality.evaluate_cam`) on the fold's test or
training images. Stored as ``fold<k>/cam/<split>/<method key>.json``."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from racam import compat
from racam.cam.registry import get_method, method_key
from racam.layout import scales_tag
from racam.run_cam import build_run_cam
from racam.stages.classifier import ClassifierStage
from racam.stages.context import StageContext
from racam.stages.results import StageResult, optional

#: Key entries whose change recomputes a stored heat-map result instead of refusing it: the
#: decision threshold only gates the deployment view, which the run folder can redo.
RECOMPUTE = ("decision_threshold",)


@dataclasses.dataclass(frozen=True, kw_only=True)
class CamQualityResult(StageResult):
    """Quality of one heat-map method on one split: pooled counts of the paper view
    (defective images) and the deployment view (every test image, maps of images called
    defect-free zeroed; ``None`` on training images), and ``paper_per_image``:
    ``{image id: [tp, fp, fn, tn]}`` of every defective image (for the paired bootstrap;
    ``None`` in results stored before it was kept)."""

    method: str
    delta: float | None = None
    split: str = "test"
    weighting: str | None = optional()
    fgbp_head: str | None = optional()
    paper: dict[str, int] | None = None
    deployment: dict[str, int] | None = None
    paper_per_image: dict[str, list[int]] | None = optional()


def per_image_counts(items: list[tuple[str, Any]]) -> dict[str, list[int]]:
    """``{image id: [tp, fp, fn, tn]}`` of ``(id, Counts)`` pairs; a repeated id gets ``#n``
    appended (:func:`racam.evaluation.gate.unique_ids`), so no image's counts are lost."""
    from racam.evaluation.gate import unique_ids

    keys = unique_ids([i for i, _ in items])
    return {k: [int(c.tp), int(c.fp), int(c.fn), int(c.tn)] for k, (_, c) in zip(keys, items)}


class HeatmapStage:
    """Heat maps of a run's classifiers and their stored quality."""

    def __init__(self, ctx: StageContext, classifier: ClassifierStage) -> None:
        self.ctx = ctx
        self.classifier = classifier

    def cam(self, fold: int, method: str, delta: float | None = None,
            layers: list[str] | None = None, *, weighting: str | None = None,
            fgbp_head: str | None = None, scales: list[float] | None = None
            ) -> Callable[..., torch.Tensor]:
        """A heat-map callable ``cam(images, targets=1)`` for ``method`` on the fold's
        classifier (``delta``, ``weighting``, ``fgbp_head``, ``scales``: the config's when
        ``None``)."""
        return build_run_cam(self.ctx.cfg, self.classifier.model(fold), method, delta, layers,
                             weighting=weighting, fgbp_head=fgbp_head, scales=scales)

    def _delta(self, method: str, delta: float | None) -> float | None:
        """The delta a method's result is keyed on (``None`` for methods without one)."""
        if not get_method(method).uses_delta:
            return None
        return self.ctx.cfg.cam.delta if delta is None else delta

    def path_key(self, fold: int, method: str, delta: float | None = None,
                 split: str = "test", weighting: str | None = None,
                 fgbp_head: str | None = None) -> tuple[Path, dict[str, Any]]:
        """Result file and stage key of :meth:`quality`."""
        ctx = self.ctx
        delta = self._delta(method, delta)
        opts = ctx.method_options(method, weighting, fgbp_head)
        c = ctx.cfg.cam
        name = method_key(method, delta, **opts) + scales_tag(c.scales, c.flips)
        path = ctx.fold_dir(fold) / "cam" / split / f"{name}.json"
        key: dict[str, Any] = {**ctx.key("data", "classifier"), "method": method,
                               "delta": delta,
                               **compat.without_added("cam", {"scales": c.scales,
                                                              "flips": c.flips})}
        if get_method(method).multi_layer:  # fusion and layers matter only there
            key.update(fusion=ctx.cfg.cam.fusion, layers=ctx.cfg.cam.layers)
        key.update(opts)  # RA-CAM's weighting, FGBP's head scope: only where they apply
        key["inputs"] = ctx.inputs(fold, lambda: self.classifier.checkpoint(fold))
        rule, fixed = ctx.cfg.classifier.threshold_rule, ctx.cfg.classifier.threshold
        if split == "test" and rule != "fixed":  # the threshold gates the deployment view
            key["decision_threshold"] = self.classifier.run(fold).decision_threshold(fixed)
        return path, key

    def quality(self, fold: int, method: str, delta: float | None = None,
                split: str = "test", *, weighting: str | None = None,
                fgbp_head: str | None = None, per_image: bool = False) -> CamQualityResult:
        """Quality of ``method`` on the fold's ``split`` (stored, or computed).
        ``per_image=True`` recomputes a result stored before per-image counts were kept."""
        path, key = self.path_key(fold, method, delta, split, weighting, fgbp_head)
        delta = self._delta(method, delta)
        opts = self.ctx.method_options(method, weighting, fgbp_head)
        label = f"fold {fold}: {method_key(method, delta, **opts)} on {split}"
        return self.ctx.stage(
            CamQualityResult, label, path,
            lambda: self._compute(fold, method, delta, split, weighting, fgbp_head), key,
            require=compat.LATER_FIELDS["cam"] if per_image else (),
            recompute=RECOMPUTE)

    def _compute(self, fold: int, method: str, delta: float | None, split: str,
                 weighting: str | None, fgbp_head: str | None) -> CamQualityResult:
        from racam.evaluation.cam_quality import evaluate_cam
        from racam.evaluation.pooling import counts_dict

        ctx = self.ctx
        fd = ctx.data(fold)
        ds = fd.test if split == "test" else fd.train_all
        clf = self.classifier.run(fold)
        probs = clf.test_probs if split == "test" else None
        r = evaluate_cam(self.cam(fold, method, delta, weighting=weighting, fgbp_head=fgbp_head),
                         ds, probs, batch_size=ctx.cfg.cam.batch_size, device=ctx.device,
                         progress=ctx.progress,
                         threshold=clf.decision_threshold(ctx.cfg.classifier.threshold))
        opts = ctx.method_options(method, weighting, fgbp_head)
        return CamQualityResult(
            method=method, delta=delta, split=split, weighting=opts.get("weighting"),
            fgbp_head=opts.get("fgbp_head"),
            paper=counts_dict(r["paper_counts"]),
            deployment=counts_dict(r["deployment_counts"])
            if r["deployment_counts"] is not None else None,
            paper_per_image=per_image_counts(r["paper_per_image"]))
