"""Small pieces of the pipeline: held-out split, stage cache, method keys, atomic writes."""

from __future__ import annotations

import json

import pytest

from racam.errors import ConfigError
from racam.io import atomic_write_json
from racam.pipeline.cache import cached
from racam.pipeline.folds import stratified_holdout
from racam.pipeline.run import method_key


def test_stratified_holdout_is_stratified_seeded_and_disjoint() -> None:
    labels = [1] * 10 + [0] * 90
    keep, held = stratified_holdout(labels, 0.2, seed=3)
    assert sorted(keep + held) == list(range(100))
    assert sum(labels[i] for i in held) == 2 and len(held) == 20
    assert stratified_holdout(labels, 0.2, seed=3) == (keep, held)
    assert stratified_holdout(labels, 0.2, seed=4) != (keep, held)


def test_stratified_holdout_keeps_one_of_each_class() -> None:
    keep, held = stratified_holdout([1, 1, 0, 0, 0], 0.9, seed=0)
    assert {1, 0} <= {[1, 1, 0, 0, 0][i] for i in keep}
    assert {1, 0} <= {[1, 1, 0, 0, 0][i] for i in held}


def test_cached_computes_once(tmp_path) -> None:
    calls = []

    def compute():
        calls.append(1)
        return {"x": 1}

    p = tmp_path / "a" / "r.json"
    assert cached(p, compute) == {"x": 1}
    assert cached(p, compute) == {"x": 1}
    assert len(calls) == 1


def test_cached_failure_leaves_no_result(tmp_path) -> None:
    def boom():
        raise RuntimeError("killed")

    p = tmp_path / "r.json"
    with pytest.raises(RuntimeError):
        cached(p, boom)
    assert not p.exists() and list(tmp_path.iterdir()) == []


def test_atomic_write_json_roundtrip(tmp_path) -> None:
    p = atomic_write_json(tmp_path / "x.json", {"a": [1, 2]})
    assert json.loads(p.read_text()) == {"a": [1, 2]}
    assert [q.name for q in tmp_path.iterdir()] == ["x.json"]


@pytest.mark.parametrize("method,delta,key", [
    ("racam", 50, "racam-d50"), ("layercam+fgbp", 30, "layercam_fgbp-d30"),
    ("gradcam", 50, "gradcam"), ("gradcam++", None, "gradcam__"),
])
def test_method_key(method, delta, key) -> None:
    assert method_key(method, delta) == key


def test_cached_refuses_a_result_of_another_config(tmp_path) -> None:
    from racam.errors import ConfigError

    p = tmp_path / "r.json"
    cached(p, lambda: {"x": 1}, key={"size": (64, 128), "lr": 0.1})
    assert cached(p, lambda: {"x": 2}, key={"size": (64, 128), "lr": 0.1})["x"] == 1
    with pytest.raises(ConfigError, match="different config"):
        cached(p, lambda: {"x": 3}, key={"size": (64, 128), "lr": 0.2})


def test_cached_reuses_results_stored_with_a_retired_key(tmp_path) -> None:
    """``data.units`` did nothing and is gone; results stored with it (null) are still reused."""
    p = tmp_path / "r.json"
    atomic_write_json(p, {"x": 1, "key": {"seed": 0, "data": {"size": [8, 8], "units": None}}})
    assert cached(p, lambda: {"x": 2}, {"seed": 0, "data": {"size": (8, 8)}})["x"] == 1
    with pytest.raises(ConfigError, match="different config"):
        cached(p, lambda: {"x": 2}, {"seed": 1, "data": {"size": (8, 8)}})
