"""``cam.scale_candidates``: of the scales at which the classifier still calls most defective
training images defective, the pseudo-labels' input scale is the one whose labels mark the least
of those images at the AUROC epoch (:mod:`racam.pseudo.scale_choice`); the epoch choice and the
pseudo-label stage then work at that scale."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import TINY_CFG
from PIL import Image

from racam.config import load_config
from racam.engine import Engine
from racam.errors import ConfigError
from racam.io import read_json
from racam.pseudo.scale_choice import ScaleChoice, called_share, choose_scale
from racam.stages.classifier import ClassifierStage


def test_the_smallest_area_wins_ties_go_to_the_smaller_scale() -> None:
    area = {1.0: 0.012, 1.5: 0.009, 2.0: 0.004}
    scored: list[float] = []

    def score(s: float) -> float:
        scored.append(s)
        return area[s]

    assert choose_scale([1.0, 1.5, 2.0], score) == ScaleChoice((2.0,), area)
    assert scored == [1.0, 1.5, 2.0]
    assert choose_scale([2.0, 1.0], lambda s: 0.01).scales == (1.0,)  # tie: the cheaper map
    assert choose_scale([2.0], lambda s: 1 / 0) == ScaleChoice((2.0,), {})  # one: not scored
    with pytest.raises(ValueError):
        choose_scale([], lambda s: 0.0)
    stored = ScaleChoice((2.0,), {1.0: 0.02, 2.0: 0.01}).to_json()
    assert stored == {"scale": 2.0, "areas": {"1": 0.02, "2": 0.01}, "called": {}}
    assert ScaleChoice.from_json(stored) == ScaleChoice((2.0,), {1.0: 0.02, 2.0: 0.01})


def test_a_scale_where_the_classifier_misses_most_defects_is_not_a_candidate() -> None:
    def no_area(s: float) -> float:
        raise AssertionError("a single candidate is not scored")

    called = {1.0: 0.9, 2.0: 0.1}
    assert choose_scale([1.0, 2.0], no_area, called.get) == ScaleChoice((1.0,), {}, called)
    called = {1.0: 0.4, 2.0: 0.5}  # at least half: a candidate
    assert choose_scale([1.0, 2.0], no_area, called.get).scales == (2.0,)
    called = {1.0: 0.3, 1.5: 0.45, 2.0: 0.45}  # none passes: the highest share, then smaller
    assert choose_scale([1.0, 1.5, 2.0], no_area, called.get) == ScaleChoice((1.5,), {},
                                                                          called)
    area = {1.0: 0.012, 1.5: 0.009, 2.0: 0.004}
    called = {1.0: 1.0, 1.5: 0.8, 2.0: 0.2}  # the smallest area among the candidates
    assert choose_scale([1.0, 1.5, 2.0], area.__getitem__, called.get) == ScaleChoice(
        (1.5,), {1.0: 0.012, 1.5: 0.009}, called)
    stored = ScaleChoice((1.5,), {1.0: 0.012}, called).to_json()
    assert stored["called"] == {"1": 1.0, "1.5": 0.8, "2": 0.2}
    assert ScaleChoice.from_json(stored) == ScaleChoice((1.5,), {1.0: 0.012}, called)
    assert ScaleChoice.from_json({"scale": 2, "areas": {}}).called == {}  # stored before


def test_the_mean_rule_averages_every_scale_the_classifier_still_sees_defects_at() -> None:
    def no_area(s: float) -> float:
        raise AssertionError("the mean rule scores no area")

    called = {1.0: 0.88, 1.5: 0.74, 2.0: 0.21}  # KolektorSDD fold 1's shares (seed 1)
    assert choose_scale([1.0, 1.5, 2.0], no_area, called.get, rule="mean") == ScaleChoice(
        (1.0, 1.5), {}, called)
    called = {1.0: 0.88, 1.5: 0.04, 2.0: 0.0}  # BSData's: scale 1 alone
    assert choose_scale([1.0, 1.5, 2.0], no_area, called.get, rule="mean").scales == (1.0,)
    called = {1.0: 0.3, 1.5: 0.45, 2.0: 0.2}  # none passes: the highest share alone
    assert choose_scale([1.0, 1.5, 2.0], no_area, called.get, rule="mean").scales == (1.5,)
    stored = ScaleChoice((1.0, 1.5), {}, {1.0: 0.9, 1.5: 0.6}).to_json()
    assert stored["scale"] == [1.0, 1.5]
    assert ScaleChoice.from_json(stored).scales == (1.0, 1.5)
    with pytest.raises(ValueError, match="rule"):
        choose_scale([1.0, 2.0], no_area, rule="median")


class _Width(torch.nn.Module):
    """p(defect) >= 0.5 exactly when the input is at least 100 pixels wide."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = torch.full((x.shape[0],), float(x.shape[-1] - 100))
        return torch.stack([torch.zeros_like(z), z], dim=1)


def test_called_share_sees_the_input_as_the_enlarged_heat_maps_do() -> None:
    from racam.data.sample import Sample

    ds = [Sample(image=torch.rand(1, 20, 64), label=1, id=str(i), original_size=(64, 20))
          for i in range(5)]
    assert called_share(_Width(), ds, [0, 1, 2], 1.0, batch_size=2) == 0.0
    assert called_share(_Width(), ds, [0, 1, 2], 2.0, batch_size=2) == 1.0  # 128 wide
    assert called_share(_Width(), ds, [0, 1, 2, 3], 1.5625, batch_size=3) == 1.0  # 100 wide
    with pytest.raises(ValueError):
        called_share(_Width(), ds, [], 2.0)


def test_scale_candidates_are_checked() -> None:
    with pytest.raises(ConfigError, match="cam.scale_candidates"):
        load_config(TINY_CFG, {"cam.scale_candidates": [1.0, 0.0]})
    with pytest.raises(ConfigError, match="cam.scale_rule"):
        load_config(TINY_CFG, {"cam.scale_rule": "median"})


def _mask_shares(engine: Engine) -> tuple[float, dict]:
    manifest = read_json(engine.pseudo_dir(0) / "manifest.json")
    shares = [(np.asarray(Image.open(engine.pseudo_dir(0) / it["mask"])) > 0).mean()
              for it in manifest["images"] if it["label"] == 1]
    return float(np.mean(shares)), manifest


def test_the_pipeline_draws_the_pseudo_labels_at_the_scale_of_smallest_area(tmp_path, monkeypatch
                                                                           ) -> None:
    monkeypatch.setattr(ClassifierStage, "called_share", lambda self, fold, ck, s: 1.0)
    cfg = load_config(TINY_CFG, {"output": str(tmp_path), "device": "cpu", "data.size": [64, 160],
                               "classifier.epochs": 2, "classifier.samples_per_epoch": 16,
                               "classifier.keep_epoch": "pseudo_area",
                               "classifier.keep_tolerance": 1.0,
                               "cam.pseudo_threshold": "otsu2",
                               "cam.scale_candidates": [1.0, 2.0]})
    said: list[str] = []
    engine = Engine(cfg, progress=False, log=said.append)
    res = engine.train_classifier()[0]
    choice = ScaleChoice.from_json(res.scale_choice)
    assert choice.called == {1.0: 1.0, 2.0: 1.0}  # both candidates
    assert sorted(choice.areas) == [1.0, 2.0]
    assert choice.areas[1.0] != choice.areas[2.0]  # the enlarged input's maps differ
    (scale,) = choice.scales
    assert scale == min(choice.areas, key=choice.areas.__getitem__)
    assert any(f"pseudo-labels at input scale {scale:g}" in s for s in said)
    # best.pt's weights are those of the AUROC epoch's file: scored once at the kept scale
    # (2 candidate scales at best.pt, then the other of the 2 epochs)
    assert sum("pseudo-labels mark" in s for s in said) == 3
    engine.pseudo_labels([0])
    assert engine.pseudo_dir(0).name.endswith("-sc1_2-otsu2")
    share, manifest = _mask_shares(engine)
    assert manifest["scales"] == [scale]
    # the masks written are those the epoch choice scored at the chosen scale
    kept = res.epoch_choice
    assert share == pytest.approx(kept["areas"][str(kept["epoch"])], rel=1e-12)
    if kept["epoch"] == kept["by_auroc"]:  # the scale was chosen on these very weights
        assert share == pytest.approx(choice.areas[scale], rel=1e-12)


def test_the_recorded_shares_are_the_best_epochs_decisions_on_the_resized_images(tmp_path
                                                                                ) -> None:
    cfg = load_config(TINY_CFG, {"output": str(tmp_path), "device": "cpu", "data.size": [64, 160],
                               "classifier.epochs": 2, "classifier.samples_per_epoch": 16,
                               "cam.scale_candidates": [1.0, 2.0]})
    engine = Engine(cfg, progress=False, log=lambda s: None)
    choice = ScaleChoice.from_json(engine.train_classifier()[0].scale_choice)
    from racam.classifier import load_classifier

    model, _ = load_classifier(engine.fold_dir(0) / "classifier" / "best.pt")
    ds = engine.data(0).train_all
    images = torch.stack([ds[i].image for i, y in enumerate(ds.labels) if y == 1])
    for s in (1.0, 2.0):
        x = F.interpolate(images, scale_factor=s, mode="bilinear") if s != 1 else images
        with torch.no_grad():
            p = model.eval()(x).softmax(1)[:, 1]
        assert choice.called[s] == pytest.approx(float((p >= 0.5).float().mean()))
    eligible = [s for s in (1.0, 2.0) if choice.called[s] >= 0.5] or [
        max((1.0, 2.0), key=lambda s: (choice.called[s], -s))]
    assert sorted(choice.areas) == (eligible if len(eligible) > 1 else [])
    assert len(choice.scales) == 1 and choice.scales[0] in eligible


def test_a_single_candidate_draws_the_labels_at_that_scale_without_scoring(tmp_path) -> None:
    base = {"output": str(tmp_path / "a"), "device": "cpu", "data.size": [64, 160],
            "classifier.epochs": 1, "classifier.samples_per_epoch": 16}
    one = Engine(load_config(TINY_CFG, {**base, "cam.scale_candidates": [2.0]}), progress=False,
                 log=lambda s: None)
    res = one.train_classifier()[0]
    assert res.scale_choice == {"scale": 2.0, "areas": {}, "called": {}}
    one.pseudo_labels([0])
    # the same classifier (its folder copied, the stage's result left out: it resumes from
    # the finished last.pt) with cam.scales [2.0] gives the same masks
    two = Engine(load_config(TINY_CFG, {**base, "output": str(tmp_path / "b"),
                                      "cam.scales": [2.0]}), progress=False, log=lambda s: None)
    shutil.copytree(one.fold_dir(0) / "classifier", two.fold_dir(0) / "classifier")
    (two.fold_dir(0) / "classifier" / "result.json").unlink()
    two.pseudo_labels([0])
    assert two.pseudo_dir(0) != one.pseudo_dir(0)
    a, b = _mask_shares(one)[0], _mask_shares(two)[0]
    assert a == pytest.approx(b, rel=1e-12)


def test_the_mean_rule_draws_the_labels_from_the_mean_of_the_admitted_scales(tmp_path,
                                                                             monkeypatch) -> None:
    """The labels of the ``mean`` rule equal those of ``cam.scales`` set to the admitted scales
    (the same classifier), and a scale the classifier misses defects at is left out."""
    shares = {1.0: 0.9, 1.5: 0.2, 2.0: 0.6}
    monkeypatch.setattr(ClassifierStage, "called_share", lambda self, fold, ck, s: shares[s])
    base = {"output": str(tmp_path / "a"), "device": "cpu", "data.size": [64, 160],
            "classifier.epochs": 1, "classifier.samples_per_epoch": 16}
    said: list[str] = []
    mean = Engine(load_config(TINY_CFG, {**base, "cam.scale_candidates": [1.0, 1.5, 2.0],
                                       "cam.scale_rule": "mean"}), progress=False,
                  log=said.append)
    res = mean.train_classifier()[0]
    assert res.scale_choice == {"scale": [1.0, 2.0], "areas": {},
                                "called": {"1": 0.9, "1.5": 0.2, "2": 0.6}}
    assert any("pseudo-labels at the mean of the maps at input scales 1, 2" in s for s in said)
    mean.pseudo_labels([0])
    assert mean.pseudo_dir(0).name.endswith("-sm1_1.5_2")
    assert _mask_shares(mean)[1]["scales"] == [1.0, 2.0]
    fixed = Engine(load_config(TINY_CFG, {**base, "output": str(tmp_path / "b"),
                                        "cam.scales": [1.0, 2.0]}), progress=False,
                   log=lambda s: None)
    shutil.copytree(mean.fold_dir(0) / "classifier", fixed.fold_dir(0) / "classifier")
    (fixed.fold_dir(0) / "classifier" / "result.json").unlink()
    fixed.pseudo_labels([0])
    at_one = _mask_shares(mean)[0]
    assert at_one == pytest.approx(_mask_shares(fixed)[0], rel=1e-12)
    plain = Engine(load_config(TINY_CFG, {**base, "output": str(tmp_path / "c")}), progress=False,
                   log=lambda s: None)
    shutil.copytree(mean.fold_dir(0) / "classifier", plain.fold_dir(0) / "classifier")
    (plain.fold_dir(0) / "classifier" / "result.json").unlink()
    plain.pseudo_labels([0])
    assert _mask_shares(plain)[0] != pytest.approx(at_one, rel=1e-6)  # the mean differs


def test_the_report_states_the_scale_choice() -> None:
    from racam.report.tables import classifier_notes
    from racam.stages.classifier import ClassifierSummary

    choice = {"scale": 2.0, "areas": {"1": 0.011, "2": 0.0058}, "called": {"1": 1.0, "2": 0.75}}
    stored = ClassifierSummary(0.99, 0.9, 3, 10.0, scale_choice=choice).to_json()
    assert ClassifierSummary.from_json(stored).scale_choice == choice
    (note,) = classifier_notes("Fold 0", stored)
    assert note.startswith("Fold 0: the pseudo-labels are drawn from the input scaled by 2 (")
    assert ("(p(defect) >= 0.5, whatever the decision threshold), at least half needed: "
            "scale 1: 100.00 %, scale 2: 75.00 %") in note
    assert "marked by the labels: scale 1: 1.10 %, scale 2: 0.58 %" in note
    mean = {"scale": [1.0, 1.5], "areas": {}, "called": {"1": 0.88, "1.5": 0.74, "2": 0.21}}
    (note,) = classifier_notes("Fold 1", ClassifierSummary(0.99, 0.9, 3, 10.0,
                                                           scale_choice=mean).to_json())
    assert note.startswith("Fold 1: the pseudo-labels are drawn from the mean of the maps of the "
                           "input scaled by 1, 1.5 (")
    assert "smallest share" not in note


def test_the_rule_is_no_part_of_a_key_without_candidates(tmp_path) -> None:
    """``cam.scale_rule`` means nothing without ``cam.scale_candidates``: a run folder made
    without candidates is reused whatever the rule (the folder plan sets it on every folder
    run, a config that opts out of candidates included)."""
    base = {"output": str(tmp_path), "device": "cpu"}
    plain = Engine(load_config(TINY_CFG, base), progress=False, log=lambda s: None)
    ruled = Engine(load_config(TINY_CFG, {**base, "cam.scale_rule": "mean"}), progress=False,
                   log=lambda s: None)
    assert plain.ctx.key("cam") == ruled.ctx.key("cam")
    tried = Engine(load_config(TINY_CFG, {**base, "cam.scale_rule": "mean",
                                        "cam.scale_candidates": [1.0, 2.0]}), progress=False,
                   log=lambda s: None)
    assert tried.ctx.key("cam")["cam"]["scale_rule"] == "mean"
