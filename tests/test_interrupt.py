"""Ctrl-C: what it prints, and the time of an interrupted call counted when the run resumes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import TINY_CFG

from racam.stages.elapsed import CallLedger, interrupted_path, replaced_seconds, timed_stage


def _sleep_then(seconds: float, fail: bool) -> dict:
    time.sleep(seconds)
    if fail:
        raise KeyboardInterrupt
    return {"value": 1}


def test_an_interrupted_stage_adds_its_time_to_the_call_that_finishes_it(tmp_path) -> None:
    result = tmp_path / "result.json"
    for _ in range(2):
        with pytest.raises(KeyboardInterrupt):
            timed_stage(result, lambda: _sleep_then(0.2, fail=True))
    earlier = json.loads(interrupted_path(result).read_text())["interrupted_seconds"]
    assert len(earlier) == 2 and all(s >= 0.2 for s in earlier)
    value = timed_stage(result, lambda: _sleep_then(0.1, fail=False))
    assert value["interrupted_seconds"] == earlier
    assert 0.1 <= value["seconds_this_call"] < 0.2 + min(earlier)
    assert value["seconds"] == pytest.approx(value["seconds_this_call"] + sum(earlier), abs=0.011)
    assert not interrupted_path(result).exists()  # counted once
    again = timed_stage(tmp_path / "other.json", lambda: _sleep_then(0.0, fail=False))
    assert "interrupted_seconds" not in again and again["seconds"] < 0.1


def test_a_stage_computed_over_its_own_result_keeps_that_results_seconds(tmp_path) -> None:
    result = tmp_path / "result.json"
    assert replaced_seconds(result) == []
    result.write_text(json.dumps({"seconds": 390.0, "replaced_seconds": [12.5]}))
    assert replaced_seconds(result) == [12.5, 390.0]
    value = timed_stage(result, lambda: {"x": 1}, replaced_seconds(result))
    assert value["replaced_seconds"] == [12.5, 390.0] and value["seconds"] < 390
    assert "replaced_seconds" not in timed_stage(tmp_path / "new.json", lambda: {"x": 1}, [])


def test_the_call_ledger_sums_calls_that_computed_or_were_interrupted(tmp_path) -> None:
    computed = [0]
    with pytest.raises(KeyboardInterrupt), CallLedger(tmp_path, lambda: computed[0]):
        time.sleep(0.2)
        raise KeyboardInterrupt
    with CallLedger(tmp_path, lambda: computed[0]) as calls:
        time.sleep(0.1)
        computed[0] = 3
        summary = calls.summary()
    assert summary["calls"] == 2
    assert summary["wall_seconds_all_calls"] >= 0.3 > summary["wall_seconds_this_call"] >= 0.1
    entries = json.loads((tmp_path / "calls.json").read_text())["calls"]
    assert [(e["finished"], e["stages_computed"]) for e in entries] == [(False, 0), (True, 3)]
    # a call that only reuses finished stages (re-rendering the report) adds nothing
    computed[0] = 0
    with CallLedger(tmp_path, lambda: computed[0]) as calls:
        rerender = calls.summary()
    assert rerender["calls"] == 2
    assert rerender["wall_seconds_all_calls"] == pytest.approx(
        sum(e["seconds"] for e in entries))
    assert len(json.loads((tmp_path / "calls.json").read_text())["calls"]) == 2


def _demo_args(out: Path) -> list[str]:
    return ["run", TINY_CFG, "--out", str(out), "--set", "device=cpu",
            "--set", "data.size=[64,160]", "--set", "classifier.epochs=60",
            "--set", "classifier.samples_per_epoch=16", "--set", "segmentation.epochs=1",
            "--set", "segmentation.samples_per_epoch=8"]


def test_ctrl_c_says_how_to_resume_and_the_resumed_run_counts_both_calls(tmp_path) -> None:
    """A real ``racam run`` on the bundled KolektorSDD sample, stopped by SIGINT during its
    classifier's epochs, then run again to the end."""
    out = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "racam", *_demo_args(out)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    last = out / "fold0" / "classifier" / "last.pt"
    deadline = time.monotonic() + 120
    while not last.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert last.exists(), "the classifier never finished an epoch"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted:" in err and "Traceback" not in err
    assert f"to resume, run the same command again: racam run {TINY_CFG} --out" in err
    result = out / "fold0" / "classifier" / "result.json"
    assert not result.exists()  # no half result that looks complete
    first = json.loads(interrupted_path(result).read_text())["interrupted_seconds"]
    assert len(first) == 1 and first[0] > 0

    done = subprocess.run([sys.executable, "-m", "racam", *_demo_args(out), "--quiet"], env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    clf = json.loads(result.read_text())
    assert clf["interrupted_seconds"] == first
    assert clf["seconds"] == pytest.approx(clf["seconds_this_call"] + first[0], abs=0.011)
    results = json.loads((out / "results.json").read_text())
    assert results["calls"] == 2
    assert results["wall_seconds_all_calls"] > results["wall_seconds_this_call"]
    assert results["stage_seconds"]["0"]["classifier"] == clf["seconds"]
    assert "of the 2 call(s) that computed stages" in (out / "run-report.md").read_text()


def test_a_call_that_only_reuses_stages_of_unrecorded_calls_claims_no_wall_time(tmp_path) -> None:
    """Stages computed before calls were recorded: the whole run's wall time is unknown, and is
    not replaced by the seconds of a call that only read them back."""
    with CallLedger(tmp_path, lambda: 0) as calls:
        summary = calls.summary()
    assert summary["wall_seconds_all_calls"] is None and summary["calls"] == 0
    assert not (tmp_path / "calls.json").exists()


@pytest.mark.parametrize(("command", "kept"), [
    ("run", "finished stages"), ("reproduce", "finished stages"),
    ("predict", "images already predicted are kept"), ("cam", "no half-written set"),
    ("export", "no half-written model file")])
def test_the_interrupt_line_says_what_each_command_keeps(command: str, kept: str) -> None:
    from racam.cli import interrupted_line

    line = interrupted_line([command, "ksdd cpu", "--out", "o"])
    assert kept in line and line.endswith(f"racam {command} 'ksdd cpu' --out o")
