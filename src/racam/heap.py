"""Keep freed large blocks in the process heap while many same-sized forward passes run.

glibc serves every allocation above its mmap threshold (dynamic, at most 32 MiB) with a fresh
``mmap``, and returns it to the kernel on free. A CPU forward pass allocates a new tensor per
layer, so at 640 x 224 each pass maps, page-faults and zeroes hundreds of MB that the previous
pass had just released: on the 2-core machine this costs about as much as the convolutions
(narrow VGG16, batch 32: 36 ms per image plain, 16 ms with freed blocks kept; see
``docs/cam.md``). :func:`reuse_freed_memory` raises glibc's mmap and trim thresholds for the
duration of a block, so freed tensors are reused; the numbers computed do not change.

It is opt-in, because ``mallopt`` changes process-wide settings and switches off glibc's
dynamic threshold for good: a heat-map method's ``reuse_freed_memory=True``, or the environment
variable ``RACAM_MALLOC_TUNING=1`` for every call that does not say (:func:`tuning_requested`).
``benchmarks/malloc_tuning.py`` measures what it gains.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from functools import cache

from racam.errors import ConfigError

#: ``mallopt`` parameter numbers (glibc ``malloc.h``).
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
#: Threshold inside the block: allocations below 1 GiB come from (and return to) the heap.
KEEP_BYTES = 1 << 30
#: Thresholds after the block: the values glibc's own dynamic rule converges to on 64-bit
#: Linux (``DEFAULT_MMAP_THRESHOLD_MAX`` and twice that); an explicit ``mallopt`` turns that
#: rule off, so it cannot be handed back as it was.
MMAP_AFTER = 32 << 20
TRIM_AFTER = 64 << 20

#: Environment variable that turns the tuning on for calls that do not choose (default off).
ENV = "RACAM_MALLOC_TUNING"
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("", "0", "false", "no", "off")

_lock = threading.Lock()
_depth = 0


@cache
def _glibc() -> ctypes.CDLL | None:
    """The C library when it is glibc (has ``mallopt`` and ``malloc_trim``), else ``None``."""
    if not sys.platform.startswith("linux"):
        return None
    name = ctypes.util.find_library("c") or "libc.so.6"
    try:
        libc = ctypes.CDLL(name)
    except OSError:
        return None
    if not (hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim")):
        return None
    return libc


def available() -> bool:
    """Whether :func:`reuse_freed_memory` has an effect here (Linux with glibc)."""
    return _glibc() is not None


@contextmanager
def reuse_freed_memory() -> Iterator[bool]:
    """Within the block, keep freed blocks under 1 GiB in the heap for reuse (glibc only).

    Nested and concurrent blocks are counted: the thresholds go back (to 32 MiB mmap /
    64 MiB trim) and free heap memory is returned to the kernel (``malloc_trim(0)``) when the
    outermost block ends. Yields whether the setting applies (``False``: not glibc, no-op).
    """
    global _depth
    libc = _glibc()
    with _lock:
        _depth += 1
        if _depth == 1 and libc is not None:
            libc.mallopt(M_MMAP_THRESHOLD, KEEP_BYTES)
            libc.mallopt(M_TRIM_THRESHOLD, KEEP_BYTES)
    try:
        yield libc is not None
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and libc is not None:
                libc.mallopt(M_MMAP_THRESHOLD, MMAP_AFTER)
                libc.mallopt(M_TRIM_THRESHOLD, TRIM_AFTER)
                libc.malloc_trim(0)


def tuning_requested(enabled: bool | None = None) -> bool:
    """``enabled`` when given, else whether ``RACAM_MALLOC_TUNING`` is on (1/true/yes/on;
    unset, 0/false/no/off: off)."""
    if enabled is not None:
        return bool(enabled)
    value = os.environ.get(ENV, "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"{ENV} must be 1 or 0 (true/false, yes/no, on/off), got {value!r}")


def maybe_reuse_freed_memory(enabled: bool | None = None) -> AbstractContextManager[object]:
    """:func:`reuse_freed_memory` if :func:`tuning_requested` (``enabled``), else a no-op."""
    return reuse_freed_memory() if tuning_requested(enabled) else nullcontext()
