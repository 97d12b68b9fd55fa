"""``racam reproduce``: the paper's Tables I, III, IV and Figures 1, 4-5, 8-9 from one config.

Everything runs through the engine (:class:`racam.engine.Engine`), so stages already
computed by ``racam run`` (same output folder) are reused, and an interrupted reproduction
resumes.
The RA-CAM delta is chosen on *training* images only (best pooled IoU of the sweep, averaged
over the classifier seeds), as the paper does; test folds are never used to choose anything.

Classifier seeds (``reproduce.seeds``): each seed trains its own classifiers through its own
:class:`Engine` (the config's ``seed`` set to it); the config's own seed writes into the
output folder, any other seed ``s`` into ``<output>/seed<s>/``. Heat-map tables are mean ± sd
over the seeds. The figures, and Table III unless ``reproduce.segmentation_seeds`` names
others, use the first seed of the list.

Statistics: a paired bootstrap over the defective test images
(:mod:`racam.evaluation.bootstrap`) gives a 95 % interval for RA-CAM minus each baseline, for
each FGBP plug-in minus its plain method, for RA-CAM at the chosen delta minus RA-CAM at delta 0
(the percentile filter's own effect) and for each RA-CAM variant (Eq. 7 reading, FGBP head
scope) minus the default RA-CAM, and Table III's intervals (:mod:`racam.paper.intervals`).
The report (:mod:`racam.paper.report`) claims an order only where such an interval
excludes 0, and "FGBP helps" only at delta > 0.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from racam.cam.registry import CAM_OPTION_DEFAULTS, get_method, variant_key
from racam.config import RunConfig
from racam.engine import Engine, classifier_summary, machine_info
from racam.errors import ConfigError
from racam.evaluation.bootstrap import BOOTSTRAP_SEED, CONFIDENCE
from racam.evaluation.pooling import counts_from, merged_per_image, pooled
from racam.io import atomic_write_json, atomic_write_text
from racam.paper.intervals import add_table_iii_intervals, paired_interval
from racam.paper.reference import REFERENCE
from racam.paper.report import render_report
from racam.paper.results import ReproductionResults
from racam.paper.seeds import mean_sd, seed_dir, seed_log
from racam.report.html import write_html
from racam.stages.elapsed import CallLedger


class Reproduction:
    """Computes and writes the reproduction report for one config."""

    def __init__(self, cfg: RunConfig, output: Path | None = None, *, progress: bool = True,
                 log: Callable[[str], None] = print) -> None:
        seeds = list(cfg.reproduce.seeds)
        if not seeds or len(set(seeds)) != len(seeds):
            raise ConfigError(f"reproduce.seeds: expected distinct seeds, got {seeds}")
        self.cfg = cfg
        self.seeds = seeds
        self.out = Path(output or cfg.output)
        self.pipes: dict[int, Engine] = {
            s: Engine(dataclasses.replace(cfg, seed=s), seed_dir(self.out, cfg.seed, s),
                        progress=progress, log=seed_log(log, s) if len(seeds) > 1 else log)
            for s in seeds}
        self.pipe = self.pipes[seeds[0]]  # Table III and figures
        self.notes: dict[str, str] = {}  # why a part was not computed, by part
        self.fig_dir = self.out / "figures"

    # ------------------------------------------------------------------ pieces
    def _cam(self, seed: int, method: str, delta: float | None, split: str, *,
             weighting: str | None = None, fgbp_head: str | None = None,
             per_image: bool = False) -> dict[str, Any]:
        """One seed's pooled paper and deployment views, per-fold IoU and (with ``per_image``)
        per-image counts of ``method`` on ``split``."""
        pipe = self.pipes[seed]
        per_fold = {k: pipe.cam_quality(k, method, delta, split, weighting=weighting,
                                        fgbp_head=fgbp_head, per_image=per_image)
                    for k in pipe.folds}
        images = merged_per_image(per_fold, lambda f: f.paper_per_image, fold_prefix=True)
        return {"paper_view": pooled(per_fold, lambda f: f.paper),
                "deployment_view": pooled(per_fold, lambda f: f.deployment),
                "fold_iou": [counts_from(v.paper).iou for v in per_fold.values() if v.paper],
                "per_image": images}

    def _cam_row(self, method: str, delta: float | None, *, weighting: str | None = None,
                 fgbp_head: str | None = None) -> tuple[dict[str, Any], dict[int, Any]]:
        """A Table I / IV row over every seed, and the per-image counts of each seed."""
        per_seed = {s: self._cam(s, method, delta, "test", weighting=weighting,
                                 fgbp_head=fgbp_head, per_image=True) for s in self.seeds}
        paper_mean, paper_sd = mean_sd([v["paper_view"] for v in per_seed.values()])
        dep_mean, dep_sd = mean_sd([v["deployment_view"] for v in per_seed.values()])
        row = {"method": method, "delta": delta, "paper_view": paper_mean,
               "paper_view_sd": paper_sd, "deployment_view": dep_mean,
               "deployment_view_sd": dep_sd, "fold_iou": per_seed[self.seeds[0]]["fold_iou"],
               "per_seed": {str(s): {"paper_view": v["paper_view"],
                                     "deployment_view": v["deployment_view"],
                                     "fold_iou": v["fold_iou"]} for s, v in per_seed.items()}}
        if weighting is not None or fgbp_head is not None:
            row.update(weighting=weighting, fgbp_head=fgbp_head)
        return row, {s: v["per_image"] for s, v in per_seed.items()}

    def delta_sweep(self) -> dict[str, Any]:
        """RA-CAM IoU against delta on training and test images (Figs. 8-9), mean over seeds;
        the delta with the best mean training IoU is chosen (ties: nearest 50)."""
        rows = []
        for delta in self.cfg.reproduce.deltas:
            row: dict[str, Any] = {"delta": delta}
            for split in ("train", "test"):
                views = {s: self._cam(s, "racam", delta, split)["paper_view"] for s in self.seeds}
                mean, sd = mean_sd(list(views.values()))
                row[split] = {**(mean or {}), "iou_sd": sd["iou"] if sd else None,
                              "per_seed": {str(s): v for s, v in views.items()}}
            rows.append(row)
        best = max(rows, key=lambda r: (_or(r["train"].get("iou"), -1.0), -abs(r["delta"] - 50)))
        return {"rows": rows, "chosen_delta": best["delta"]}

    def table_i(self, delta: float) -> tuple[list[dict[str, Any]], dict[str, dict[int, Any]]]:
        """Table I: each heat-map method of ``reproduce.methods`` (RA-CAM at ``delta``), with
        per-image counts per seed."""
        rows, images = [], {}
        for m in self.cfg.reproduce.methods:
            d = delta if get_method(m).uses_delta else None
            row, images[m] = self._cam_row(m, d)
            rows.append(row)
        return rows, images

    def table_iv(self, delta: float) -> tuple[list[dict[str, Any]], dict[str, dict[int, Any]]]:
        """Table IV: each method of ``reproduce.plugin_methods`` without and with FGBP (at
        ``delta``), with per-image counts per seed."""
        rows, images = [], {}
        for m in self.cfg.reproduce.plugin_methods:
            for variant in (m, f"{m}+fgbp"):
                row, images[variant] = self._cam_row(
                    variant, delta if variant.endswith("+fgbp") else None)
                rows.append(row)
        return rows, images

    def racam_variants(self, delta: float) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """RA-CAM at ``delta`` under each Eq. 7 reading and each FGBP head scope of the config
        (one option changed at a time from the defaults), with per-image counts."""
        base = dict(CAM_OPTION_DEFAULTS)
        combos = [base]
        combos += [{**base, "weighting": w} for w in self.cfg.reproduce.weightings
                   if w != base["weighting"]]
        combos += [{**base, "fgbp_head": h} for h in self.head_scopes(base["fgbp_head"])]
        rows, images = [], {}
        for combo in combos if len(combos) > 1 else []:
            row, per_image = self._cam_row("racam", delta, **combo)
            key = variant_key(combo)
            row["variant"] = key
            rows.append(row)
            images[key] = per_image
        return rows, images

    def head_scopes(self, default: str) -> list[str]:
        """The FGBP head scopes of ``reproduce.fgbp_heads`` to compare with ``default``: none
        when the classifier's architecture has no activation on a fully connected layer's
        output (the scopes differ only there: EfficientNet-Lite0's head is one linear layer),
        noted in :attr:`notes` instead. The architecture is built untrained and run once on a
        blank 64 x 64 input."""
        import torch

        from racam.cam.fgbp import head_activations
        from racam.models import build_classifier

        heads = [h for h in self.cfg.reproduce.fgbp_heads if h != default]
        c, channels = self.cfg.classifier, self.cfg.data.channels
        if heads and not head_activations(
                build_classifier(c.backbone, in_channels=channels, width=c.width,
                                 batch_norm=c.batch_norm).eval(),
                torch.zeros(1, channels, 64, 64)):
            self.notes["fgbp_head"] = (
                f"`fgbp_head` {', '.join(heads)} not computed: the classifier "
                f"(`{c.backbone}`) has no ReLU-family activation on a fully connected layer's "
                "output, the only place the head scopes differ, so every scope gives the "
                f"`{default}` maps.")
            return []
        return heads

    def table_iii(self) -> list[dict[str, Any]]:
        """Table III: each network's pooled counts over the folds. Weakly supervised rows train
        one network per classifier seed of ``reproduce.segmentation_seeds`` (default: the
        first seed) and show the mean (``pooled``) and sd (``pooled_sd``) over them; fully
        supervised rows use the first seed. Intervals: :mod:`racam.paper.intervals`."""
        rows: list[dict[str, Any]] = []
        if not self.cfg.reproduce.segmentation:
            return rows
        arch = self.cfg.segmentation.arch
        runs = [(arch, "pseudo", r) for r in range(self.cfg.segmentation.self_training + 1)] + \
               [(a, "true", 0) for a in self.cfg.reproduce.supervised_archs]
        ws_seeds = list(self.cfg.reproduce.segmentation_seeds or self.seeds[:1])
        images: list[list[dict[str, Any] | None]] = []
        for arch, source, r in runs:
            seeds = ws_seeds if source == "pseudo" else self.seeds[:1]
            per_seed = {s: {k: self.pipes[s].segmentation(k, arch, source, r, per_image=True)
                            for k in self.pipes[s].folds} for s in seeds}
            views = {s: pooled(pf, lambda f: f.counts) for s, pf in per_seed.items()}
            mean, sd = mean_sd(list(views.values()))
            first = per_seed[seeds[0]]
            rows.append({"arch": arch, "source": f"{source}-st{r}" if r else source,
                         "round": r, "seed": seeds[0], "seeds": seeds,
                         "pooled": mean, "pooled_sd": sd,
                         **({"per_seed": {str(s): v for s, v in views.items()}}
                            if len(seeds) > 1 else {}),
                         "fold_iou": [counts_from(f.counts).iou for f in first.values()
                                      if f.counts]})
            images.append([merged_per_image(pf, lambda f: f.per_image)
                           for pf in per_seed.values()])
        return add_table_iii_intervals(rows, images, self.cfg.reproduce.bootstrap_resamples,
                                       confidence=CONFIDENCE, seed=BOOTSTRAP_SEED)

    def bootstrap(self, pairs: list[tuple[str, str, dict[int, Any], dict[int, Any]]]
                  ) -> dict[str, Any]:
        """Paired bootstrap intervals of ``IoU(a) - IoU(b)`` for ``(a, b, images_a, images_b)``
        (per-image counts per seed); see :func:`paired_interval`."""
        n = self.cfg.reproduce.bootstrap_resamples
        rows = [{"a": a, "b": b, **paired_interval(ia, ib, self.seeds, n)}
                for a, b, ia, ib in pairs]
        return {"confidence": CONFIDENCE, "resamples": n, "generator_seed": BOOTSTRAP_SEED,
                "statistic": "mean over classifier seeds of pooled IoU(a) - pooled IoU(b), "
                             "defective test images resampled with replacement (paired)",
                "rows": rows}

    # ----------------------------------------------------------------- figures
    def figures(self, delta: float, sweep: dict[str, Any]) -> dict[str, str]:
        from racam.models import classifier_target_layers
        from racam.paper.figures import (
            delta_figure,
            method_grid_figure,
            stage_figure,
        )

        self.fig_dir.mkdir(parents=True, exist_ok=True)
        fold = self.pipe.folds[0]
        n = self.cfg.reproduce.figure_images
        test, dev = self.pipe.data(fold).test, self.pipe.device
        stages = classifier_target_layers(self.pipe.model(fold))
        stage_cams = {name: self.pipe.cam(fold, "gradcam", layers=[layer])
                      for name, layer in stages.items()}
        method_cams = {m: self.pipe.cam(fold, m, delta if get_method(m).uses_delta else None)
                       for m in self.cfg.reproduce.methods}
        return {
            "fig1": str(stage_figure(test, stage_cams, n, dev,
                                     self.fig_dir / "fig1_gradcam_stages.png")),
            "fig4_5": str(method_grid_figure(test, method_cams, n, dev,
                                             self.fig_dir / "fig4_5_methods.png")),
            "fig8_9": str(delta_figure(sweep, self.fig_dir / "fig8_9_delta.png")),
        }

    # --------------------------------------------------------------------- run
    def run(self) -> Path:
        """Compute everything (reusing finished stages) and write ``report.md`` /
        ``report.html``."""
        with CallLedger(self.out, self._stages_computed) as calls:
            return self._run(calls)

    def _stages_computed(self) -> int:
        return sum(p.stages_computed for p in self.pipes.values())

    def _run(self, calls: CallLedger) -> Path:
        clf = {s: {k: p.classifier(k) for k in p.folds} for s, p in self.pipes.items()}
        sweep = self.delta_sweep()
        delta = sweep["chosen_delta"]
        for p in self.pipes.values():
            p.cfg = dataclasses.replace(p.cfg, cam=dataclasses.replace(p.cfg.cam, delta=delta))
        t1, img1 = self.table_i(delta)
        t4, img4 = self.table_iv(delta)
        variants, img_v = self.racam_variants(delta)
        boot = self.bootstrap(self._pairs(delta, img1, img4, img_v))
        t3 = self.table_iii()
        figs = self.figures(delta, sweep)
        first = clf[self.seeds[0]]
        results = {"seeds": self.seeds, "chosen_delta": delta, "delta_sweep": sweep,
                   "table_i": t1, "table_iv": t4, "racam_variants": variants,
                   "notes": self.notes,
                   "bootstrap": boot, "table_iii": t3, "figures": figs,
                   "classifier": {k: classifier_summary(v) for k, v in first.items()},
                   "classifier_per_seed": {str(s): {k: classifier_summary(v) for k, v in c.items()}
                                           for s, c in clf.items()},
                   **self._stage_seconds(), **calls.summary(),
                   "machine": machine_info()}
        atomic_write_json(self.out / "reproduce.json", results)
        text = render_report(self.pipe.cfg, ReproductionResults.from_dict(results), self.out)
        atomic_write_text(self.out / "report.md", text)
        write_html(text, self.out / "report.html", title=f"racam reproduce: {self.cfg.name}")
        return self.out / "report.md"

    def _pairs(self, delta: float, img1: dict[str, Any], img4: dict[str, Any],
               img_v: dict[str, Any]) -> list[tuple[str, str, dict[int, Any], dict[int, Any]]]:
        """The comparisons the report makes, with each side's per-image counts per seed: RA-CAM
        minus each method of Table I, each FGBP plug-in minus its plain method, RA-CAM at
        ``delta`` minus at 0, and each RA-CAM variant minus the default options."""
        pairs = [(REFERENCE, m, img1[REFERENCE], img1[m]) for m in img1 if m != REFERENCE] \
            if REFERENCE in img1 else []
        pairs += [(f"{m}+fgbp", m, img4[f"{m}+fgbp"], img4[m])
                  for m in self.cfg.reproduce.plugin_methods]
        if delta > 0 and 0 in self.cfg.reproduce.deltas:  # the percentile filter's own effect
            _, img0 = self._cam_row(REFERENCE, 0)
            pairs.append((f"{REFERENCE}@{delta:g}", f"{REFERENCE}@0",
                          img1.get(REFERENCE) or self._cam_row(REFERENCE, delta)[1], img0))
        base_key = variant_key(CAM_OPTION_DEFAULTS)
        pairs += [(f"{REFERENCE}[{k}]", f"{REFERENCE}[{base_key}]", img_v[k], img_v[base_key])
                  for k in img_v if k != base_key]
        return pairs

    def _stage_seconds(self) -> dict[str, dict[str, float]]:
        """``stage_seconds`` and ``replaced_seconds`` of ``reproduce.json``: seconds per stage
        kind, summed over folds and seeds, and those counted twice (:func:`stage_seconds`)."""
        totals, replaced = stage_seconds(pipe.out for pipe in self.pipes.values())
        return {"stage_seconds": totals, "replaced_seconds": replaced}


def stage_seconds(outs: Iterable[Path]) -> tuple[dict[str, float], dict[str, float]]:
    """Seconds per stage kind, summed over the stored results of every fold of each output
    folder in ``outs``, with the seconds of the results a stage replaced while reusing their work
    (``replaced_seconds``: the classifier's training, when the delta chosen afterwards changes
    which stored epoch its pseudo-labels' area keeps); and those replaced seconds alone, by
    kind (kinds with none left out)."""
    totals: dict[str, float] = {}
    replaced: dict[str, float] = {}
    for out in outs:
        for path in out.glob("fold*/**/*.json"):
            if path.name in ("manifest.json", "history.json"):
                continue
            try:
                stored = json.loads(path.read_text())
                sec = stored.get("seconds")
            except (json.JSONDecodeError, AttributeError):
                continue
            if sec is None:
                continue
            rel = path.relative_to(out).parts
            kind = rel[1] if len(rel) > 2 else path.stem
            if kind == "cam":
                kind = f"heat maps ({rel[2]} images)"
            earlier = sum(stored.get("replaced_seconds") or [])
            totals[kind] = round(totals.get(kind, 0.0) + float(sec) + earlier, 1)
            if earlier:
                replaced[kind] = round(replaced.get(kind, 0.0) + earlier, 1)
    return totals, replaced


def _or(value: float | None, default: float) -> float:
    """``value``, or ``default`` when it is ``None``."""
    return default if value is None else value

