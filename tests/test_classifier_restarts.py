"""``classifier.restarts``: a run whose kept epoch stays below ``min_val_auroc`` on the
validation images is trained again from another seed, in its own folder."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from racam.classifier import restarts
from racam.classifier.train import ClassifierResult
from racam.config import ClassifierConfig


def _fake(monkeypatch: pytest.MonkeyPatch, aurocs: list[float | None]) -> list[tuple[int, Path]]:
    calls: list[tuple[int, Path]] = []

    def train(cfg, train_ds, val_ds, out_dir, *, seed, **kw) -> ClassifierResult:
        auroc = aurocs[len(calls)]
        calls.append((seed, Path(out_dir)))
        hist = [{"epoch": 1, "val_auroc": 0.1}, {"epoch": 2, "val_auroc": auroc}]
        return ClassifierResult(Path(out_dir) / "best.pt", Path(out_dir) / "last.pt", hist, 2)

    monkeypatch.setattr(restarts, "train_classifier", train)
    return calls


def test_a_run_at_chance_is_trained_again_with_another_seed(monkeypatch, tmp_path) -> None:
    calls = _fake(monkeypatch, [0.51, 0.93, 0.99])
    cfg = dataclasses.replace(ClassifierConfig(), restarts=2, min_val_auroc=0.75)
    said: list[str] = []
    res, recs = restarts.train_until_learned(cfg, [], [1], tmp_path, seed=3, log=said.append)
    assert calls == [(3, tmp_path), (1003, tmp_path / "restart1")]  # stops once one passes
    assert res.best_path == tmp_path / "restart1" / "best.pt"
    assert [(r["seed"], r["val_auroc"], r["chosen"]) for r in recs] == [
        (3, 0.51, False), (1003, 0.93, True)]
    assert len(said) == 1 and "0.51 < 0.75" in said[0] and "seed 1003" in said[0]


def test_no_attempt_passes_the_best_is_kept(monkeypatch, tmp_path) -> None:
    calls = _fake(monkeypatch, [0.6, None, 0.7])
    cfg = dataclasses.replace(ClassifierConfig(), restarts=2, min_val_auroc=0.75)
    res, recs = restarts.train_until_learned(cfg, [], [1], tmp_path, seed=0, log=print)
    assert len(calls) == 3 and res.best_path == tmp_path / "restart2" / "best.pt"
    assert [r["chosen"] for r in recs] == [False, False, True]


@pytest.mark.parametrize("n_restarts,val", [(0, [1]), (3, None)])
def test_one_attempt_without_restarts_or_validation_images(monkeypatch, tmp_path, n_restarts,
                                                           val) -> None:
    calls = _fake(monkeypatch, [0.5, 0.9])
    cfg = dataclasses.replace(ClassifierConfig(), restarts=n_restarts)
    res, recs = restarts.train_until_learned(cfg, [], val, tmp_path, seed=0, log=print)
    assert calls == [(0, tmp_path)] and recs[0]["chosen"] and res.best_path.parent == tmp_path


def test_restart_keys_leave_earlier_stage_keys_unchanged() -> None:
    from racam.config import without_later_defaults

    part = dataclasses.asdict(ClassifierConfig())
    assert "restarts" not in without_later_defaults("classifier", part)
    assert "min_val_auroc" not in without_later_defaults("classifier", part)
    assert without_later_defaults("classifier", {**part, "restarts": 2})["restarts"] == 2



def test_the_chosen_attempt_is_read_back(monkeypatch, tmp_path) -> None:
    """``chosen_checkpoint`` finds the chosen attempt's checkpoint from ``result.json``'s
    attempt numbers, also after the run folder moved; without attempts it is ``best.pt``."""
    from racam.io import atomic_write_json

    _fake(monkeypatch, [0.51, 0.93])
    cfg = dataclasses.replace(ClassifierConfig(), restarts=2)
    _, recs = restarts.train_until_learned(cfg, [], [1], tmp_path / "a", seed=0, log=print)
    atomic_write_json(tmp_path / "a" / "result.json", {"checkpoint": "x", "attempts": recs})
    assert restarts.chosen_checkpoint(tmp_path / "a") == tmp_path / "a" / "restart1" / "best.pt"
    (tmp_path / "a").rename(tmp_path / "moved")
    assert restarts.chosen_checkpoint(tmp_path / "moved") == \
        tmp_path / "moved" / "restart1" / "best.pt"
    atomic_write_json(tmp_path / "b" / "result.json", {"checkpoint": "x"})
    assert restarts.chosen_checkpoint(tmp_path / "b") == tmp_path / "b" / "best.pt"
    assert restarts.chosen_checkpoint(tmp_path / "none") == tmp_path / "none" / "best.pt"


def test_candidates_are_all_trained_and_the_lowest_score_is_kept(monkeypatch, tmp_path) -> None:
    """``candidates: 3``: three attempts although the first passes; of the passing ones (the
    second is below the floor and is not scored) the lowest score is chosen."""
    calls = _fake(monkeypatch, [0.9, 0.6, 0.95])
    scores = {tmp_path: 0.02, tmp_path / "restart2": 0.007}
    scored: list[Path] = []

    def score(res: ClassifierResult) -> float:
        scored.append(res.best_path.parent)
        return scores[res.best_path.parent]

    cfg = dataclasses.replace(ClassifierConfig(), candidates=3, restarts=1, min_val_auroc=0.75)
    res, recs = restarts.train_until_learned(cfg, [], [1], tmp_path, seed=5, log=print,
                                             score=score, score_name="pseudo_area")
    assert [s for s, _ in calls] == [5, 1005, 2005]  # no restart: one passed
    assert scored == [tmp_path, tmp_path / "restart2"]
    assert res.best_path == tmp_path / "restart2" / "best.pt"
    assert [(r.get("pseudo_area"), r["chosen"]) for r in recs] == [
        (0.02, False), (None, False), (0.007, True)]


def test_candidates_below_the_floor_are_restarted_and_one_passing_needs_no_score(
        monkeypatch, tmp_path) -> None:
    calls = _fake(monkeypatch, [0.5, 0.6, 0.9, 0.99])

    def score(res: ClassifierResult) -> float:
        raise AssertionError("a single passing attempt is not scored")

    cfg = dataclasses.replace(ClassifierConfig(), candidates=2, restarts=2, min_val_auroc=0.75)
    res, recs = restarts.train_until_learned(cfg, [], [1], tmp_path, seed=0, log=print,
                                             score=score)
    assert len(calls) == 3 and res.best_path == tmp_path / "restart2" / "best.pt"
    assert [r["chosen"] for r in recs] == [False, False, True]


def test_candidates_without_validation_images_are_all_scored(monkeypatch, tmp_path) -> None:
    calls = _fake(monkeypatch, [None, None])
    cfg = dataclasses.replace(ClassifierConfig(), candidates=2, restarts=3)
    res, recs = restarts.train_until_learned(
        cfg, [], None, tmp_path, seed=0, log=print,
        score=lambda r: 0.5 if r.best_path.parent == tmp_path else 0.1)
    assert len(calls) == 2 and res.best_path == tmp_path / "restart1" / "best.pt"
    assert [r["score"] for r in recs] == [0.5, 0.1]
    part = dataclasses.asdict(ClassifierConfig())
    from racam.config import without_later_defaults
    assert "candidates" not in without_later_defaults("classifier", part)
