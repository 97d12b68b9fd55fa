"""`racam reproduce` statistics and report sentences, without training anything.

The engine is replaced by a fake whose heat-map results are per-image counts drawn from a
seeded generator, so every figure the reproduction reports can be recomputed here by hand:
seeds and their folders, the delta chosen on training images by the mean over seeds, Table I
as mean ± sd over seeds, and the paired bootstrap intervals. The report is then rendered from
results dicts with zero and missing figures, and its own sentences are checked against the
intervals they may (not) claim.
"""

from __future__ import annotations

import dataclasses
import json
import statistics
import zlib
from pathlib import Path

import numpy as np
import pytest
from helpers import KSDD_SAMPLE, TINY_CFG

import racam.paper.reproduce as rp
from racam.config import load_config
from racam.evaluation.bootstrap import BOOTSTRAP_SEED, paired_bootstrap_iou_difference
from racam.evaluation.metrics import Counts
from racam.paper.report import render_report
from racam.stages.classifier import ClassifierStageResult
from racam.stages.heatmaps import CamQualityResult
from racam.stages.segmentation import SegmentationStageResult

FOLDS = [0, 1]
IMAGES = 5  # defective test images per fold


def fake_counts(seed: int, fold: int, method: str, delta, split: str, weighting: str,
                head: str) -> dict[str, list[int]]:
    """Per-image [tp, fp, fn, tn] of a fake heat map; RA-CAM is made better at delta 50 on
    training images on average over seeds 0..2, but seed 0 alone prefers delta 0."""
    key = repr((seed, fold, method, delta, split, weighting, head)).encode()
    rng = np.random.default_rng(zlib.crc32(key))
    out = {}
    for i in range(IMAGES):
        tp, fp, fn = (int(v) for v in rng.integers(5, 60, size=3))
        if method == "racam" and split == "train":
            tp += {(0, 0): 400, (0, 50): 300}.get((seed, delta), 300 if delta == 50 else 0)
        if method == "racam" and split == "test":
            tp += 40  # RA-CAM clearly ahead of every baseline on test images
        out[f"kos{fold}{i}_img"] = [tp, fp, fn, 1000]
    return out


class FakeEngine:
    instances: list[FakeEngine] = []
    seg_iou_zero = True

    def __init__(self, cfg, output, *, progress=True, log=print) -> None:
        self.cfg, self.out, self.log = cfg, Path(output), log
        self.out.mkdir(parents=True, exist_ok=True)
        self.folds, self.device = FOLDS, "cpu"
        self.stages_computed = 1
        FakeEngine.instances.append(self)

    def classifier(self, k: int) -> ClassifierStageResult:
        return ClassifierStageResult(checkpoint="", test_auroc=0.5 + 0.1 * k, test_ap=None,
                                     best_epoch=1, seconds=2.0)

    def cam_quality(self, k, method, delta=None, split="test", *, weighting=None, fgbp_head=None,
                    per_image=False) -> CamQualityResult:
        per = fake_counts(self.cfg.seed, k, method, delta, split, weighting or "element",
                          fgbp_head or "sample")
        total = np.array(list(per.values())).sum(0).tolist()
        c = dict(zip(("tp", "fp", "fn", "tn"), total))
        return CamQualityResult(method=method, delta=delta, split=split, paper=c,
                                deployment={**c, "fp": c["fp"] + 7}, paper_per_image=per)

    def segmentation(self, k, arch, source, round=None, *,
                     per_image=False) -> SegmentationStageResult:
        tp = (0 if self.seg_iou_zero else 14) if source == "true" else 10 + self.cfg.seed
        return SegmentationStageResult(arch=arch, source=source, round=round or 0,
                                       checkpoint="",
                                       counts={"tp": tp, "fp": 5, "fn": 20, "tn": 1000},
                                       per_image=fake_seg_images(k, tp))


def fake_seg_images(fold: int, tp: int) -> dict[str, list[int]]:
    """Four test images per fold whose counts sum to the fake pooled counts above."""
    tps = [tp // 2 + fold, tp - tp // 2 - fold, 0, 0] if tp else [0] * 4
    return {f"seg{fold}/{i}": [tps[i], [2, 1, 1, 1][i], 5, 250] for i in range(4)}


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch):
    FakeEngine.instances = []
    monkeypatch.setattr(rp, "Engine", FakeEngine)
    monkeypatch.setattr(rp.Reproduction, "figures", lambda self, delta, sweep: {})
    return FakeEngine


def _cfg(seeds, **extra):
    over = {"reproduce.seeds": seeds, "reproduce.deltas": [0, 50],
            "reproduce.methods": ["gradcam", "layercam", "racam"],
            "reproduce.supervised_archs": ["unet"], "reproduce.bootstrap_resamples": 400,
            **KSDD_SAMPLE, "data.folds": FOLDS}
    over.update(extra)
    return load_config(TINY_CFG, over)


def _pooled_iou(seed, method, delta, split="test", weighting="element", head="sample"):
    total = Counts()
    for k in FOLDS:
        for tp, fp, fn, tn in fake_counts(seed, k, method, delta, split, weighting,
                                          head).values():
            total = total + Counts(tp, fp, fn, tn)
    return total.iou


def _arrays(seeds, method, delta, weighting="element", head="sample"):
    rows = []
    for s in seeds:
        per = {}
        for k in FOLDS:
            per.update({f"fold{k}/{i}": c for i, c in
                        fake_counts(s, k, method, delta, "test", weighting, head).items()})
        rows.append([per[i] for i in sorted(per)])
    return np.array(rows)


def test_three_seeds_mean_sd_delta_choice_and_bootstrap(fake, tmp_path) -> None:
    out = tmp_path / "repro"
    report = rp.Reproduction(_cfg([0, 1, 2]), out, progress=False, log=lambda s: None).run()
    # one engine per seed; the config's own seed (0) writes into the output folder
    assert sorted((p.cfg.seed, p.out) for p in fake.instances) == [
        (0, out), (1, out / "seed1"), (2, out / "seed2")]
    res = json.loads((out / "reproduce.json").read_text())
    assert res["seeds"] == [0, 1, 2]
    # delta by mean training IoU over seeds: 50, although seed 0 alone would pick 0
    assert _pooled_iou(0, "racam", 0, "train") > _pooled_iou(0, "racam", 50, "train")
    assert res["chosen_delta"] == 50
    rows = {r["method"]: r for r in res["table_i"]}
    for m in ("gradcam", "layercam", "racam"):
        d = 50 if m == "racam" else None
        ious = [_pooled_iou(s, m, d) for s in (0, 1, 2)]
        assert rows[m]["paper_view"]["iou"] == pytest.approx(statistics.mean(ious))
        assert rows[m]["paper_view_sd"]["iou"] == pytest.approx(statistics.stdev(ious))
        assert [rows[m]["per_seed"][str(s)]["paper_view"]["iou"] for s in (0, 1, 2)] == \
            pytest.approx(ious)
    # paired bootstrap over all seeds' defective test images, recomputed directly
    boot = {(r["a"], r["b"]): r for r in res["bootstrap"]["rows"]}
    for m in ("gradcam", "layercam"):
        want = paired_bootstrap_iou_difference(_arrays([0, 1, 2], "racam", 50),
                                               _arrays([0, 1, 2], m, None), resamples=400,
                                               seed=BOOTSTRAP_SEED)
        got = boot[("racam", m)]
        assert got["interval"] == want.to_dict() and got["seeds_used"] == [0, 1, 2]
        assert got["interval"]["excludes_zero"] and got["interval"]["low"] > 0
    assert boot[("racam@50", "racam@0")]["interval"]["images"] == len(FOLDS) * IMAGES
    assert ("layercam+fgbp", "layercam") in boot and ("fullgrad+fgbp", "fullgrad") in boot
    # both Eq. 7 readings and both FGBP head scopes are reported, each against the default
    variants = {r["variant"]: r for r in res["racam_variants"]}
    assert set(variants) == {"weighting=element,fgbp_head=sample",
                             "weighting=channel,fgbp_head=sample",
                             "weighting=element,fgbp_head=unit"}
    assert variants["weighting=channel,fgbp_head=sample"]["paper_view"]["iou"] == pytest.approx(
        statistics.mean(_pooled_iou(s, "racam", 50, weighting="channel") for s in (0, 1, 2)))
    chan = boot[("racam[weighting=channel,fgbp_head=sample]",
                 "racam[weighting=element,fgbp_head=sample]")]["interval"]
    assert chan == paired_bootstrap_iou_difference(
        _arrays([0, 1, 2], "racam", 50, weighting="channel"), _arrays([0, 1, 2], "racam", 50),
        resamples=400, seed=BOOTSTRAP_SEED).to_dict()
    assert set(res["classifier_per_seed"]) == {"0", "1", "2"}
    text = report.read_text()
    assert "mean ± sd over 3 seeds" in text and "nan" not in text.lower()
    r = json.loads((out / "reproduce.json").read_text())["table_i"]
    racam_iou = next(x for x in r if x["method"] == "racam")["paper_view"]
    assert f"| RA-CAM | {100 * racam_iou['iou']:.2f} ± " in text
    assert "RA-CAM at delta 50 has a higher IoU than each of the other 2 methods" in text
    verb = ("raises" if chan["low"] > 0 else "lowers" if chan["high"] < 0
            else "does not distinguishably change")
    assert f"RA-CAM with weighting channel instead of the default {verb} its IoU" in text
    assert "RA-CAM with fgbp_head unit instead of the default" in text


def test_single_seed_keeps_the_folder_layout(fake, tmp_path) -> None:
    out = tmp_path / "one"
    rp.Reproduction(_cfg([0]), out, progress=False, log=lambda s: None).run()
    assert [(p.cfg.seed, p.out) for p in fake.instances] == [(0, out)]
    assert not list(out.glob("seed*"))
    res = json.loads((out / "reproduce.json").read_text())
    row = next(r for r in res["table_i"] if r["method"] == "gradcam")
    assert row["paper_view_sd"] is None and row["paper_view"]["seeds"] == 1
    assert row["paper_view"]["iou"] == pytest.approx(_pooled_iou(0, "gradcam", None))
    assert res["bootstrap"]["rows"][0]["seeds_used"] == [0]


def test_a_seed_other_than_the_configs_goes_to_its_own_folder(fake, tmp_path) -> None:
    out = tmp_path / "other"
    rp.Reproduction(_cfg([3, 0]), out, progress=False, log=lambda s: None)
    assert [(p.cfg.seed, p.out) for p in fake.instances] == [(3, out / "seed3"), (0, out)]
    with pytest.raises(Exception, match="distinct"):
        rp.Reproduction(_cfg([1, 1]), out, progress=False, log=lambda s: None)


def test_each_seeds_log_lines_name_the_seed(fake, tmp_path) -> None:
    said: list[str] = []
    rp.Reproduction(_cfg([0, 1]), tmp_path / "r", progress=False, log=said.append)
    for p in fake.instances:
        p.log("[racam] fold 2: classifier ...")
        p.log("plain line")
    assert said == ["[racam] seed 0: fold 2: classifier ...", "plain line",
                    "[racam] seed 1: fold 2: classifier ...", "plain line"]
    fake.instances.clear()
    said.clear()
    rp.Reproduction(_cfg([0]), tmp_path / "one", progress=False, log=said.append)
    fake.instances[0].log("[racam] fold 0: classifier ...")
    assert said == ["[racam] fold 0: classifier ..."]  # one seed: no seed to name


# ---------------------------------------------------------------- report sentences
def _iv(est, low, high):
    return {"estimate": est, "low": low, "high": high, "confidence": 0.95, "resamples": 100,
            "images": 10, "seeds": 1, "excludes_zero": low > 0 or high < 0}


def _view(iou):
    return {"iou": iou, "precision": iou, "recall": iou, "f1": iou, "miou": iou,
            "iou_background": 0.9}


def _results(delta=50, racam_vs=None, fgbp=None, fs_iou=0.0) -> dict:
    racam_vs = racam_vs or {}
    fgbp = fgbp or {}
    rows = [{"a": "racam", "b": m, "interval": iv} for m, iv in racam_vs.items()]
    rows += [{"a": f"{m}+fgbp", "b": m, "interval": iv} for m, iv in fgbp.items()]
    return {
        "seeds": [0], "chosen_delta": delta,
        "delta_sweep": {"rows": [{"delta": 0, "train": _view(0.1), "test": _view(0.1)},
                                 {"delta": 50, "train": _view(0.12), "test": None}],
                        "chosen_delta": delta},
        "table_i": [{"method": "racam", "delta": delta, "paper_view": _view(0.15),
                     "deployment_view": None, "fold_iou": [0.1, 0.2]},
                    {"method": "gradcam", "delta": None, "paper_view": _view(0.10),
                     "deployment_view": _view(0.05), "fold_iou": []},
                    {"method": "layercam", "delta": None, "paper_view": _view(0.14),
                     "deployment_view": None, "fold_iou": [0.1]}],
        "table_iv": [{"method": "layercam", "delta": None, "paper_view": _view(0.14),
                      "fold_iou": []},
                     {"method": "layercam+fgbp", "delta": delta, "paper_view": _view(0.15),
                      "fold_iou": []}],
        "bootstrap": {"confidence": 0.95, "rows": rows},
        "table_iii": [{"arch": "deeplabv3", "source": "pseudo", "pooled": _view(0.05),
                       "fold_iou": [0.05]},
                      {"arch": "unet", "source": "true", "pooled": _view(fs_iou),
                       "fold_iou": [fs_iou]}],
        "figures": {}, "classifier": {0: {"test_auroc": None, "test_ap": None,
                                          "best_epoch": 1, "seconds": 1}},
        "stage_seconds": {}, "wall_seconds_this_call": 1.0, "machine": {}}


@pytest.fixture(scope="module")
def cfg():
    return load_config(TINY_CFG)


def test_fully_supervised_iou_zero_does_not_divide(cfg, tmp_path) -> None:
    text = render_report(cfg, _results(fs_iou=0.0), tmp_path)
    assert "No fully supervised network" in text and "% of the best" not in text
    text = render_report(cfg, _results(fs_iou=0.5), tmp_path)
    assert "reaches 10.0% of the best fully supervised defect IoU" in text


def test_missing_rows_and_figures_render(cfg, tmp_path) -> None:
    res = _results()
    res["table_i"][0]["paper_view"] = None
    res["table_iii"][0]["pooled"] = None
    res["table_iii"][1]["pooled"] = None
    res["table_iv"] = []
    res["bootstrap"] = None
    res["delta_sweep"]["rows"][0]["test"] = None
    text = render_report(cfg, res, tmp_path)
    assert "| RA-CAM | - | - | - | - |" in text
    assert "(figure n/a: this run produced none" in text and "nan" not in text.lower()
    assert "fully supervised" not in text.split("## Classifier")[0]
    # even an empty results dict renders (every figure missing)
    empty = render_report(cfg, {}, tmp_path)
    assert "## Table I" in empty and "nan" not in empty.lower()


def test_a_record_without_a_chosen_delta_renders(cfg, tmp_path) -> None:
    # no delta recorded (a sweep that did not finish): Table IV's FGBP rows still render
    text = render_report(cfg, _results(delta=None), tmp_path)
    assert "delta chosen on training images: **-**" in text
    assert "LayerCAM 14.00 -> 15.00 IoU with FGBP (delta -); no interval" in text
    assert "## Table IV: FGBP as a plug-in (delta -)" in text


def test_no_ranking_claim_the_intervals_do_not_support(cfg, tmp_path) -> None:
    # RA-CAM has the highest mean IoU, but its interval against LayerCAM contains 0
    res = _results(racam_vs={"gradcam": _iv(0.05, 0.01, 0.09),
                             "layercam": _iv(0.01, -0.02, 0.04)})
    text = render_report(cfg, res, tmp_path)
    assert "higher IoU than each" not in text and "ranks first" not in text.replace(
        "the paper ranks it first", "")
    assert "above Grad-CAM (95% interval excludes 0)" in text
    assert "not distinguishable from LayerCAM (interval contains 0)" in text
    # every interval excludes 0: the paper's ranking is confirmed
    res = _results(racam_vs={"gradcam": _iv(0.05, 0.01, 0.09),
                             "layercam": _iv(0.01, 0.002, 0.04)})
    assert "higher IoU than each of the other 2 methods" in render_report(cfg, res, tmp_path)
    # no interval at all: no order is claimed
    text = render_report(cfg, _results(), tmp_path)
    assert "not compared with Grad-CAM, LayerCAM" in text and "higher IoU than" not in text


def test_fgbp_helps_only_at_positive_delta_with_an_interval_excluding_zero(cfg,
                                                                          tmp_path) -> None:
    helps = {"layercam": _iv(0.01, 0.004, 0.02)}
    text = render_report(cfg, _results(delta=50, fgbp=helps), tmp_path)
    assert "FGBP (delta 50) improves LayerCAM" in text
    # the same numbers at delta 0 are guided backpropagation: no FGBP claim
    text = render_report(cfg, _results(delta=0, fgbp=helps), tmp_path)
    assert "improves" not in text and "At delta 0 FGBP is guided backpropagation" in text
    assert "| RA-CAM (delta 0: guided backpropagation, = LayerCAM+GBP) |" in text
    assert "| LayerCAM+FGBP (delta 0: guided backpropagation) |" in text
    assert "| 0 (guided backpropagation) |" in text
    # an interval containing 0 is reported as such
    text = render_report(cfg, _results(delta=50, fgbp={"layercam": _iv(0.01, -0.01, 0.03)}),
                            tmp_path)
    assert "improves" not in text and "not distinguishable from 0" in text
    # no interval: no claim either way
    text = render_report(cfg, _results(delta=50), tmp_path)
    assert "improves" not in text and "no claim either way" in text


def test_goals_are_checked_next_to_their_numbers(cfg, tmp_path) -> None:
    goals = dataclasses.replace(cfg.reproduce, wall_goal_minutes=120,
                                segmentation_goals={"unet-true": 55, "deeplabv3-pseudo": 25})
    with_goals = dataclasses.replace(cfg, reproduce=goals)
    res = _results(fs_iou=0.6)
    res["stage_seconds"] = {"classifier": 3000.0, "segmentation": 4000.0}
    text = render_report(with_goals, res, tmp_path)
    table = text.split("## Table III")[1].split("##")[0]
    assert "| 60.00 |" in table and "met: >= 55" in table
    assert "not met: >= 25" in table and "docs/results.md" in table  # WS row: 5.00
    assert "DeepLabV3, DeepLabV3+ (the paper's other Table III rows) are not trained" in table
    assert "all stages | 7000.0" in text and "116.7 minutes: **met**" in text
    res["stage_seconds"]["segmentation"] = 5000.0
    assert "133.3 minutes: **not met**" in render_report(with_goals, res, tmp_path)
    # with the calls recorded, the goal is checked on their wall time, not the stages' sum
    res.update(wall_seconds_this_call=600.0, wall_seconds_all_calls=9000.0, calls=2)
    text = render_report(with_goals, res, tmp_path)
    assert "All 2 call(s) that computed stages or were interrupted: 9000.0 s" in text
    assert "the calls took 150.0 minutes: **not met**" in text and "133.3" not in text
    res.update(wall_seconds_all_calls=600.0, calls=1)  # calls recorded after most stages ran
    text = render_report(with_goals, res, tmp_path)
    assert ("the recorded calls (10.0 minutes) missed some, and the stages sum to 133.3 minutes: "
            "**not met**") in text
    # without goals the table has no goal column and the report no verdict
    plain = render_report(cfg, res, tmp_path)
    assert "| goal |" not in plain and "**not met**" not in plain


def _profile(text: str) -> dict[str, tuple[float, str]]:
    """The Timings table's rows: stage -> (seconds, share)."""
    table = text.split("## Timings")[1].split("\n\n")[1]
    rows = [r.strip("| ").split(" | ") for r in table.splitlines()[2:]]
    return {r[0]: (float(r[1]), r[2]) for r in rows}


def test_the_stage_profile_gives_each_stage_its_share_of_the_wall_time(cfg, tmp_path) -> None:
    res = _results()
    res["stage_seconds"] = {"classifier": 300.0, "segmentation": 600.0, "pseudo": 50.0}
    res.update(wall_seconds_this_call=1000.0, wall_seconds_all_calls=1000.0, calls=1)
    text = render_report(cfg, res, tmp_path)
    rows = _profile(text)
    assert list(rows) == ["segmentation", "classifier", "pseudo", "all stages",
                          "outside the stages"]  # largest first
    assert rows["segmentation"] == (600.0, "60.0 %") and rows["pseudo"] == (50.0, "5.0 %")
    assert rows["all stages"] == (950.0, "95.0 %")
    assert rows["outside the stages"] == (50.0, "5.0 %")
    assert "Shares are of the wall time of all the calls" in text
    # calls that missed some stages: shares of the stages' sum, and said so
    res.update(wall_seconds_all_calls=500.0)
    rows = _profile(render_report(cfg, res, tmp_path))
    assert "outside the stages" not in rows and rows["all stages"] == (950.0, "100.0 %")
    assert rows["classifier"][1] == f"{100 * 300 / 950:.1f} %"
    assert "the recorded calls' wall time (500.0 s) missed some stages" in render_report(
        cfg, res, tmp_path)
    # nothing recorded: a table of no stage, no division by 0
    res.update(stage_seconds={}, wall_seconds_all_calls=None)
    text = render_report(cfg, res, tmp_path)
    assert _profile(text) == {"all stages": (0.0, "n/a")} and "is not recorded" in text


def test_goal_values_are_checked_on_load() -> None:
    from racam.config import config_from_dict
    from racam.errors import ConfigError

    ok = config_from_dict({"reproduce": {"segmentation_goals": {"unet-true": "55"}}})
    assert ok.reproduce.segmentation_goals == {"unet-true": 55.0}
    with pytest.raises(ConfigError, match=r"reproduce\.segmentation_goals\.unet-true: must lie"):
        config_from_dict({"reproduce": {"segmentation_goals": {"unet-true": 120}}})
    with pytest.raises(ConfigError, match="reproduce.segmentation_goals: expected a mapping"):
        config_from_dict({"reproduce": {"segmentation_goals": [55]}})


def test_a_fusion_other_than_the_protocols_is_said(cfg, tmp_path) -> None:
    mean = dataclasses.replace(cfg, cam=dataclasses.replace(cfg.cam, fusion="mean"))
    maxed = dataclasses.replace(cfg, cam=dataclasses.replace(cfg.cam, fusion="max"))
    assert "the protocol's default is max" in render_report(mean, _results(), tmp_path)
    assert "the protocol's default is max" not in render_report(maxed, _results(), tmp_path)


def test_segmentation_off_trains_nothing_and_says_so(cfg, tmp_path) -> None:
    cfg = dataclasses.replace(cfg, reproduce=dataclasses.replace(cfg.reproduce,
                                                                 segmentation=False))
    repro = rp.Reproduction.__new__(rp.Reproduction)  # no pipeline: nothing may be trained
    repro.cfg = cfg
    assert repro.table_iii() == []
    text = render_report(cfg, {**_results(), "table_iii": []}, tmp_path)
    assert "Table III's networks were not trained by this reproduction" in text


def test_self_training_row_and_note(cfg, tmp_path) -> None:
    goals = dataclasses.replace(cfg.reproduce, segmentation_goals={"deeplabv3-pseudo-st1": 25})
    res = _results(fs_iou=0.5)
    res["table_iii"].insert(1, {"arch": "deeplabv3", "source": "pseudo-st1", "round": 1,
                                "pooled": _view(0.3), "fold_iou": [0.3]})
    text = render_report(dataclasses.replace(cfg, reproduce=goals), res, tmp_path)
    row = next(line for line in text.splitlines() if "self-training round 1" in line)
    assert "| 30.00 |" in row and "met: >= 25" in row
    assert ("deeplabv3-pseudo-st1 (trained on the masks of the round before it) has a defect IoU "
            "of 30.00 against 5.00 for deeplabv3-pseudo") in text
    assert "deeplabv3-pseudo reaches 10.0% of the best fully supervised" in text


def test_table_iii_intervals_from_per_image_counts(fake, tmp_path, monkeypatch) -> None:
    """Table III: each network's pooled IoU gets a bootstrap interval over the test images of
    all folds, each weakly supervised network a paired one against the fully supervised."""
    from racam.evaluation.bootstrap import bootstrap_iou

    monkeypatch.setattr(FakeEngine, "seg_iou_zero", False)
    out = tmp_path / "t3"
    report = rp.Reproduction(_cfg([0]), out, progress=False, log=lambda s: None).run()
    rows = {f"{r['arch']}-{r['source']}": r
            for r in json.loads((out / "reproduce.json").read_text())["table_iii"]}
    ws, fs = rows["deeplabv3-pseudo"], rows["unet-true"]

    def stacked(tp: int) -> np.ndarray:
        per = {i: c for k in FOLDS for i, c in fake_seg_images(k, tp).items()}
        return np.array([per[i] for i in sorted(per)])

    want = bootstrap_iou(stacked(10), resamples=400, seed=BOOTSTRAP_SEED).to_dict()
    assert ws["interval"] == want and want["images"] == 4 * len(FOLDS)
    assert ws["interval"]["estimate"] == pytest.approx(10 / 35)
    assert want["low"] < want["estimate"] < want["high"]
    diff = ws["minus_supervised"]
    assert diff["b"] == "unet-true"  # no DeepLabV3 on true masks: the first supervised row
    paired = paired_bootstrap_iou_difference(stacked(10), stacked(14), resamples=400,
                                             seed=BOOTSTRAP_SEED).to_dict()
    assert diff["interval"] == paired and paired["estimate"] == pytest.approx(10 / 35 - 14 / 39)
    assert "minus_supervised" not in fs and fs["interval"]["images"] == 4 * len(FOLDS)
    text = report.read_text()
    assert f"[{100 * want['low']:.2f}, {100 * want['high']:.2f}]" in text
    assert f"- deeplabv3-pseudo minus unet-true: {100 * paired['estimate']:+.2f} [" in text
    assert (f"percentile bootstrap over the test images of all folds ({4 * len(FOLDS)} images)"
            in text)


def test_table_iii_interval_is_na_without_per_image_counts(cfg, tmp_path) -> None:
    res = _results(fs_iou=0.5)
    res["table_iii"][0]["minus_supervised"] = {"b": "unet-true", "interval": None,
                                               "reason": "per-image counts missing"}
    text = render_report(cfg, res, tmp_path)
    row = next(line for line in text.splitlines() if line.startswith("| DeepLabV3 |"))
    assert "| 5.00 | n/a |" in row
    assert "- deeplabv3-pseudo minus unet-true: n/a (per-image counts missing)" in text


def test_table_iii_over_several_classifier_seeds(fake, tmp_path, monkeypatch) -> None:
    """``reproduce.segmentation_seeds``: one weakly supervised network per seed, mean ± sd in
    Table III, the interval over images of the seeds' mean IoU, and the fully supervised row
    (first seed) compared with every seed."""
    from racam.evaluation.bootstrap import bootstrap_iou

    monkeypatch.setattr(FakeEngine, "seg_iou_zero", False)
    out = tmp_path / "t3s"
    cfg = _cfg([0, 1, 2], **{"reproduce.segmentation_seeds": [0, 1, 2]})
    report = rp.Reproduction(cfg, out, progress=False, log=lambda s: None).run()
    rows = {f"{r['arch']}-{r['source']}": r
            for r in json.loads((out / "reproduce.json").read_text())["table_iii"]}
    ws, fs = rows["deeplabv3-pseudo"], rows["unet-true"]
    assert ws["seeds"] == [0, 1, 2] and fs["seeds"] == [0]
    ious = [(10 + s) / (35 + s) for s in (0, 1, 2)]  # per fold tp 10+s, fp 5, fn 20
    assert ws["pooled"]["iou"] == pytest.approx(statistics.mean(ious))
    assert ws["pooled_sd"]["iou"] == pytest.approx(statistics.stdev(ious))
    assert [ws["per_seed"][str(s)]["iou"] for s in (0, 1, 2)] == pytest.approx(ious)

    def stacked(tp: int) -> list[list[int]]:
        per = {i: c for k in FOLDS for i, c in fake_seg_images(k, tp).items()}
        return [per[i] for i in sorted(per)]

    ws_counts = np.array([stacked(10 + s) for s in (0, 1, 2)])
    assert ws["interval"] == bootstrap_iou(ws_counts, resamples=400,
                                           seed=BOOTSTRAP_SEED).to_dict()
    assert ws["interval"]["seeds"] == 3
    fs_counts = np.array([stacked(14)] * 3)
    assert ws["minus_supervised"]["interval"] == paired_bootstrap_iou_difference(
        ws_counts, fs_counts, resamples=400, seed=BOOTSTRAP_SEED).to_dict()
    text = report.read_text()
    assert "mean ± sd over classifier seeds 0, 1, 2; fully supervised: seed 0" in text
    assert f"{100 * statistics.mean(ious):.2f} ± {100 * statistics.stdev(ious):.2f}" in text
    # fewer seeds for Table III than for Table I
    cfg1 = _cfg([0, 1, 2], **{"reproduce.segmentation_seeds": [1]})
    rp.Reproduction(cfg1, tmp_path / "one", progress=False, log=lambda s: None).run()
    one = json.loads((tmp_path / "one" / "reproduce.json").read_text())["table_iii"][0]
    assert one["seeds"] == [1] and one["pooled"]["iou"] == pytest.approx(11 / 36)


@pytest.mark.parametrize("seeds", [[5], [0, 0], []])
def test_table_iii_seeds_must_be_classifier_seeds(seeds) -> None:
    from racam.errors import ConfigError

    with pytest.raises(ConfigError, match=r"reproduce\.segmentation_seeds"):
        _cfg([0, 1], **{"reproduce.segmentation_seeds": seeds})


def test_the_profile_counts_the_work_a_recomputed_stage_reused(tmp_path) -> None:
    from racam.paper.reproduce import stage_seconds

    for rel, value in (("fold0/classifier/result.json", {"seconds": 2.8,
                                                          "replaced_seconds": [390.0]}),
                       ("fold1/classifier/result.json", {"seconds": 400.0}),
                       ("fold0/cam/test/racam-d70.json", {"seconds": 5.0}),
                       ("fold0/pseudo/k/manifest.json", {"seconds": 99.0})):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(json.dumps(value))
    assert stage_seconds([tmp_path]) == ({"classifier": 792.8, "heat maps (test images)": 5.0},
                                         {"classifier": 390.0})


def test_the_profile_names_the_seconds_counted_twice_only_where_there_are_some(
        cfg, tmp_path) -> None:
    res = {**_results(), "stage_seconds": {"classifier": 792.8}}
    assert "counts both computations" not in render_report(cfg, res, tmp_path)
    text = render_report(cfg, {**res, "replaced_seconds": {"classifier": 390.0}}, tmp_path)
    assert "counts both computations: classifier 390.0 s of the figures above" in text

