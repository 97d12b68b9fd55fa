"""``--quiet``: every pipeline and stage command takes it, and it silences the progress bars."""

from __future__ import annotations

import shutil

import pytest
from helpers import TINY_CFG
from typer.testing import CliRunner

from racam.cli import app

runner = CliRunner()


@pytest.mark.parametrize("command", ["run", "demo", "reproduce", "train-classifier",
                                     "pseudo-labels", "train-seg", "evaluate", "predict"])
def test_every_pipeline_command_takes_quiet(command: str) -> None:
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0 and "--quiet" in result.output


def test_quiet_silences_the_pseudo_label_progress_bar(trained_run, tmp_path) -> None:
    """The demo run's pseudo-labels at another delta (computed anew), with and without it."""
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    sets = ["data.size=[64, 160]", "classifier.epochs=2", "classifier.samples_per_epoch=16",
            "device=cpu"]
    args = ["pseudo-labels", TINY_CFG, "--out", str(run), "--fold", "0"]
    args += [x for s in sets for x in ("--set", s)]
    loud = runner.invoke(app, [*args, "--set", "cam.delta=30"])
    quiet = runner.invoke(app, [*args, "--set", "cam.delta=70", "--quiet"])
    assert loud.exit_code == 0 and quiet.exit_code == 0, (loud.output, quiet.output)
    assert "pseudo-labels:" in loud.output and "%|" in loud.output
    assert "fold 0:" in quiet.output and "it/s" not in quiet.output and "%|" not in quiet.output
