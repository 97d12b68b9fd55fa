"""Learning-rate schedules (racam.schedule): warm-up and decay values, and the rate each
optimiser step really used, read off the parameter updates."""

from __future__ import annotations

import math

import pytest
import torch

from racam.config import LATER_DEFAULTS, ClassifierConfig
from racam.errors import CheckpointError, ConfigError
from racam.schedule import StepSchedule, lr_factor
from racam.training import check_resume


def test_warmup_then_cosine_values() -> None:
    # 4 warm-up steps of 12: 1/4, 2/4, 3/4, 1, then cos over the 8 remaining steps
    got = [lr_factor("cosine", t, 12, warmup=4) for t in range(13)]
    assert got[:4] == [0.25, 0.5, 0.75, 1.0]
    assert got[4] == 1.0  # u = 0
    assert got[8] == pytest.approx(0.5)  # u = 1/2
    assert got[12] == pytest.approx(0.0, abs=1e-12)  # u = 1
    assert all(a >= b for a, b in zip(got[4:], got[5:]))


def test_constant_and_poly_and_errors() -> None:
    assert [lr_factor("constant", t, 10, warmup=2) for t in range(4)] == [0.5, 1.0, 1.0, 1.0]
    assert lr_factor("constant", 7, 10) == 1.0
    assert lr_factor("poly", 5, 10) == pytest.approx(0.5 ** 0.9)
    with pytest.raises(ConfigError, match="schedule must be one of"):
        lr_factor("step", 0, 10)


def _used_rates(schedule: StepSchedule, param: torch.nn.Parameter, epochs: int, steps: int,
                first_epoch: int = 0) -> list[float]:
    """Run plain SGD on loss = sum(p) (gradient 1): each update is exactly -lr."""
    rates = []
    for epoch in range(first_epoch, epochs):
        schedule.begin_epoch(epoch, steps)
        for _ in range(steps):
            before = param.detach().clone()
            schedule.optimizer.zero_grad()
            param.sum().backward()
            schedule.optimizer.step()
            rates.append(float((before - param.detach()).mean()))
    return rates


def test_step_schedule_sets_the_rate_each_step_uses() -> None:
    p = torch.nn.Parameter(torch.zeros(3, dtype=torch.float64))
    opt = torch.optim.SGD([p], lr=0.1)
    sched = StepSchedule(opt, 0.1, "cosine", epochs=3, warmup_epochs=1)
    rates = _used_rates(sched, p, 3, 4)
    want = [0.1 * lr_factor("cosine", t, 12, warmup=4) for t in range(12)]
    assert rates == pytest.approx(want, rel=1e-9, abs=1e-15)
    assert rates[:4] == pytest.approx([0.025, 0.05, 0.075, 0.1])
    sched.remove()
    opt.param_groups[0]["lr"] = 0.3
    before = p.detach().clone()
    opt.zero_grad()
    p.sum().backward()
    opt.step()  # detached: the rate set by hand is used
    assert float((before - p.detach()).mean()) == pytest.approx(0.3)


def test_resumed_epochs_continue_the_schedule() -> None:
    """A fresh optimiser and schedule that start at epoch 2 use the uninterrupted rates."""
    p = torch.nn.Parameter(torch.zeros(2, dtype=torch.float64))
    whole = _used_rates(StepSchedule(torch.optim.SGD([p], lr=0.05), 0.05, "poly", 4, 1.5),
                        p, 4, 3)
    q = torch.nn.Parameter(torch.zeros(2, dtype=torch.float64))
    tail = _used_rates(StepSchedule(torch.optim.SGD([q], lr=0.05), 0.05, "poly", 4, 1.5),
                       q, 4, 3, first_epoch=2)
    assert tail == pytest.approx(whole[6:], rel=1e-12)
    assert whole[0] == pytest.approx(0.05 / round(1.5 * 3))


def test_constant_without_warmup_never_touches_the_rate() -> None:
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=0.01)
    sched = StepSchedule(opt, 0.5, "constant", epochs=2)  # base_lr unused when inactive
    assert not sched.active
    assert _used_rates(sched, p, 2, 2) == pytest.approx([0.01] * 4)


def test_old_checkpoints_resume_at_the_new_defaults(tmp_path) -> None:
    """A classifier checkpoint written before warmup_epochs/schedule existed still matches."""
    import dataclasses

    cfg = dataclasses.asdict(ClassifierConfig())
    old = {k: v for k, v in cfg.items() if k not in ("warmup_epochs", "schedule")}
    assert {"warmup_epochs", "schedule"} <= set(LATER_DEFAULTS["classifier"])
    check_resume(tmp_path / "last.pt", {"kind": "classifier", "config": old},
                 {"kind": "classifier", "config": cfg})
    warm = {**cfg, "warmup_epochs": 2.0}
    with pytest.raises(CheckpointError, match="warmup_epochs"):
        check_resume(tmp_path / "last.pt", {"kind": "classifier", "config": old},
                     {"kind": "classifier", "config": warm})
    assert math.isclose(LATER_DEFAULTS["classifier"]["warmup_epochs"], 0.0)
