"""Small pieces of the pipeline: held-out split, stage cache, method keys, atomic writes."""

from __future__ import annotations

import json

import pytest

from racam.cam.registry import method_key
from racam.compat import FORMAT_VERSION
from racam.errors import ConfigError
from racam.io import atomic_write_json, read_json
from racam.stages.cache import cached
from racam.stages.folds import stratified_holdout


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
    stored = {"x": 1, "schema": FORMAT_VERSION}  # the result format, written last
    assert cached(p, compute) == stored
    assert cached(p, compute) == stored
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


def test_cached_recomputes_a_result_whose_recomputable_entry_changed(tmp_path) -> None:
    """``recompute`` names top-level key entries whose change replaces the stored result (racam's
    own file) instead of refusing it; any other difference still refuses."""
    p = tmp_path / "r.json"
    cached(p, lambda: {"x": 1}, key={"seed": 0, "cam": {"scales": [1.0]}}, recompute=("cam",))
    again = cached(p, lambda: {"x": 2}, key={"seed": 0, "cam": {"scales": [1.0, 2.0]}},
                   recompute=("cam",))
    assert again["x"] == 2 and read_json(p)["key"]["cam"] == {"scales": [1.0, 2.0]}
    assert cached(p, lambda: {"x": 3}, key={"seed": 0, "cam": {"scales": [1.0, 2.0]}},
                  recompute=("cam",))["x"] == 2  # the same key: reused
    with pytest.raises(ConfigError, match="seed: 0 stored, 1 now"):
        cached(p, lambda: {"x": 4}, key={"seed": 1, "cam": {"scales": [2.0]}},
               recompute=("cam",))
    with pytest.raises(ConfigError, match="cam.scales"):  # not recomputable here
        cached(p, lambda: {"x": 5}, key={"seed": 0, "cam": {"scales": [2.0]}})
    assert read_json(p)["x"] == 2


def test_cached_reuses_results_stored_with_a_retired_key(tmp_path) -> None:
    """``data.units`` did nothing and is gone; results stored with it (null) are still reused."""
    p = tmp_path / "r.json"
    atomic_write_json(p, {"x": 1, "key": {"seed": 0, "data": {"size": [8, 8], "units": None}}})
    assert cached(p, lambda: {"x": 2}, {"seed": 0, "data": {"size": (8, 8)}})["x"] == 1
    with pytest.raises(ConfigError, match="different config"):
        cached(p, lambda: {"x": 2}, {"seed": 1, "data": {"size": (8, 8)}})


def test_cached_reuses_results_stored_with_a_later_default_at_its_earlier_value(tmp_path) -> None:
    """Keys leave out a later-added config key at its earlier-behaviour value
    (``racam.config.LATER_DEFAULTS``); a result stored while that key was written out (e.g.
    ``segmentation.defect_crop_fraction: 0.5``) matches, and any other value still refuses."""
    p = tmp_path / "r.json"
    atomic_write_json(p, {"x": 1, "key": {"seed": 0, "segmentation": {
        "epochs": 8, "defect_crop_fraction": 0.5, "bf16": False}}})
    assert cached(p, lambda: {"x": 2}, {"seed": 0, "segmentation": {"epochs": 8}})["x"] == 1
    atomic_write_json(p, {"x": 1, "key": {"seed": 0, "segmentation": {
        "epochs": 8, "defect_crop_fraction": 0.25}}})
    with pytest.raises(ConfigError, match="defect_crop_fraction"):
        cached(p, lambda: {"x": 2}, {"seed": 0, "segmentation": {"epochs": 8}})


@pytest.mark.parametrize("method,opts,key", [
    ("racam", {"weighting": "channel"}, "racam-wchannel-d50"),
    ("racam", {"weighting": "element", "fgbp_head": "sample"}, "racam-d50"),
    ("racam", {"weighting": "channel", "fgbp_head": "unit"}, "racam-wchannel-hunit-d50"),
    ("layercam+fgbp", {"weighting": "channel", "fgbp_head": "unit"}, "layercam_fgbp-hunit-d50"),
    ("gradcam", {"weighting": "channel", "fgbp_head": "unit"}, "gradcam"),
])
def test_method_key_names_only_options_that_apply_and_differ(method, opts, key) -> None:
    assert method_key(method, 50, **opts) == key


def test_cached_recomputes_a_result_without_a_required_field(tmp_path) -> None:
    p = tmp_path / "r.json"
    atomic_write_json(p, {"x": 1, "key": {"seed": 0}})  # written before "per_image" existed
    assert cached(p, lambda: {"x": 2}, {"seed": 0})["x"] == 1
    assert cached(p, lambda: {"x": 3, "per_image": {}}, {"seed": 0}, require=("per_image",)) \
        == {"x": 3, "per_image": {}, "key": {"seed": 0}, "schema": FORMAT_VERSION}
    assert json.loads(p.read_text())["x"] == 3
    assert cached(p, lambda: {"x": 4, "per_image": {}}, {"seed": 0},
                  require=("per_image",))["x"] == 3
    with pytest.raises(ConfigError, match="different config"):  # a key mismatch still refuses
        cached(p, lambda: {"x": 5}, {"seed": 1}, require=("per_image",))


def _captured_stage_keys(tmp_path, monkeypatch, **cam) -> dict[str, tuple]:
    """(path, key, require) that each stage would pass to ``cached``, without computing."""
    import dataclasses

    from racam.config import RunConfig
    from racam.engine import Engine
    from racam.stages.context import StageContext

    cfg = RunConfig(output=str(tmp_path), device="cpu")
    cfg = dataclasses.replace(cfg, cam=dataclasses.replace(cfg.cam, **cam))
    seen: dict[str, tuple] = {}

    def fake_stage(self, cls, label, path, compute, key, require=(), recompute=()):
        seen[str(path.relative_to(tmp_path))] = (json.loads(json.dumps(key, default=str)),
                                                 tuple(require))

    monkeypatch.setattr(StageContext, "stage", fake_stage)
    # the image and checkpoint digests need data and a classifier; these tests are about config
    monkeypatch.setattr(StageContext, "inputs", lambda self, fold, checkpoint=None: {})
    engine = Engine(cfg, tmp_path, progress=False, log=lambda s: None)
    for m in ("gradcam", "layercam+fgbp", "racam"):
        engine.cam_quality(0, m, 50, "test", per_image=True)
    engine.cam_quality(0, "racam", 30, "train")
    engine.pseudo.run(0)
    return seen


def test_stage_keys_carry_the_new_options_only_where_they_matter(tmp_path, monkeypatch) -> None:
    base = _captured_stage_keys(tmp_path / "a", monkeypatch)
    chan = _captured_stage_keys(tmp_path / "b", monkeypatch, weighting="channel")
    unit = _captured_stage_keys(tmp_path / "c", monkeypatch, fgbp_head="unit")
    # defaults: the paths and keys of results stored before the options existed
    assert set(base) == {"fold0/cam/test/gradcam.json", "fold0/cam/test/layercam_fgbp-d50.json",
                         "fold0/cam/test/racam-d50.json", "fold0/cam/train/racam-d30.json",
                         "fold0/pseudo/racam-d50/result.json"}
    for key, _ in base.values():
        assert "weighting" not in json.dumps(key) and "fgbp_head" not in json.dumps(key)
    assert set(base["fold0/pseudo/racam-d50/result.json"][0]["cam"]) == {  # as before
        "method", "delta", "fusion", "layers"}
    assert base["fold0/cam/test/racam-d50.json"][1] == ("paper_per_image",)
    assert base["fold0/cam/train/racam-d30.json"][1] == ()
    # the channel reading: only RA-CAM's results move (new files, keyed on it)
    assert chan["fold0/cam/test/gradcam.json"] == base["fold0/cam/test/gradcam.json"]
    assert chan["fold0/cam/test/layercam_fgbp-d50.json"] == \
        base["fold0/cam/test/layercam_fgbp-d50.json"]
    assert chan["fold0/cam/test/racam-wchannel-d50.json"][0]["weighting"] == "channel"
    assert chan["fold0/pseudo/racam-wchannel-d50/result.json"][0]["cam"]["weighting"] == \
        "channel"
    # FGBP's head scope: RA-CAM and the +fgbp plug-ins move, plain methods do not
    assert unit["fold0/cam/test/gradcam.json"] == base["fold0/cam/test/gradcam.json"]
    assert unit["fold0/cam/test/layercam_fgbp-hunit-d50.json"][0]["fgbp_head"] == "unit"
    assert unit["fold0/cam/test/racam-hunit-d50.json"][0]["fgbp_head"] == "unit"


def test_pseudo_label_key_of_another_method_ignores_racam_options(tmp_path, monkeypatch) -> None:
    a = _captured_stage_keys(tmp_path / "a", monkeypatch, method="gradcam")
    b = _captured_stage_keys(tmp_path / "b", monkeypatch, method="gradcam", weighting="channel",
                             fgbp_head="unit")
    assert a["fold0/pseudo/gradcam/result.json"] == b["fold0/pseudo/gradcam/result.json"]


def test_per_image_counts_keep_every_image() -> None:
    from racam.evaluation.metrics import Counts
    from racam.stages.heatmaps import per_image_counts

    got = per_image_counts([("a", Counts(1, 2, 3, 4)), ("b", Counts(0, 0, 1, 9)),
                            ("a", Counts(5, 0, 0, 1))])
    assert got == {"a": [1, 2, 3, 4], "b": [0, 0, 1, 9], "a#1": [5, 0, 0, 1]}


def test_later_keys_enter_stage_keys_only_away_from_their_earlier_value() -> None:
    from racam.compat import without_added as without_later_defaults

    seg = {"lr": 0.01, "optimizer": "sgd", "crop": None, "precision": "auto"}
    assert without_later_defaults("segmentation", seg) == {"lr": 0.01}  # earlier runs' key
    recipe = {"lr": 0.001, "optimizer": "adamw", "crop": [256, 256], "precision": "bf16"}
    assert without_later_defaults("segmentation", recipe) == recipe
    assert without_later_defaults("cam", {"delta": 10, "pseudo_threshold": "otsu"}) == \
        {"delta": 10}
    assert without_later_defaults("cam", {"pseudo_threshold": "otsu2"}) == \
        {"pseudo_threshold": "otsu2"}
    assert without_later_defaults("data", {"size": [1, 2]}) == {"size": [1, 2]}
