"""``torch.compile`` of a training forward pass, falling back to eager with a warning.

Compilation is lazy: it happens on the first call, so a failing backend (no C compiler, an
operator inductor cannot lower, ...) shows up there, not when :func:`torch.compile` is called.
:class:`CompiledForward` catches that failure, warns once naming the stage and the error, and
runs the module eagerly from then on. The module itself stays uncompiled, so checkpoints
(``state_dict``), evaluation and the heat-map hooks see the plain module; only the trainers'
forward calls go through the compiled graph.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch import nn


class CompiledForward:
    """Call ``module`` through ``torch.compile`` when ``enabled`` (see the module docstring)."""

    def __init__(self, module: nn.Module, enabled: bool, stage: str) -> None:
        self.module = module
        self.stage = stage
        self.compiled: Callable[..., Any] | None = None
        if enabled:
            try:
                self.compiled = torch.compile(module)
            except Exception as exc:  # any failure means: run eagerly
                self._fall_back(exc)

    def _fall_back(self, exc: BaseException) -> None:
        self.compiled = None
        warnings.warn(f"{self.stage}.compile: torch.compile failed ({type(exc).__name__}: "
                      f"{str(exc).strip().splitlines()[0] if str(exc).strip() else ''}); "
                      "training continues without it (eager mode)", RuntimeWarning,
                      stacklevel=3)

    @property
    def active(self) -> bool:
        """Whether calls still go through the compiled graph."""
        return self.compiled is not None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.compiled is not None:
            try:
                return self.compiled(*args, **kwargs)
            except torch.cuda.OutOfMemoryError:
                raise
            except Exception as exc:  # a backend failure: eager from now on
                self._fall_back(exc)
        return self.module(*args, **kwargs)
