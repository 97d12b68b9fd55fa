"""Device-wide speed settings of the trainers: cuDNN autotuning and the memory format.

:func:`configure_backends` is the one place racam turns on ``torch.backends.cudnn.benchmark``
(cuDNN tries its convolution algorithms on the first batch of each shape and keeps the fastest;
the training shapes are fixed, so this pays off after a step or two). :func:`memory_format`
and :func:`to_format` apply the ``channels_last`` config key to a model or a batch.
"""

from __future__ import annotations

from typing import TypeVar

import torch
from torch import nn

M = TypeVar("M", nn.Module, torch.Tensor)


def configure_backends(device: torch.device) -> None:
    """Turn on cuDNN autotuning when ``device`` is CUDA; nothing on other devices."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True


def memory_format(channels_last: bool) -> torch.memory_format:
    """``torch.channels_last`` (NHWC) when asked, else the default contiguous format."""
    return torch.channels_last if channels_last else torch.contiguous_format


def to_format(obj: M, channels_last: bool) -> M:
    """``obj`` (a module or a 4-d batch) in channels-last format when ``channels_last``;
    ``obj`` itself otherwise."""
    if not channels_last:
        return obj
    if isinstance(obj, torch.Tensor):
        return obj.contiguous(memory_format=torch.channels_last)
    return obj.to(memory_format=torch.channels_last)
