"""The whole pipeline for one config: classifier, heat maps, pseudo-labels, segmentation, report.

Every stage writes its result under ``<output>/fold<k>/...`` last and atomically; when a run is
started again, finished stages are read back instead of recomputed (see
:mod:`racam.pipeline.cache`). A stage's key holds the config it depends on and digests of the
images and classifier checkpoint it read (:mod:`racam.pipeline.identity`), so a stored result is
reused only for the same computation. The input size is checked against the networks when the
pipeline is created (:mod:`racam.pipeline.preflight`), and :meth:`Pipeline.run` checks every
stored result it would reuse before computing anything, so a refused run changes nothing on
disk; ``config.json`` is written only when a stage is computed. Under ``torchrun`` every rank
runs every stage (training under DistributedDataParallel, per-image work split across ranks)
and only rank 0 writes results and the report (:mod:`racam.distributed`).
"""

from __future__ import annotations

import dataclasses
import platform
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset, Subset

from racam import distributed
from racam.cam.registry import (
    CAM_OPTION_DEFAULTS,
    get_method,
    method_key,
    method_options,
)
from racam.config import LATER_DEFAULTS, RunConfig, SegmentationConfig, without_later_defaults
from racam.evaluation.pooling import counts_dict, merged_per_image, pooled
from racam.io import atomic_write_json
from racam.layout import fold_list, pseudo_key, segmentation_tag
from racam.pipeline.cache import cached, check_key
from racam.pipeline.elapsed import CallLedger, timed_stage
from racam.pipeline.folds import FoldData, fold_datasets
from racam.pipeline.identity import file_digest, records_digest
from racam.pipeline.preflight import check_input_sizes
from racam.run_cam import build_run_cam
from racam.training import resolve_device

__all__ = ["LATER_DEFAULTS", "Pipeline", "without_later_defaults"]

#: Config keys left out of stage keys: they change how fast, not what, a stage computes.
VOLATILE: dict[str, tuple[str, ...]] = {"cam": ("num_workers", "batch_size", "scorecam_batch")}


class Pipeline:
    """Runs and caches the stages of one config. ``log`` receives progress lines."""

    def __init__(self, cfg: RunConfig, output: Path | None = None, *, progress: bool = True,
                 log: Callable[[str], None] = print) -> None:
        self.cfg = cfg
        self.out = Path(output or cfg.output)
        main = distributed.is_main()
        self.progress = progress and main
        self.log = log if main else _quiet
        self.device = resolve_device(cfg.device)
        self._data: dict[int, FoldData] = {}
        self._models: dict[int, nn.Module] = {}
        self._warned = False
        self._digests: dict[tuple[str, int], str] = {}
        self._config_written = False
        #: Stages this object computed (not reused from the cache).
        self.stages_computed = 0
        self.folds  # noqa: B018  # a fold the dataset lacks is refused here
        check_input_sizes(cfg)

    # ----------------------------------------------------------------- helpers
    @property
    def folds(self) -> list[int]:
        return fold_list(self.cfg.data)

    def fold_dir(self, fold: int) -> Path:
        return self.out / f"fold{fold}"

    def data(self, fold: int) -> FoldData:
        if fold not in self._data:
            self._data[fold] = fold_datasets(self.cfg.data, fold, self.cfg.seed)
            if not self._warned:  # a folder dataset's problems, once per run
                self._warned = True
                for problem in self.data_problems(fold)["problems"]:
                    self.log(f"[racam] warning: {problem}")
        return self._data[fold]

    def data_problems(self, fold: int) -> dict[str, list[str]]:
        """Problems of the dataset's files (:mod:`racam.data.audit`; folder datasets) and the
        images left out of the pixel metrics for want of a usable mask."""
        audit = getattr(self.data(fold).test, "audit", None)
        if audit is None:
            return {"problems": [], "left_out_of_pixel_metrics": []}
        return {"problems": [str(p) for p in audit.problems],
                "left_out_of_pixel_metrics": [str(p) for p in audit.without_usable_mask]}

    def _write_config(self) -> None:
        """``config.json``: the config of the latest call that computed a stage (written before
        its first stage, never by a call that only reuses or refuses)."""
        if not self._config_written:
            if distributed.is_main():
                atomic_write_json(self.out / "config.json", self.cfg.to_dict())
            self._config_written = True

    def _timed(self, label: str, fn: Callable[[], dict[str, Any]],
               result: Path) -> Callable[[], dict[str, Any]]:
        """``fn`` logged and timed: ``seconds`` includes earlier interrupted calls of the same
        stage (:func:`racam.pipeline.elapsed.timed_stage`)."""
        def run() -> dict[str, Any]:
            self._write_config()
            self.log(f"[racam] {label} ...")
            value = timed_stage(result, fn)
            self.stages_computed += 1
            earlier = sum(value.get("interrupted_seconds", []))
            self.log(f"[racam] {label} done in {value['seconds']:.1f} s"
                     + (f" ({earlier:.1f} s of it in earlier interrupted calls)" if earlier
                        else ""))
            return value
        return run

    def _key(self, *sections: str) -> dict[str, Any]:
        """The config a stage depends on: the named sections, the seed (not the
        :data:`VOLATILE` keys such as batch sizes; the ``cam`` options of
        :data:`CAM_OPTION_DEFAULTS` only where they apply to ``cam.method`` and differ from
        their default)."""
        key: dict[str, Any] = {"seed": self.cfg.seed}
        for name in sections:
            part = dataclasses.asdict(getattr(self.cfg, name))
            for volatile in VOLATILE.get(name, ("num_workers",)):
                part.pop(volatile, None)
            if name == "cam":
                for opt in CAM_OPTION_DEFAULTS:
                    part.pop(opt, None)
                if part.get("guided_radius") is None:  # eps means nothing without a radius
                    part.pop("guided_eps", None)
                part.update(self._method_options(self.cfg.cam.method))
            key[name] = without_later_defaults(name, part)
        return key

    def _inputs(self, fold: int, checkpoint: bool = True) -> dict[str, Any]:
        """The ``inputs`` entry of a stage key: digests of the fold's images and (with
        ``checkpoint``) of the classifier checkpoint."""
        if ("data", fold) not in self._digests:
            fd = self.data(fold)
            self._digests["data", fold] = records_digest([("train", fd.train_all),
                                                          ("test", fd.test)])
        out = {"data": self._digests["data", fold]}
        if checkpoint:
            if ("checkpoint", fold) not in self._digests:
                path = self.classifier(fold)["checkpoint"]
                self._digests["checkpoint", fold] = file_digest(path)
            out["checkpoint"] = self._digests["checkpoint", fold]
        return out

    def _method_options(self, method: str, weighting: str | None = None,
                        fgbp_head: str | None = None) -> dict[str, str]:
        """:func:`method_options` with the config's values where none are given."""
        c = self.cfg.cam
        return method_options(method, weighting or c.weighting, fgbp_head or c.fgbp_head)

    def has_masks(self, fold: int) -> bool:
        """Whether the fold's test images have true masks (a folder dataset may have none)."""
        return bool(getattr(self.data(fold).test, "has_masks", True))

    # -------------------------------------------------------------- classifier
    def classifier(self, fold: int) -> dict[str, Any]:
        """Train (or resume) the classifier and score it on the test images."""
        d = self.fold_dir(fold) / "classifier"

        def compute() -> dict[str, Any]:
            from sklearn.metrics import average_precision_score, roc_auc_score

            from racam.classifier import load_classifier, predict_proba
            from racam.classifier.restarts import train_until_learned
            fd = self.data(fold)
            res, attempts = train_until_learned(
                self.cfg.classifier, fd.train, fd.val, d, seed=self.cfg.seed + fold,
                log=self.log, device=self.device, in_channels=self.cfg.data.channels,
                progress=self.progress, score_name="pseudo_area",
                score=lambda r: self._pseudo_area(fold, r.best_path))
            model, _ = load_classifier(res.best_path, map_location=self.device)
            bs = self.cfg.cam.batch_size
            probs = distributed.sharded_map(  # each rank 1/N of the test images
                lambda idx: predict_proba(model, Subset(fd.test, idx), batch_size=bs,
                                          device=self.device).tolist(),
                range(len(fd.test)), block=bs)
            labels = list(fd.test.labels)
            two = len(set(labels)) == 2
            return {"checkpoint": str(res.best_path), "best_epoch": res.best_epoch,
                    "history": res.history,
                    **({"diverged_at": res.diverged_at} if res.diverged_at else {}),
                    **({"attempts": attempts} if len(attempts) > 1 else {}),
                    "test_ids": [r.id for r in fd.test.records],
                    "test_labels": labels, "test_probs": probs,
                    "test_auroc": roc_auc_score(labels, probs) if two else None,
                    "test_ap": average_precision_score(labels, probs) if two else None,
                    "test_accuracy": sum((p >= self.cfg.classifier.threshold) == bool(y)
                                         for p, y in zip(probs, labels))
                    / max(1, len(labels))}

        return cached(d / "result.json",
                      self._timed(f"fold {fold}: classifier", compute, d / "result.json"),
                      self._classifier_key(fold))

    def _pseudo_area(self, fold: int, checkpoint: Path) -> float:
        """Share of the defective training images that the config's pseudo-labels from
        ``checkpoint`` mark (:func:`racam.pseudo.area.pseudo_label_area`; label-free), the
        score by which ``classifier.candidates`` chooses."""
        from racam.classifier import load_classifier
        from racam.pseudo.area import pseudo_label_area

        c = self.cfg.cam
        ds = self.data(fold).train_all
        model, _ = load_classifier(checkpoint, map_location=self.device)
        area = pseudo_label_area(build_run_cam(self.cfg, model.eval(), c.method, c.delta), ds,
                                 [i for i, y in enumerate(ds.labels) if y == 1],
                                 **self._pseudo_mask_options())
        self.log(f"[racam] fold {fold}: classifier {checkpoint}: pseudo-labels mark "
                 f"{100 * area:.2f} % of the defective training images")
        return area

    def _classifier_key(self, fold: int) -> dict[str, Any]:
        return {**self._key("data", "classifier"), "inputs": self._inputs(fold, checkpoint=False)}

    def model(self, fold: int) -> nn.Module:
        if fold not in self._models:
            from racam.classifier import load_classifier
            model, _ = load_classifier(self.classifier(fold)["checkpoint"],
                                       map_location=self.device)
            self._models[fold] = model.eval()
        return self._models[fold]

    # ---------------------------------------------------------------- heat maps
    def cam(self, fold: int, method: str, delta: float | None = None,
            layers: list[str] | None = None, *, weighting: str | None = None,
            fgbp_head: str | None = None) -> Callable[..., torch.Tensor]:
        """A heat-map callable ``cam(images, targets=1)`` for ``method`` on the fold's classifier
        (``delta``, ``weighting``, ``fgbp_head``: the config's ``cam`` values when ``None``)."""
        return build_run_cam(self.cfg, self.model(fold), method, delta, layers,
                             weighting=weighting, fgbp_head=fgbp_head)

    def cam_quality(self, fold: int, method: str, delta: float | None = None,
                    split: str = "test", *, weighting: str | None = None,
                    fgbp_head: str | None = None, per_image: bool = False) -> dict[str, Any]:
        """CAM quality (paper and deployment views) of ``method`` on the fold's ``split``.

        The result also holds ``paper_per_image``: ``{image id: [tp, fp, fn, tn]}`` of every
        defective image (for the paired bootstrap). ``per_image=True`` recomputes a result
        stored before those counts were kept.
        """
        from racam.evaluation.cam_quality import evaluate_cam

        path, stage_key = self._cam_path_key(fold, method, delta, split, weighting, fgbp_head)
        spec = get_method(method)
        delta = (self.cfg.cam.delta if delta is None else delta) if spec.uses_delta else None
        opts = self._method_options(method, weighting, fgbp_head)
        key = method_key(method, delta, **opts)

        def compute() -> dict[str, Any]:
            fd = self.data(fold)
            ds = fd.test if split == "test" else fd.train_all
            probs = self.classifier(fold)["test_probs"] if split == "test" else None
            r = evaluate_cam(self.cam(fold, method, delta, weighting=weighting,
                                      fgbp_head=fgbp_head), ds, probs,
                             batch_size=self.cfg.cam.batch_size, device=self.device,
                             progress=self.progress)
            return {"method": method, "delta": delta, "split": split, **opts,
                    "paper": counts_dict(r["paper_counts"]),
                    "deployment": counts_dict(r["deployment_counts"])
                    if r["deployment_counts"] is not None else None,
                    "paper_per_image": per_image_counts(r["paper_per_image"])}

        return cached(path, self._timed(f"fold {fold}: {key} on {split}", compute, path),
                      stage_key,
                      require=("paper_per_image",) if per_image else ())

    def _cam_path_key(self, fold: int, method: str, delta: float | None = None,
                      split: str = "test", weighting: str | None = None,
                      fgbp_head: str | None = None) -> tuple[Path, dict[str, Any]]:
        """Result file and stage key of :meth:`cam_quality`."""
        spec = get_method(method)
        delta = (self.cfg.cam.delta if delta is None else delta) if spec.uses_delta else None
        opts = self._method_options(method, weighting, fgbp_head)
        path = self.fold_dir(fold) / "cam" / split / f"{method_key(method, delta, **opts)}.json"
        stage_key: dict[str, Any] = {**self._key("data", "classifier"), "method": method,
                                     "delta": delta}
        if spec.multi_layer:  # fusion and layers matter only there
            stage_key.update(fusion=self.cfg.cam.fusion, layers=self.cfg.cam.layers)
        stage_key.update(opts)  # RA-CAM's weighting, FGBP's head scope: only where they apply
        stage_key["inputs"] = self._inputs(fold)
        return path, stage_key

    # ------------------------------------------------------------ pseudo-labels
    def pseudo_key(self) -> str:
        """File-name key of the config's pseudo-label method (:func:`method_key`)."""
        return pseudo_key(self.cfg)

    def pseudo_dir(self, fold: int) -> Path:
        return self.fold_dir(fold) / "pseudo" / self.pseudo_key()

    def pseudo_labels(self, fold: int) -> dict[str, Any]:
        """Write pseudo-labels for the fold's training images; return quality vs true masks."""
        from racam.pseudo.labels import write_pseudo_labels

        d = self.pseudo_dir(fold)
        stage_key = self._pseudo_stage_key(fold)

        def compute() -> dict[str, Any]:
            fd = self.data(fold)
            c = self.cfg.cam
            manifest = write_pseudo_labels(
                self.cam(fold, c.method, c.delta), fd.train_all, d,
                meta={"method": c.method, "delta": c.delta, "fusion": c.fusion,
                      **self._method_options(c.method),
                      "threshold": c.pseudo_threshold,
                      "guided": None if c.guided_radius is None else [c.guided_radius,
                                                                      c.guided_eps],
                      "checkpoint": self.classifier(fold)["checkpoint"]},
                progress=self.progress, key=stage_key, **self._pseudo_mask_options())
            quality = self._pseudo_quality(fd, d)
            return {"manifest": str(d / "manifest.json"), "num_images": manifest["num_images"],
                    "pseudo_vs_true_defective": quality}

        return cached(d / "result.json",
                      self._timed(f"fold {fold}: pseudo-labels", compute, d / "result.json"),
                      stage_key)

    def _pseudo_mask_options(self) -> dict[str, Any]:
        """How the config turns a heat map into a pseudo-label mask (threshold rule, guided-filter
        refinement) and the batching: the keyword arguments of
        :func:`racam.pseudo.labels.iter_pseudo_masks`, shared by the pseudo-label stage and the
        ``classifier.candidates`` score."""
        from racam.pseudo.guided import guided_refiner

        c = self.cfg.cam
        return {"threshold": c.pseudo_threshold, "batch_size": c.batch_size,
                "device": self.device,
                "refine": None if c.guided_radius is None else guided_refiner(c.guided_radius,
                                                                              c.guided_eps)}

    def _pseudo_stage_key(self, fold: int) -> dict[str, Any]:
        return {**self._key("data", "classifier", "cam"), "inputs": self._inputs(fold)}

    @staticmethod
    def _pseudo_quality(fd: FoldData, d: Path) -> dict[str, int] | None:
        from racam.data import read_mask
        from racam.evaluation.metrics import SegmentationMeter
        from racam.pseudo.labels import mask_filename

        def score(recs: list[Any]) -> list[tuple[str, Any]]:
            part = SegmentationMeter()
            for rec in recs:
                pred = torch.from_numpy(read_mask(d / "masks" / mask_filename(rec.id)))
                part.update(pred[None], torch.from_numpy(read_mask(rec.mask_path))[None],
                            ids=[rec.id])
            return part.per_image

        meter = SegmentationMeter()
        defective = [rec for rec, lab in zip(fd.train_all.records, fd.train_all.labels)
                     if lab == 1 and rec.mask_path is not None]
        for image_id, counts in distributed.sharded_map(score, defective):  # 1/N per rank
            meter.add(counts, image_id)
        return counts_dict(meter.total) if meter.per_image else None

    # ------------------------------------------------------------- segmentation
    def segmentation(self, fold: int, arch: str | None = None, source: str = "pseudo",
                     round: int | None = None, *, per_image: bool = False) -> dict[str, Any]:
        """Train a segmentation network on pseudo-labels (or true masks) and score it on test.

        With pseudo-labels, ``round`` is the self-training round (``None``: the config's last,
        ``segmentation.self_training``): round 0 learns the heat maps' pseudo-labels, round
        ``r > 0`` the masks round ``r - 1`` draws on the training images
        (:meth:`self_training_labels`).

        The result holds the pooled ``counts`` and ``per_image`` counts of every test image
        (for Table III's bootstrap). ``per_image=True`` adds them to a result stored before
        they were kept, by scoring its network again (:meth:`_rescore_segmentation`)."""
        from racam.pseudo.labels import PseudoLabelDataset
        from racam.segmentation import train_segmentation

        arch = arch or self.cfg.segmentation.arch
        r = 0 if source == "true" else (self.cfg.segmentation.self_training if round is None
                                         else round)
        d, stage_key = self._seg_path_key(fold, arch, source, r)
        tag = d.name

        def compute() -> dict[str, Any]:
            fd = self.data(fold)
            crops = self.cfg.segmentation.crop
            train: Dataset
            if source == "pseudo":
                if r:
                    labels = self.self_training_labels(fold, arch, r)
                else:
                    self.pseudo_labels(fold)
                    labels = self.pseudo_dir(fold)
                train = PseudoLabelDataset(fd.train_all, labels, augment=crops is None)
            else:
                train = fd.train_all_aug if crops is None else fd.train_all  # crops flip
            scfg = dataclasses.replace(self.cfg.segmentation, arch=arch)
            if not arch.startswith("deeplab"):
                scfg = dataclasses.replace(scfg, output_stride=None)
            res = train_segmentation(scfg, train, d, seed=self.cfg.seed + fold, device=self.device,
                                     in_channels=self.cfg.data.channels, progress=self.progress)
            out: dict[str, Any] = {"arch": arch, "source": source, "round": r,
                                   "checkpoint": str(res.last_path), "counts": None}
            if self.has_masks(fold):
                out.update(self._scored_segmentation(fold, res.last_path, scfg))
            return out

        value = cached(d / "result.json",
                       self._timed(f"fold {fold}: segmentation {tag}", compute, d / "result.json"),
                       stage_key)
        if per_image and value.get("counts") is not None and "per_image" not in value:
            value = self._rescore_segmentation(fold, arch, d, value)
        return value

    def _scored_segmentation(self, fold: int, checkpoint: Path,
                             scfg: SegmentationConfig) -> dict[str, Any]:
        """``counts`` (pooled) and ``per_image`` (``{image id: [tp, fp, fn, tn]}``) of the
        network at ``checkpoint`` on the fold's test images."""
        from racam.evaluation.segmentation_quality import evaluate_segmentation
        from racam.segmentation import load_segmentation

        model, _ = load_segmentation(checkpoint, map_location=self.device)
        scored = evaluate_segmentation(model, self.data(fold).test, device=self.device,
                                       bf16=_trains_in_bf16(scfg, self.device),
                                       batch_size=self.cfg.segmentation.batch_size)
        return {"counts": counts_dict(scored["counts"]),
                "per_image": per_image_counts(scored["per_image"])}

    def _rescore_segmentation(self, fold: int, arch: str, d: Path,
                              value: dict[str, Any]) -> dict[str, Any]:
        """A result stored before per-image counts were kept, with them added by scoring its
        stored network again (no training). Its pooled ``counts`` stay; when the new scoring
        sums to other counts, that is logged and recorded as ``rescored_counts``."""
        checkpoint = d / "last.pt"  # the folder's own network, also after the run was moved
        if not checkpoint.exists() and value.get("checkpoint"):
            checkpoint = Path(value["checkpoint"])
        if not checkpoint.exists():
            self.log(f"[racam] fold {fold}: {d.name}: no per-image counts and no network at "
                     f"{checkpoint} to score again; its Table III interval is n/a")
            return value
        scfg = dataclasses.replace(self.cfg.segmentation, arch=arch)
        self.log(f"[racam] fold {fold}: segmentation {d.name}: scoring the stored network "
                 "again for per-image counts ...")
        scored = self._scored_segmentation(fold, checkpoint, scfg)
        value = {**value, "per_image": scored["per_image"]}
        if scored["counts"] != value["counts"]:
            value["rescored_counts"] = scored["counts"]
            self.log(f"[racam] warning: fold {fold}: {d.name}: scored again, the pooled counts "
                     f"differ from the stored ones ({scored['counts']} vs {value['counts']}); "
                     "the table keeps the stored counts, the interval uses the new ones")
        if distributed.is_main():
            atomic_write_json(d / "result.json", value)
        return value

    def _seg_path_key(self, fold: int, arch: str, source: str = "pseudo",
                      round: int = 0) -> tuple[Path, dict[str, Any]]:
        """Folder and stage key of :meth:`segmentation` (round ``r > 0`` of self-training:
        the key holds ``self_training_round``; round 0's key holds no self-training setting)."""
        tag = segmentation_tag(self.cfg, arch, source, round)
        seg = without_later_defaults("segmentation", {
            k: v for k, v in dataclasses.asdict(self.cfg.segmentation).items()
            if k not in ("arch", "num_workers", "self_training")})
        if round:
            seg["self_training_round"] = round
        parts = ("data", "classifier", "cam") if source == "pseudo" else ("data",)
        return (self.fold_dir(fold) / "segmentation" / tag,
                {**self._key(*parts), "segmentation": seg,
                 "inputs": self._inputs(fold, checkpoint=source == "pseudo")})

    def self_training_labels(self, fold: int, arch: str, round: int) -> Path:
        """Folder of round ``round``'s training labels: the masks (``p > 0.5``, at each image's
        original size) that round ``round - 1``'s network draws on the defective training
        images; defect-free training images keep an empty mask (their image label is known)."""
        from racam.pseudo.labels import write_pseudo_labels
        from racam.segmentation import load_segmentation
        from racam.segmentation.probability import probability_fn

        prev = self.segmentation(fold, arch, "pseudo", round - 1)
        d = self.fold_dir(fold) / "pseudo" / (
            segmentation_tag(self.cfg, arch, "pseudo", round - 1) + "-masks")
        _, prev_key = self._seg_path_key(fold, arch, "pseudo", round - 1)
        model, _ = load_segmentation(prev["checkpoint"], map_location=self.device)
        bf16 = _trains_in_bf16(self.cfg.segmentation, self.device)
        write_pseudo_labels(  # returns at once when the folder is complete under this key
            probability_fn(model, bf16=bf16), self.data(fold).train_all, d,
            meta={"source": "self-training", "round": round, "network": prev["checkpoint"]},
            batch_size=self.cfg.segmentation.batch_size, device=self.device,
            progress=self.progress, threshold="half", key={"network": prev_key, "rule": "half"})
        return d

    def check_stored(self, folds: list[int] | None = None, *, cam: bool = True,
                     pseudo: bool = True, segmentation: bool = True,
                     arch: str | None = None, source: str = "pseudo") -> None:
        """Refuse (:class:`ConfigError`, nothing written) when a stored result that the stages
        would reuse was computed under another key. Stages after the classifier are checked
        only when the classifier result exists (their key holds its checkpoint's digest)."""
        for k in self.folds if folds is None else folds:
            d = self.fold_dir(k)
            check_key(d / "classifier" / "result.json", self._classifier_key(k))
            if not (d / "classifier" / "result.json").exists():
                continue
            if cam and self.has_masks(k):
                check_key(*self._cam_path_key(k, self.cfg.cam.method))
            if pseudo:
                check_key(self.pseudo_dir(k) / "result.json", self._pseudo_stage_key(k))
            if segmentation:
                seg_dir, seg_key = self._seg_path_key(k, arch or self.cfg.segmentation.arch,
                                                      source)
                check_key(seg_dir / "result.json", seg_key)

    # ------------------------------------------------------------------- whole
    def run(self) -> dict[str, Any]:
        """All stages on every fold, pooled results in ``results.json`` and a short report."""
        with CallLedger(self.out, lambda: self.stages_computed) as calls:
            self.check_stored()
            folds = {}
            for k in self.folds:
                folds[k] = {"classifier": self.classifier(k)}
                if self.has_masks(k):  # without masks there is nothing to score heat maps
                    folds[k]["cam"] = self.cam_quality(k, self.cfg.cam.method)
                folds[k]["pseudo"] = self.pseudo_labels(k)
                folds[k]["segmentation"] = self.segmentation(k)
            return self._finish(folds, calls)

    def _finish(self, folds: dict[int, dict[str, Any]], calls: CallLedger) -> dict[str, Any]:
        """``results.json`` and the report from the folds' stage results."""
        from racam.report.run_report import write_run_report

        results = summarize_run(folds)
        results["data"] = self.data_problems(self.folds[0])
        results.update(calls.summary())
        results["machine"] = machine_info()
        results["world_size"] = distributed.world_size()
        fold = self.folds[0]
        overlays = self.overlays(fold)  # every rank: it reads cached stages in step
        if distributed.is_main():
            atomic_write_json(self.out / "results.json", results)
            write_run_report(self.cfg, results, self.out, device=self.device,
                             overlays=overlays, overlay_fold=fold)
        distributed.barrier()  # the report is written
        return results

    def overlays(self, fold: int, n: int = 4) -> list[list[tuple]]:
        """Report panels (image, heat map, Otsu mask, segmentation) of the first ``n``
        defective test images of ``fold``."""
        from racam.report.run_report import overlay_rows
        from racam.segmentation import load_segmentation

        test = self.data(fold).test
        seg, _ = load_segmentation(self.segmentation(fold)["checkpoint"], map_location=self.device)
        return overlay_rows(test, self.cam(fold, self.cfg.cam.method), seg, self.device,
                            self.cfg.cam.method, n)


def _trains_in_bf16(cfg: SegmentationConfig, device: torch.device) -> bool:
    """Whether the segmentation network trains under bfloat16 autocast on ``device`` (its
    evaluation then runs so too on a CPU)."""
    from racam.precision import resolve_precision

    return resolve_precision(cfg.precision, device, amp=cfg.amp, bf16=cfg.bf16).name == "bf16"


def _quiet(line: str) -> None:
    """The log of ranks other than 0."""


def per_image_counts(items: list[tuple[str, Any]]) -> dict[str, list[int]]:
    """``{image id: [tp, fp, fn, tn]}`` of ``(id, Counts)`` pairs; a repeated id gets ``#n``
    appended, so no image's counts are lost."""
    out: dict[str, list[int]] = {}
    for i, c in items:
        key, n = str(i), 1
        while key in out:
            key, n = f"{i}#{n}", n + 1
        out[key] = [int(c.tp), int(c.fp), int(c.fn), int(c.tn)]
    return out


def machine_info() -> dict[str, Any]:
    """Where the run happened, for reports."""
    import os

    info = {"platform": platform.platform(), "python": platform.python_version(),
            "torch": torch.__version__, "cpus": os.cpu_count(),
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return info


def classifier_summary(v: dict[str, Any]) -> dict[str, Any]:
    """The report's view of a classifier stage result: test scores, kept epoch, seconds, and
    (where they happened) divergence, a restart, and the scored ``classifier.candidates``."""
    attempts = v.get("attempts", [])
    scored = [{"seed": a["seed"], "pseudo_area": a["pseudo_area"], "chosen": a["chosen"]}
              for a in attempts if "pseudo_area" in a]
    return {"test_auroc": v.get("test_auroc"), "test_ap": v.get("test_ap"),
            "best_epoch": v.get("best_epoch"), "seconds": v.get("seconds"),
            **({"diverged_at": v["diverged_at"]} if v.get("diverged_at") else {}),
            **({"restarted": True} if any(a.get("chosen") and a.get("attempt", 0) > 0
                                          and "pseudo_area" not in a for a in attempts)
               else {}),
            **({"candidates": scored} if scored else {})}


def summarize_run(folds: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """Pooled numbers of a :meth:`Pipeline.run`."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    labels: list[int] = sum((f["classifier"]["test_labels"] for f in folds.values()), [])
    probs: list[float] = sum((f["classifier"]["test_probs"] for f in folds.values()), [])
    two = len(set(labels)) == 2
    return {
        "folds": sorted(folds),
        "classifier": {"test_auroc_pooled": roc_auc_score(labels, probs) if two else None,
                       "test_ap_pooled": average_precision_score(labels, probs) if two else None,
                       "per_fold_auroc": {k: f["classifier"]["test_auroc"]
                                          for k, f in folds.items()},
                       "per_fold": {k: classifier_summary(f["classifier"])
                                    for k, f in folds.items()},
                       "seconds": sum(f["classifier"].get("seconds", 0) for f in folds.values())},
        "cam_paper": pooled(folds, lambda f: f.get("cam", {}).get("paper")),
        "cam_deployment": pooled(folds, lambda f: f.get("cam", {}).get("deployment")),
        "pseudo_labels": pooled(folds, lambda f: f["pseudo"]["pseudo_vs_true_defective"]),
        "segmentation": pooled(folds, lambda f: f["segmentation"]["counts"]),
        "intervals": {
            "cam_paper": iou_interval(folds, lambda f: f.get("cam", {}).get("paper_per_image")),
            "segmentation": iou_interval(folds, lambda f: f["segmentation"].get("per_image"))},
        "stage_seconds": {k: {s: f[s].get("seconds") for s in f} for k, f in folds.items()},
    }


def iou_interval(folds: dict[int, dict[str, Any]],
                 per_image: Callable[[dict[str, Any]], dict[str, Any] | None]
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
