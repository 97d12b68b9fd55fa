"""Exceptions raised by racam for bad user input."""

from __future__ import annotations


class RacamError(Exception):
    """Base class of every error racam raises on purpose."""


class DataError(RacamError, ValueError):
    """A dataset file or folder is missing, unreadable or inconsistent.

    The message always names the offending file or folder and what is wrong with it.
    """


class ConfigError(RacamError, ValueError):
    """A configuration file or option is invalid."""


class CheckpointError(RacamError, ValueError):
    """A checkpoint file is missing, corrupt or does not match the model."""


class TrainingDiverged(RacamError):
    """A training epoch's mean loss was not finite (``epoch``: 1-based, ``stage``: which
    network). The classifier keeps its best epoch from before when it has one."""

    def __init__(self, stage: str, epoch: int, loss: float) -> None:
        super().__init__(f"{stage} training diverged at epoch {epoch} (mean loss {loss}): "
                         f"lower {stage}.lr")
        self.stage, self.epoch, self.loss = stage, epoch, loss
