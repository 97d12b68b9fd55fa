"""Old config files and old run folders (racam.compat): one precision key, the old keys read
into it; a run folder of the earlier result format reused, one of an unreadable format refused
in one line."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest

from racam.compat import FORMAT_VERSION, comparable, translate_config
from racam.config import config_from_dict, load_config
from racam.engine import Engine
from racam.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("section,want", [
    ({"amp": True}, "auto"),  # float16 on CUDA, float32 elsewhere: the old default
    ({"amp": False}, "float32"),
    ({"amp": True, "bf16": True}, "bf16"),  # the CPU recipe (bf16 applied on CPUs)
    ({"amp": False, "bf16": False}, "float32"),
    ({"amp": True, "precision": "fp16"}, "fp16"),  # an explicit precision won
    ({"bf16": True, "precision": "float32"}, "float32"),
])
def test_old_precision_keys_fold_into_precision(section, want) -> None:
    values, old = translate_config({"segmentation": section})
    assert values["segmentation"] == {"precision": want}
    assert old == sorted(f"segmentation.{k}" for k in section if k != "precision")


def test_a_stored_ksdd_cpu_config_loads_with_one_precision_key() -> None:
    """results/ksdd-cpu/config.json was written with amp, bf16 and precision."""
    stored = json.loads((REPO / "results" / "ksdd-cpu" / "config.json").read_text())
    assert stored["segmentation"]["bf16"] is True and "amp" in stored["classifier"]
    cfg = config_from_dict(stored)
    assert cfg.segmentation.precision == "bf16" and cfg.classifier.precision == "auto"
    today = load_config("ksdd-cpu").segmentation  # the recipe today: bf16 where native
    assert today.precision == "bf16_if_native"
    assert cfg.segmentation == dataclasses.replace(today, precision="bf16")


def test_an_old_config_file_gets_one_deprecation_line(tmp_path, capsys) -> None:
    path = tmp_path / "old.yaml"
    path.write_text("classifier:\n  amp: false\nsegmentation:\n  bf16: true\n")
    cfg = load_config(path)
    assert cfg.classifier.precision == "float32" and cfg.segmentation.precision == "bf16"
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(path) in err[0]
    assert "classifier.amp -> classifier.precision; segmentation.bf16 -> segmentation.precision" \
        in err[0]
    with pytest.raises(ConfigError, match="unknown key"):  # a typo is still an error
        load_config(path, {"segmentation.bf61": True})


def test_stored_keys_read_as_todays() -> None:
    now = {"seed": 0, "segmentation": {"epochs": 8, "precision": "bf16"}, "inputs": {"data": "x"}}
    old = {"seed": 0, "segmentation": {"epochs": 8, "amp": True, "bf16": True}}
    assert comparable(old, now) == now
    other = {"seed": 0, "segmentation": {"epochs": 8, "amp": True}}  # float16/float32 run
    assert comparable(other, now) != now
    units = {"seed": 0, "data": {"size": [8, 8], "units": None}}  # retired, did nothing
    assert comparable(units, {"seed": 0})["data"] == {"size": [8, 8]}


def _as_format_one(run: Path) -> None:
    """``run``'s stage results as the earlier racam wrote them: no ``schema``, ``amp`` in the
    classifier and segmentation sections of every key."""
    for path in run.glob("fold*/**/result.json"):
        value = json.loads(path.read_text())
        value.pop("schema")
        for section in ("classifier", "segmentation"):
            if section in value["key"]:
                value["key"][section]["amp"] = True
        path.write_text(json.dumps(value))
    for path in run.glob("fold*/cam/*/*.json"):
        value = json.loads(path.read_text())
        value.pop("schema")
        value["key"]["classifier"]["amp"] = True
        path.write_text(json.dumps(value))


def test_a_run_folder_of_the_earlier_format_is_reused(trained_run, tmp_path) -> None:
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    _as_format_one(run)
    before = json.loads((run / "results.json").read_text())
    cfg = config_from_dict(json.loads((run / "config.json").read_text()))
    engine = Engine(cfg, run, progress=False, log=lambda _: None)
    after = engine.run().to_json()
    assert engine.stages_computed == 0
    for key in ("classifier", "cam_paper", "cam_deployment", "pseudo_labels", "segmentation",
                "intervals"):
        assert json.loads(json.dumps(after[key])) == json.loads(json.dumps(before[key])) or \
            key == "classifier"  # its seconds sum and per-fold summaries, compared below
    assert after["classifier"]["test_auroc_pooled"] == before["classifier"]["test_auroc_pooled"]


def test_a_result_of_an_unknown_format_is_refused_in_one_line(trained_run, tmp_path) -> None:
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    path = run / "fold0" / "classifier" / "result.json"
    value = json.loads(path.read_text())
    assert value["schema"] == FORMAT_VERSION
    path.write_text(json.dumps({**value, "schema": FORMAT_VERSION + 1}))
    cfg = config_from_dict(json.loads((run / "config.json").read_text()))
    def stamps() -> dict[Path, int]:  # the stage results (calls.json lists the refused call)
        return {p: p.stat().st_mtime_ns for p in run.glob("fold*/**/*") if p.is_file()}

    before = stamps()
    with pytest.raises(ConfigError) as err:
        Engine(cfg, run, progress=False, log=lambda _: None).run()
    line = str(err.value)
    assert "\n" not in line and str(path) in line and f"format {FORMAT_VERSION + 1}" in line
    assert stamps() == before


def test_stage_results_read_and_write_their_files_unchanged(trained_run) -> None:
    """Every stored stage result of a run, read as its typed result and written again, gives
    the same JSON text (same fields, same order), and its typed fields hold the file's values."""
    from racam.stages.classifier import ClassifierStageResult
    from racam.stages.heatmaps import CamQualityResult
    from racam.stages.label_next import LabelNextResult
    from racam.stages.pseudo_labels import PseudoLabelResult
    from racam.stages.segmentation import SegmentationStageResult

    kinds = {"classifier": ClassifierStageResult, "cam": CamQualityResult,
             "pseudo": PseudoLabelResult, "segmentation": SegmentationStageResult,
             "label-next": LabelNextResult}
    seen = set()
    for path in trained_run.glob("fold*/*/**/*.json"):
        kind = path.relative_to(trained_run).parts[1]
        if path.name in ("manifest.json", "history.json", "key.json"):
            continue
        stored = json.loads(path.read_text())
        typed = kinds[kind].from_json(stored)
        assert json.dumps(typed.to_json()) == json.dumps(stored), path
        assert typed.key == stored["key"] and typed.seconds == stored["seconds"]
        assert not typed.extra
        seen.add(kind)
    assert seen == set(kinds)
