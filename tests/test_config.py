"""Configs: built-ins load, overrides apply, typos are errors."""

from __future__ import annotations

import pytest

from racam.errors import ConfigError
from racam.pipeline.config import BUILTIN_CONFIGS, load_config


@pytest.mark.parametrize("name", sorted(p.stem for p in BUILTIN_CONFIGS.glob("*.yaml")))
def test_builtin_configs_load(name: str) -> None:
    cfg = load_config(name)
    assert cfg.name
    assert len(cfg.data.size) == 2
    w, h = cfg.data.size
    assert w % 32 == 0 and h % 32 == 0, "VGG16 pools 5 times: sizes must divide by 32"


def test_expected_builtins_present() -> None:
    names = {p.stem for p in BUILTIN_CONFIGS.glob("*.yaml")}
    assert {"demo", "ksdd-cpu", "ksdd-paper", "ksdd2-paper", "folder-example"} <= names


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
