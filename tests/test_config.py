"""Configs: built-ins load, overrides apply, typos are errors."""

from __future__ import annotations

import sys
import time

import pytest
from helpers import TINY_CFG

from racam.config import BUILTIN_CONFIGS, load_config
from racam.errors import ConfigError


@pytest.mark.parametrize("name", sorted(p.stem for p in BUILTIN_CONFIGS.glob("*.yaml")))
def test_builtin_configs_load(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = load_config(name)
    assert capsys.readouterr().err == "", "a built-in config uses a retired or renamed key"
    assert cfg.name
    assert len(cfg.data.size) == 2
    w, h = cfg.data.size
    assert w % 32 == 0 and h % 32 == 0, "VGG16 pools 5 times: sizes must divide by 32"


def test_expected_builtins_present() -> None:
    names = {p.stem for p in BUILTIN_CONFIGS.glob("*.yaml")}
    assert {"demo", "ksdd-cpu", "ksdd-paper", "ksdd-paper-offline", "ksdd2-paper",
            "folder-example"} <= names


def test_overrides_and_size_tuple(tmp_path) -> None:
    p = tmp_path / "c.yaml"
    p.write_text("name: x\ndata:\n  size: [64, 128]\n")
    cfg = load_config(p, {"classifier.epochs": 3, "cam.delta": 70})
    assert cfg.data.size == (64, 128)
    assert cfg.classifier.epochs == 3 and cfg.cam.delta == 70
    assert cfg.to_dict()["data"]["size"] == (64, 128)


def test_unknown_key_is_an_error(tmp_path) -> None:
    p = tmp_path / "c.yaml"
    p.write_text("classifier:\n  epoch: 3\n")
    with pytest.raises(ConfigError, match=r"unknown key.*epoch"):
        load_config(p)


def test_missing_config_names_it() -> None:
    with pytest.raises(ConfigError, match="no-such-config"):
        load_config("no-such-config")


def test_bad_yaml_names_file(tmp_path) -> None:
    p = tmp_path / "bad.yaml"
    p.write_text("data: [unclosed\n")
    with pytest.raises(ConfigError, match="bad.yaml"):
        load_config(p)


@pytest.mark.parametrize("key,value,message", [
    # allowed names
    ("cam.method", "nosuch", r"cam\.method: unknown method 'nosuch'; choose one of .*racam"),
    ("cam.fusion", "median", r"cam\.fusion: unknown fusion 'median'; choose one of max, mean"),
    ("segmentation.loss", "x", r"segmentation\.loss: unknown loss 'x'"),
    ("segmentation.arch", "fpn", r"segmentation\.arch: unknown arch 'fpn'"),
    ("segmentation.optimizer", "adam", r"segmentation\.optimizer: unknown optimizer 'adam'"),
    ("segmentation.schedule", "step", r"segmentation\.schedule: unknown schedule 'step'"),
    ("classifier.balance", "oversample", r"classifier\.balance: unknown balance mode"),
    ("classifier.backbone", "resnet", r"classifier\.backbone: unknown backbone 'resnet'"),
    ("data.dataset", "mvtec", r"data\.dataset: unknown dataset 'mvtec'"),
    ("reproduce.methods", ["racam", "nosuch"], r"reproduce\.methods\[1\]: unknown method"),
    ("reproduce.plugin_methods", ["racam"], r"reproduce\.plugin_methods\[0\]: unknown"),
    ("device", "gpu", r"device: unknown device 'gpu'"),
    ("cam.weighting", "pixel", r"cam\.weighting: unknown weighting 'pixel'; choose one of "
                               r"element, channel"),
    ("cam.fgbp_head", "channel", r"cam\.fgbp_head: unknown FGBP head scope 'channel'; choose "
                                 r"one of sample, unit"),
    ("reproduce.weightings", ["element", "x"], r"reproduce\.weightings\[1\]: unknown weighting"),
    ("reproduce.fgbp_heads", ["unit", "all"], r"reproduce\.fgbp_heads\[1\]: unknown FGBP head"),
    ("reproduce.seeds", [0, -2], r"reproduce\.seeds\[1\]: must be >= 0, got -2"),
    ("reproduce.seeds", 3, r"reproduce\.seeds: expected a list, got 3"),
    ("reproduce.bootstrap_resamples", 10, r"reproduce\.bootstrap_resamples: must be >= 100"),
    # types
    ("classifier.epochs", "abc", r"classifier\.epochs: expected an integer, got 'abc'"),
    ("classifier.epochs", 2.5, r"classifier\.epochs: expected an integer, got 2\.5"),
    ("classifier.lr", "fast", r"classifier\.lr: expected a number, got 'fast'"),
    ("classifier.amp", "yes", r"classifier\.amp: expected true or false, got 'yes'"),
    ("data.folds", 0, r"data\.folds: expected a list, got 0"),
    ("data.size", [128], r"data\.size: expected \[width, height\], got \[128\]"),
    ("cam.layers", "features.3", r"cam\.layers: expected a list"),
    # ranges
    ("classifier.epochs", 0, r"classifier\.epochs: must be >= 1, got 0"),
    ("segmentation.batch_size", 0, r"segmentation\.batch_size: must be >= 1, got 0"),
    ("classifier.lr", 0, r"classifier\.lr: must be > 0, got 0"),
    ("segmentation.lr", "-1e-3", r"segmentation\.lr: must be > 0, got -0\.001"),
    ("data.val_fraction", 1, r"data\.val_fraction: must lie in \[0, 1\), got 1"),
    ("cam.delta", 101, r"cam\.delta: must lie in \[0, 100\], got 101"),
    ("reproduce.deltas", [0, 120], r"reproduce\.deltas\[1\]: must lie in \[0, 100\], got 120"),
    ("data.size", [0, 64], r"data\.size\[0\]: must be >= 1, got 0"),
    ("segmentation.crop", [64, -1], r"segmentation\.crop\[1\]: must be >= 1, got -1"),
    ("segmentation.defect_crop_fraction", 1.5,
     r"segmentation\.defect_crop_fraction: must lie in \[0, 1\], got 1\.5"),
    ("segmentation.output_stride", 32, r"segmentation\.output_stride: unknown output stride 32"),
    ("seed", -1, r"seed: must be >= 0, got -1"),
    ("data.channels", 2, r"data\.channels: unknown channel count 2"),
    ("segmentation.train_masks", 0, r"segmentation\.train_masks: expected none, all or a "
     r"number of images >= 1, got '0'"),
    ("segmentation.train_masks", "some", r"segmentation\.train_masks: expected none, all"),
    ("segmentation.train_masks_choice", "best",
     r"segmentation\.train_masks_choice: unknown train_masks choice 'best'; choose one "
     r"of random, ranked, typical \("),
    # rules between keys
    ("classifier.backbone", "efficientnet_lite0",
     r"classifier\.batch_norm: applies to the vgg16, vgg16_narrow backbones, not "
     r"'efficientnet_lite0'"),
])
def test_bad_value_names_its_key(key: str, value, message: str) -> None:
    with pytest.raises(ConfigError, match="^" + message):
        load_config(TINY_CFG, {key: value})


def test_numbers_given_as_strings_are_converted() -> None:
    cfg = load_config(TINY_CFG, {"classifier.lr": "1e-3", "classifier.epochs": "5",
                               "segmentation.crop": ["64", 96], "cam.delta": "30"})
    assert cfg.classifier.lr == 0.001 and isinstance(cfg.classifier.lr, float)
    assert cfg.classifier.epochs == 5 and isinstance(cfg.classifier.epochs, int)
    assert cfg.segmentation.crop == (64, 96)
    assert cfg.cam.delta == 30.0


def test_numbers_are_kept_as_written() -> None:
    """An int for a float key stays an int: stage keys and manifests are unchanged."""
    cfg = load_config(TINY_CFG)
    assert cfg.cam.delta == 50 and isinstance(cfg.cam.delta, int)
    assert cfg.to_dict()["reproduce"]["deltas"] == [0, 30, 50, 70, 90]


def test_dead_keys_are_gone() -> None:
    for key in ("data.units", "reproduce.max_train_images_for_delta"):
        with pytest.raises(ConfigError, match="unknown key"):
            load_config(TINY_CFG, {key: None})


def test_configs_built_in_code_are_checked_too() -> None:
    from racam.classifier import train_classifier
    from racam.config import ClassifierConfig, check_config

    bad = ClassifierConfig(balance="oversample")
    with pytest.raises(ConfigError, match=r"^classifier\.balance: unknown balance mode"):
        check_config(bad, "classifier")
    with pytest.raises(ConfigError, match=r"^classifier\.balance"):
        train_classifier(bad, [], None, "unused", seed=0)
    fine = ClassifierConfig()
    assert check_config(fine, "classifier") is fine


def test_bad_value_fails_at_once_on_the_command_line(monkeypatch, capsys, tmp_path) -> None:
    """`racam run demo --set cam.method=nosuch`: one line naming the key, exit 2, no stage."""
    import racam.cam  # noqa: F401  # imported once per process; not part of the check's time
    from racam.cli import main

    out = tmp_path / "out"
    monkeypatch.setattr(sys, "argv", ["racam", "run", TINY_CFG, "--set", "cam.method=nosuch",
                                      "--out", str(out)])
    t0 = time.perf_counter()
    with pytest.raises(SystemExit) as exc:
        main()
    seconds = time.perf_counter() - t0
    assert exc.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: cam.method: unknown method 'nosuch'")
    assert seconds < 1.0 and not out.exists()


def test_new_cam_and_reproduce_options_default_to_todays_behaviour() -> None:
    cfg = load_config(TINY_CFG)
    assert (cfg.cam.weighting, cfg.cam.fgbp_head) == ("element", "sample")
    assert cfg.reproduce.seeds == [0]
    for name in ("ksdd-cpu", "ksdd-paper"):
        assert load_config(name).reproduce.seeds == [0, 1, 2], name
    cfg = load_config(TINY_CFG, {"cam.weighting": "channel", "cam.fgbp_head": "unit",
                               "reproduce.seeds": ["1", 2]})
    assert (cfg.cam.weighting, cfg.cam.fgbp_head, cfg.reproduce.seeds) == ("channel", "unit",
                                                                           [1, 2])


def test_offline_paper_config_differs_from_ksdd_paper_in_the_classifier_only() -> None:
    """ksdd-paper-offline = ksdd-paper with a from-scratch VGG16-BN (with a warm-up) instead of
    the downloaded ImageNet VGG16; every other section is the same."""
    paper = load_config("ksdd-paper").to_dict()
    offline = load_config("ksdd-paper-offline").to_dict()
    for section in ("data", "cam", "segmentation", "reproduce", "seed", "device"):
        assert offline[section] == paper[section], section
    diff = {k: (paper["classifier"][k], v) for k, v in offline["classifier"].items()
            if paper["classifier"][k] != v}
    assert diff == {"batch_norm": (False, True), "weights": ("imagenet", None),
                    "lr": (0.001, 0.01), "warmup_epochs": (0.0, 2.0)}
    assert offline["classifier"]["backbone"] == "vgg16"


def test_load_run_config_loads_as_the_command_line_does(tmp_path) -> None:
    """``racam.engine.load_run_config``: ``KEY=VALUE`` strings parsed as YAML, ``output``
    replaced; the same config as :func:`load_config` with the values already parsed."""
    from racam.engine import load_run_config, parse_overrides

    sets = ["classifier.epochs=2", "data.folds=[0, 1]", "cam.delta=70", "name=x=y"]
    assert parse_overrides(sets) == {"classifier.epochs": 2, "data.folds": [0, 1],
                                     "cam.delta": 70, "name": "x=y"}
    cfg = load_run_config("ksdd-cpu", sets, tmp_path / "out")
    expected = load_config("ksdd-cpu", {"classifier.epochs": 2, "data.folds": [0, 1],
                                        "cam.delta": 70, "name": "x=y",
                                        "output": str(tmp_path / "out")})
    assert cfg == expected and cfg.classifier.epochs == 2 and cfg.output == str(tmp_path / "out")
    assert load_run_config("ksdd-cpu") == load_config("ksdd-cpu")
    with pytest.raises(ConfigError, match="--set 'classifier.epochs': expected KEY=VALUE"):
        load_run_config("ksdd-cpu", ["classifier.epochs"])
