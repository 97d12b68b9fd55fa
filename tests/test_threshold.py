"""The decision threshold chosen on validation image labels (racam.classifier.threshold),
checked against scikit-learn's F1 over every possible cut."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from helpers import TINY_CFG, racam
from sklearn.metrics import f1_score
from test_segmentation_gate import TINY

from racam.classifier import load_classifier, predict_proba
from racam.classifier.threshold import ThresholdChoice, choose_threshold, f1_at
from racam.config import load_config
from racam.deploy.run_dir import open_run
from racam.engine import Engine


def _best_f1_by_sklearn(labels: np.ndarray, probs: np.ndarray) -> float:
    cuts = np.concatenate([[-1.0], np.unique(probs), [2.0]])
    return max(f1_score(labels, (probs >= t).astype(int), zero_division=0) for t in cuts)


@pytest.mark.parametrize("seed", range(20))
def test_the_chosen_threshold_reaches_the_best_f1_over_all_cuts(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(4, 40))
    labels = rng.integers(0, 2, n)
    labels[:2] = [0, 1]  # both classes
    probs = np.clip(rng.normal(0.3 + 0.3 * labels, 0.2), 0, 1).round(2)  # ties happen
    c = choose_threshold(labels.tolist(), probs.tolist(), fallback=0.5)
    sk = f1_score(labels, (probs >= c.threshold).astype(int))
    assert c.f1 == pytest.approx(sk)
    assert sk == pytest.approx(_best_f1_by_sklearn(labels, probs))
    assert (c.images, c.defective, c.fallback) == (n, int(labels.sum()), False)


def test_a_classifier_that_ranks_well_but_calls_all_good_gets_a_threshold_in_the_gap() -> None:
    """The demo's case: every probability under 0.5, defective ones above the good ones."""
    good, defective = [0.01, 0.02, 0.05, 0.08], [0.15, 0.21]
    c = choose_threshold([0] * 4 + [1] * 2, good + defective, fallback=0.5)
    assert max(good) < c.threshold <= min(defective)
    assert c.threshold == pytest.approx((0.08 + 0.15) / 2) and c.f1 == 1.0
    assert c.f1_fixed == 0.0
    assert f1_at([0] * 4 + [1] * 2, good + defective, 0.5) == 0.0  # the fixed cut calls all good


def test_a_tie_in_f1_takes_the_lower_threshold() -> None:
    # cutting at 0.25 (tp 2, fp 2) and at 0.55 (tp 1, fn 1) both give F1 2/3
    labels, probs = [0, 0, 1, 0, 0, 1], [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]
    assert f1_at(labels, probs, 0.25) == f1_at(labels, probs, 0.55) == pytest.approx(2 / 3)
    c = choose_threshold(labels, probs, fallback=0.5)
    assert c.threshold == pytest.approx(0.25) and c.f1 == pytest.approx(2 / 3)


@pytest.mark.parametrize("labels", [[0, 0, 0], [1, 1]])
def test_one_class_in_the_validation_images_keeps_the_fixed_threshold(labels) -> None:
    c = choose_threshold(labels, [0.2] * len(labels), fallback=0.5)
    assert c == ThresholdChoice(0.5, None, len(labels), sum(labels), fallback=True)
    assert ThresholdChoice.from_json(c.to_json()) == c


def test_lengths_must_match() -> None:
    with pytest.raises(ValueError, match="2 labels for 3"):
        choose_threshold([0, 1], [0.1, 0.2, 0.3], fallback=0.5)


# ------------------------------------------------------------------ in a run, end to end
def test_a_finished_run_switched_to_val_f1_decides_everywhere_at_the_chosen_threshold(
        trained_run, tmp_path) -> None:
    """``classifier.threshold_rule: val_f1`` on the session's finished tiny run (real sample
    images): only the classifier stage is chosen again (its weights are kept), the threshold is
    the best-F1 cut of the kept weights on the fold's validation images, and the gate, the
    report and ``racam predict``'s run folder all use it."""
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    weights = {p: p.stat().st_mtime_ns for p in (run / "fold0").rglob("*.pt")}
    sets = [a for k, v in TINY.items() for a in ("--set", f"{k}={json.dumps(v)}")]
    code, out, err = racam("run", TINY_CFG, "--out", run, "--quiet", *sets,
                           "--set", "classifier.threshold_rule=val_f1",
                           "--set", "segmentation.gate=classifier")
    assert code == 0, err
    assert {p: p.stat().st_mtime_ns for p in (run / "fold0").rglob("*.pt")} == weights

    clf = json.loads((run / "fold0/classifier/result.json").read_text())
    cfg = load_config(TINY_CFG, {**TINY, "output": str(run)})
    val = Engine(cfg, progress=False, log=lambda _: None).data(0).val
    model, _ = load_classifier(clf["checkpoint"])
    probs = predict_proba(model.eval(), val, device="cpu").tolist()
    want = choose_threshold(list(val.labels), probs, fallback=0.5)
    assert not want.fallback and 0 < want.defective < want.images  # the sample's 11 / 2
    assert clf["threshold_choice"]["threshold"] == pytest.approx(want.threshold)
    assert clf["threshold_choice"]["f1"] == pytest.approx(want.f1)
    assert clf["threshold_choice"]["f1_fixed"] == pytest.approx(f1_score(
        list(val.labels), [int(p >= 0.5) for p in probs], zero_division=0))

    t = want.threshold
    g = json.loads((run / "results.json").read_text())["segmentation_gated"]
    assert g["gate_threshold"] == pytest.approx(t)
    assert g["emptied_images"] == sum(p < t for p in clf["test_probs"])
    assert clf["test_accuracy"] == pytest.approx(np.mean(
        [(p >= t) == bool(y) for p, y in zip(clf["test_probs"], clf["test_labels"])]))
    report = (run / "run-report.md").read_text()
    assert f"empty mask where p(defect) < {t:.3g})" in report
    assert f"at p(defect) >= {t:.4g}, the threshold of the best F1" in report
    cam = [json.loads(p.read_text()) for p in (run / "fold0/cam/test").glob("*.json")]
    assert cam and all(c["key"]["decision_threshold"] == pytest.approx(t) for c in cam)
    assert open_run(run).threshold == pytest.approx(t)
    assert open_run(trained_run).threshold == 0.5  # the fixed rule: classifier.threshold


def test_a_run_after_evaluate_switched_the_rule_recomputes_the_stored_heat_maps(
        trained_run, tmp_path) -> None:
    """``racam evaluate --method gradcam`` switches a finished run to ``val_f1`` (the classifier
    chooses its threshold, Grad-CAM's result is written with it); a later ``racam run`` must
    recompute the run's own heat-map result (stored without a threshold) rather than refuse
    it in its up-front check (seen on a KolektorSDD folder run)."""
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    sets = [a for k, v in TINY.items() for a in ("--set", f"{k}={json.dumps(v)}")]
    sets += ["--set", "classifier.threshold_rule=val_f1"]
    stored = {p.name for p in (run / "fold0/cam/test").glob("*.json")}
    assert stored and all("decision_threshold" not in json.loads(p.read_text())["key"]
                          for p in (run / "fold0/cam/test").glob("*.json"))
    code, _, err = racam("evaluate", TINY_CFG, "--out", run, "--quiet", "--method", "gradcam",
                         *sets)
    assert code == 0, err
    code, _, err = racam("run", TINY_CFG, "--out", run, "--quiet", *sets)
    assert code == 0, err
    t = json.loads((run / "fold0/classifier/result.json").read_text())["threshold_choice"]
    cam = {p.name: json.loads(p.read_text()) for p in (run / "fold0/cam/test").glob("*.json")}
    assert set(cam) == stored | {"gradcam.json"}
    assert all(c["key"]["decision_threshold"] == pytest.approx(t["threshold"])
               for c in cam.values())
