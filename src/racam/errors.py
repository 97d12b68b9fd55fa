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
