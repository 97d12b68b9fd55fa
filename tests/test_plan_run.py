"""The README's folder line, `racam run folder-example --set data.root=ROOT`, plans the run from
the images and writes plan.json (one epoch per network: about a minute on one CPU thread)."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image
from typer.testing import CliRunner

from racam.cli import app


def test_folder_example_run_uses_and_writes_its_plan(tmp_path) -> None:
    root, rng = tmp_path / "imgs", np.random.default_rng(0)
    for cls in ("good", "defect"):
        (root / cls).mkdir(parents=True)
        for i in range(12):
            img = rng.normal(128, 20, (48, 80))  # 80 x 48 (width x height)
            if cls == "defect":
                r = int(rng.integers(8, 38))
                img[r:r + 3, 8:72] = 20  # a dark scratch
            Image.fromarray(img.clip(0, 255).astype(np.uint8)).save(root / cls / f"{cls}{i}.png")
    out = tmp_path / "run"
    res = CliRunner().invoke(app, ["run", "folder-example", "--quiet", "--out", str(out),
                                   "--set", f"data.root={root}", "--set", "classifier.epochs=1",
                                   "--set", "segmentation.epochs=1", "--set", "device=cpu"],
                             catch_exceptions=False)
    assert res.exit_code == 0, res.output
    plan = json.loads((out / "plan.json").read_text())
    config = json.loads((out / "config.json").read_text())
    assert plan["fingerprint"]["median_size"] == [80, 48] and plan["fingerprint"]["good"] == 12
    by_key = {s["key"]: s for s in plan["settings"]}
    # 80 x 48: short side enlarged to 128, long 128 * 5 / 3 = 213.3 -> 224 (7 strides)
    assert by_key["data.size"]["value"] == by_key["data.size"]["used"] == [224, 128]
    assert config["data"]["size"] == [224, 128] and config["segmentation"]["crop"] == [224, 128]
    assert not by_key["classifier.epochs"]["taken"] and by_key["classifier.epochs"]["used"] == 1
    assert config["classifier"]["samples_per_epoch"] == by_key[
        "classifier.samples_per_epoch"]["value"]
    assert config["classifier"]["backbone"] == "efficientnet_lite0"
    assert config["segmentation"]["encoder"] == "efficientnet_lite0"
    seg = "unet-racam-d50-sm1_1.5_2-otsu2-tmall-restignore"  # the plan's recipe names it
    assert (out / "fold0/segmentation" / seg / "last.pt").is_file()
    # the run report states the fingerprint and each planned key, in plan.json's words
    section = (out / "run-report.md").read_text().split("## Plan\n", 1)[1].split("\n## ", 1)[0]
    assert f"Fingerprint of {root}:" in section and "12 good, 12 defective" in section
    size, epochs = by_key["data.size"], by_key["classifier.epochs"]
    assert f"Plan: data.size = 224x128 because {size['reason']}\n" in section
    assert (f"Plan: classifier.epochs = 1 as your config sets it (the plan's {epochs['value']} "
            f"because {epochs['reason']})\n") in section
    assert sum(line.startswith("Plan: ") for line in section.splitlines()) == len(by_key)
    # a later run in the same folder with data.plan: off does not show the earlier plan.json
    import dataclasses

    from racam.config import config_from_dict
    from racam.report.run_report import plan_section

    cfg = config_from_dict(config)
    assert plan_section(cfg, out)[0] == "## Plan"
    off = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, plan="off"))
    assert plan_section(off, out) == [] and (out / "plan.json").is_file()
