"""racam.plan: a folder dataset's fingerprint from real image files, the plan's rules checked
against values worked out by hand, explicit config values winning over the plan, and the CLI
(`racam data info` prints the plan)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import yaml
from PIL import Image
from typer.testing import CliRunner

from racam.cli import app
from racam.config import load_config
from racam.engine import load_planned_config
from racam.errors import ConfigError, DataError
from racam.plan.apply import explicit_keys
from racam.plan.fingerprint import Fingerprint, from_folder
from racam.plan.rules import RECIPE, plan_for


def _save(path, size, mode) -> None:
    """A real image file of ``size = (width, height)`` in ``mode`` (L, RGB or I;16)."""
    w, h = size
    rng = np.random.default_rng(len(str(path)))
    if mode == "I;16":
        arr = rng.integers(0, 65535, (h, w)).astype(np.uint16)
    elif mode == "RGB":
        arr = rng.integers(0, 255, (h, w, 3)).astype(np.uint8)
    else:
        arr = rng.integers(0, 255, (h, w)).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)


def _folder(root, n_good: int, n_defect: int, size=(64, 64), mode="L"):
    for cls, n in (("good", n_good), ("defect", n_defect)):
        for i in range(n):
            _save(root / cls / f"{cls}{i}.png", size, mode)
    return root


def test_fingerprint_of_known_images(tmp_path) -> None:
    root = tmp_path / "imgs"
    for i in range(3):
        _save(root / "good" / f"g{i}.png", (100, 50), "L")
    _save(root / "good" / "g3.png", (200, 100), "RGB")
    _save(root / "defect" / "d0.png", (60, 30), "I;16")
    _save(root / "defect" / "d1.png", (60, 30), "I;16")
    (root / "defect" / "broken.png").write_bytes(b"not an image")
    _save(root / "masks" / "d0.png", (60, 30), "L")
    _save(root / "masks" / "orphan.png", (60, 30), "L")  # no image with this stem
    fp = from_folder(root)
    assert (fp.good, fp.defect, fp.images) == (4, 2, 6)
    # widths 100 100 100 200 60 60 -> median 100; heights 50 50 50 100 30 30 -> median 50
    assert fp.median_size == (100, 50) and fp.median_long_side == 100
    assert fp.min_size == (60, 30) and fp.max_size == (200, 100) and fp.distinct_sizes == 3
    assert fp.median_aspect == fp.min_aspect == fp.max_aspect == 2.0
    assert dict(fp.modes) == {"L": 3, "RGB": 1, "I;16": 2} and not fp.gray
    assert dict(fp.bit_depths) == {8: 4, 16: 2}
    assert fp.has_masks and fp.masks == 1
    assert fp.unreadable == (str(root / "defect" / "broken.png"),)
    assert fp.defect_share == pytest.approx(2 / 6) and fp.imbalance == 2.0


def test_fingerprint_names_a_missing_class_folder(tmp_path) -> None:
    _save(tmp_path / "good" / "a.png", (8, 8), "L")
    with pytest.raises(DataError, match="defect"):
        from_folder(tmp_path)


def _fp(good: int, defect: int, size: tuple[int, int], modes=(("L", 1),)) -> Fingerprint:
    """A fingerprint of ``good + defect`` images all of ``size``."""
    w, h = size
    return Fingerprint(root="x", good=good, defect=defect, has_masks=False, masks=0,
                       median_size=(w, h), min_size=size, max_size=size, distinct_sizes=1,
                       median_long_side=max(w, h), median_aspect=w / h, min_aspect=w / h,
                       max_aspect=w / h, modes=modes, bit_depths=((8, good + defect),))


def _values(plan) -> tuple:
    return (plan.size, plan.channels, plan.crop, plan.classifier_batch,
            plan.classifier_samples_per_epoch, plan.segmentation_batch,
            plan.segmentation_samples_per_epoch)


def test_plan_of_wide_line_scan_images() -> None:
    plan = plan_for(_fp(300, 100, (4096, 512)))
    # aspect 8 capped at 704 / 128 = 5.5: long side 704, short 704 / 5.5 = 128.
    # good: 300 - 90 test = 210, - round(31.5) = 32 validation = 178; defect: 70, - 10 = 60.
    # classifier batch: 8*256*704 // (704*128) = 16; draws 2 * 178 = 356 -> 23 batches = 368.
    # crop 256 x 128; its batch 8*256*256 // (256*128) = 16; 48 batches = 768 crops.
    assert _values(plan) == ((704, 128), 1, (256, 128), 16, 368, 16, 768)
    assert "capped" in plan.reasons["data.size"] and "bounded" in plan.reasons["data.size"]


def test_plan_of_small_square_colour_images() -> None:
    plan = plan_for(_fp(40, 40, (64, 64), modes=(("RGB", 80),)))
    # 64 px enlarged to the 128 px short side. Per class: 40 - 12 test = 28, - 4 = 24.
    # classifier batch 8*256*704 // 128**2 = 88, capped at a quarter of 48 fit images = 12;
    # draws max(2 * 24, 96) = 96. Crop = the whole 128 x 128 image; its batch
    # 8*256*256 // 128**2 = 32, capped at 56 training images // 4 = 14; 48 * 14 = 672.
    assert _values(plan) == ((128, 128), 3, (128, 128), 12, 96, 14, 672)
    assert "enlarged" in plan.reasons["data.size"]
    assert plan.classifier_epochs == 15 and plan.segmentation_epochs == 8


def test_plan_of_tiny_counts() -> None:
    plan = plan_for(_fp(6, 3, (300, 200)))
    # 300 / 32 = 9.4 -> 288, 200 / 32 = 6.25 -> 192 (no bound hit). good: 6 - 2 - 1 = 3;
    # defect: 3 - 1 = 2, - 1 (at least one held out) = 1. Batches: a quarter of 4 fit / 6
    # training images is 1, raised to the minimum 2; draws 96; crop 256 x 192.
    assert _values(plan) == ((288, 192), 1, (256, 192), 2, 96, 2, 96)
    assert sum("only 6 defect-free" in n for n in plan.notes) == 1
    assert sum("only 3 defective" in n for n in plan.notes) == 1


def test_few_defective_validation_images_are_named() -> None:
    """Worked by hand: 14 defective images (the demo's sample) -> 4 to the test split (30 %),
    10 train, 2 held for validation (15 %); 100 -> 30, 70, 11."""
    few = [n for n in plan_for(_fp(82, 14, (250, 629))).notes if "validation" in n]
    assert len(few) == 1 and few[0].startswith("only 2 defective validation image(s)")
    assert not any("validation" in n for n in plan_for(_fp(300, 100, (250, 629))).notes)


def test_the_demo_samples_validation_split_holds_the_planned_count(monkeypatch, tmp_path
                                                                 ) -> None:
    """The plan's estimate for the demo's sample against the folds its run really builds (its
    split.yaml): 2 defective validation images of 11."""
    monkeypatch.setenv("RACAM_CACHE", str(tmp_path))
    from racam.data.registry import resolve_root
    from racam.plan.rules import split_counts
    from racam.stages.folds import fold_datasets

    cfg = load_config("demo")
    val = fold_datasets(cfg.data, 0, cfg.seed).val
    assert (len(val.labels), int(sum(val.labels))) == (11, 2)
    counts = split_counts(from_folder(resolve_root("folder", cfg.data.root)), 0.3, 0.15)
    assert counts.train[1] - counts.fit[1] == int(sum(val.labels))


def test_plan_of_imbalanced_classes() -> None:
    plan = plan_for(_fp(1000, 20, (1024, 768), modes=(("RGB", 1020),)))
    # 1024 x 768 -> long 704, short 704 / (4/3) = 528 -> 544. good: 700 train, 595 fit;
    # defect: 14 train, 12 fit. Classifier batch 8*256*704 // (704*544) = 3; draws
    # 2 * 595 = 1190 capped at 1024, in whole batches 342 * 3 = 1026. Crops 256 x 256 of 8.
    assert _values(plan) == ((704, 544), 3, (256, 256), 3, 1026, 8, 384)
    assert any("imbalanced" in n for n in plan.notes)


def test_a_size_the_user_set_is_kept_and_the_batches_follow_it() -> None:
    plan = plan_for(_fp(300, 100, (4096, 512)), size=(64, 32))
    # crop = the whole 64 x 32 input; classifier batch 1441792 // 2048 = 704 -> 32
    assert (plan.size, plan.crop, plan.classifier_batch, plan.segmentation_batch) == \
        ((64, 32), (64, 32), 32, 32)


def test_every_planned_value_has_a_reason() -> None:
    settings = plan_for(_fp(50, 50, (640, 480))).settings()
    assert len({s.key for s in settings}) == len(settings) == 9 + len(RECIPE)
    assert all(s.reason and "\n" not in s.reason for s in settings)


def test_explicit_keys_are_the_keys_present() -> None:
    values = {"seed": 1, "data": {"root": "r", "size": None}, "segmentation": {"epochs": 2}}
    assert explicit_keys(values) == {"seed", "data.root", "data.size", "segmentation.epochs"}


def test_explicit_values_win_over_the_plan(tmp_path) -> None:
    root = _folder(tmp_path / "imgs", 12, 12)
    cfg, planned = load_planned_config("folder-example", [f"data.root={root}",
                                                   "classifier.batch_size=5",
                                                   "segmentation.samples_per_epoch=null"])
    assert planned is not None
    plan = planned.plan
    assert cfg.classifier.batch_size == 5 != plan.classifier_batch
    assert cfg.segmentation.samples_per_epoch is None
    assert cfg.data.size == plan.size == (128, 128) and cfg.segmentation.crop == (128, 128)
    assert cfg.classifier.samples_per_epoch == plan.classifier_samples_per_epoch
    assert cfg.classifier.backbone == "efficientnet_lite0" and cfg.data.channels == 1
    taken = {s.key: t for s, t in planned.choices()}
    assert not taken["classifier.batch_size"] and taken["data.size"]
    assert not taken["segmentation.loss"]  # folder-example.yaml sets the recipe itself
    # the user's own YAML: its keys win too, and a size it sets drives the crop
    own = tmp_path / "mine.yaml"
    own.write_text(yaml.safe_dump({"data": {"dataset": "folder", "root": str(root),
                                            "plan": "auto", "size": [96, 64]},
                                   "segmentation": {"epochs": 3}}))
    cfg, planned = load_planned_config(str(own))
    assert planned is not None
    assert cfg.data.size == (96, 64) and cfg.segmentation.crop == (96, 64)
    assert cfg.segmentation.epochs == 3 and cfg.classifier.epochs == 15
    assert cfg.segmentation.loss == "ce+dice_defect"  # from the plan's recipe
    # ... and so are the pseudo-label rule and the gate folder-example sets (the defaults of a
    # bare config are max fusion, Otsu and no gate)
    assert (cfg.cam.fusion, cfg.cam.pseudo_threshold, cfg.segmentation.gate,
            cfg.classifier.threshold_rule) == ("mean", "otsu2", "classifier", "val_f1")
    bare = load_config(str(own))
    assert (bare.cam.fusion, bare.cam.pseudo_threshold, bare.segmentation.gate,
            bare.classifier.threshold_rule) == ("max", "otsu", "none", "fixed")


def test_plan_off_leaves_the_config_alone(tmp_path) -> None:
    root = _folder(tmp_path / "imgs", 4, 4)
    cfg, planned = load_planned_config("folder-example", [f"data.root={root}", "data.plan=off"])
    assert planned is None and cfg.data.plan == "off"
    assert cfg.segmentation.crop is None and cfg.classifier.samples_per_epoch is None


def test_plan_auto_is_for_folder_datasets_only() -> None:
    with pytest.raises(ConfigError, match="data.plan"):
        load_planned_config("ksdd-cpu", ["data.plan=auto"])
    with pytest.raises(ConfigError, match="data.plan"):
        load_planned_config("ksdd-cpu", ["data.plan=sometimes"])


def test_data_info_prints_fingerprint_and_plan(tmp_path) -> None:
    root = _folder(tmp_path / "imgs", 12, 12, size=(400, 200))
    res = CliRunner().invoke(app, ["data", "info", str(root), "--dataset", "folder"])
    assert res.exit_code == 0, res.output
    assert "images: 12 good, 12 defective" in res.output
    assert "median 400x200" in res.output
    # 400 x 200 within the bounds; 400 / 32 = 12.5 -> 13 * 32 = 416, 200 / 32 = 6.25 -> 192
    assert "Plan: data.size = 416x192 because median image 400x200" in res.output
    assert "Plan: segmentation.crop = 256x192 because" in res.output
    plan = plan_for(from_folder(root))
    for s in plan.settings():
        assert f"Plan: {s.key} = " in res.output


def test_plan_record_round_trips_for_the_report(tmp_path) -> None:
    from racam.plan.record import read_plan, write_plan
    from racam.plan.report import run_report_lines

    root = _folder(tmp_path / "imgs", 6, 6)
    _, planned = load_planned_config("folder-example", [f"data.root={root}",
                                                 "classifier.epochs=2"])
    assert planned is not None
    write_plan(tmp_path / "run", planned)
    record = read_plan(tmp_path / "run")
    assert record is not None and record["fingerprint"]["good"] == 6
    lines = run_report_lines(tmp_path / "run")
    assert "Plan: classifier.epochs = 2 as your config sets it (the plan's 15 because" \
        in "\n".join(lines)
    assert any(line.startswith("Plan: data.size = 128x128 because") for line in lines)
    assert any(line.startswith("Plan: cam.good_prior = false because") for line in lines)
    assert run_report_lines(tmp_path / "nothing") == []
    assert dataclasses.is_dataclass(planned.fingerprint)


def test_a_refused_run_writes_no_plan(tmp_path) -> None:
    root = _folder(tmp_path / "imgs", 6, 6)
    out = tmp_path / "run"
    stored = out / "fold0" / "classifier" / "result.json"
    stored.parent.mkdir(parents=True)
    stored.write_text('{"key": {"seed": 99}}')  # computed under another config
    res = CliRunner().invoke(app, ["run", "folder-example", "--quiet", "--out", str(out),
                                   "--set", f"data.root={root}", "--set", "device=cpu"])
    assert isinstance(res.exception, ConfigError) and "different config" in str(res.exception)
    assert sorted(p.name for p in out.iterdir()) == ["fold0"]
