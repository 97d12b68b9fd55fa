"""Decoded images kept in memory: a dataset's images and masks are read from disk once per
process, not at every epoch.

A :class:`~racam.data.io.RecordDataset` sample is the image file decoded, resized and scaled to
``[0, 1]`` plus its mask read and resized; both depend only on the files and the dataset's size
and channels, and the random flips come after them. :func:`decoded` keeps these results in one
process-wide store keyed by the files' path, size, modification time and inode and by the
target size and channels, so the datasets of one fold (augmented or not, train and validation
parts) and of every classifier seed share them, and a replaced file is read again. A returned
tensor is a fresh copy (the caller may change it). An image whose values are ``k / 255`` is
stored as ``uint8`` (``k``) and turned back with the same ``float() / 255`` as the first
reading, so a sample is bit for bit the one read from disk; other images (16-bit, float) are
stored as they are.

Memory: at most :func:`limit_bytes` (``RACAM_DECODED_CACHE_MB`` in MiB, 0: nothing kept;
default a quarter of the machine's memory, at most 2 GiB), least recently used first out.
KolektorSDD at 256 x 704, grey: about 0.36 MB per image with its mask, 144 MB for all 399.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

#: Environment variable: the store's limit in MiB (0: nothing is kept).
LIMIT_ENV = "RACAM_DECODED_CACHE_MB"
DEFAULT_CAP = 2 << 30

_store: OrderedDict[Hashable, tuple[Any, ...]] = OrderedDict()
_used = 0


def limit_bytes() -> int:
    """The store's limit: ``RACAM_DECODED_CACHE_MB`` MiB when set, else a quarter of the
    machine's memory, at most 2 GiB."""
    value = os.environ.get(LIMIT_ENV)
    if value is not None and value.strip():
        return max(0, int(float(value) * (1 << 20)))
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 0
    return min(DEFAULT_CAP, memory // 4)


def file_id(path: str | Path | None) -> Hashable:
    """What identifies a file's content for the store: path, size, modification time, inode
    (``"-"`` for no file; ``None`` for one that cannot be read: its reading then raises as
    usual, and nothing is kept)."""
    if path is None:
        return "-"
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (str(path), st.st_size, st.st_mtime_ns, st.st_ino)


class _Packed:
    """A float32 tensor of values ``k / 255`` kept as its ``uint8`` ``k``."""

    __slots__ = ("k",)

    def __init__(self, k: Tensor) -> None:
        self.k = k


def _pack(v: Any) -> Any:
    """A copy of ``v`` as stored (:class:`_Packed` when it is exactly ``k / 255``)."""
    if not isinstance(v, Tensor):
        return v
    if v.dtype == torch.float32 and v.numel():
        k = v.mul(255.0).round_()
        if k.min() >= 0 and k.max() <= 255:
            packed = k.to(torch.uint8)
            if torch.equal(packed.float().div_(255.0), v):
                return _Packed(packed)
    return v.clone()


def _unpack(v: Any) -> Any:
    """A fresh copy of a stored value."""
    if isinstance(v, _Packed):
        return v.k.float().div_(255.0)
    return v.clone() if isinstance(v, Tensor) else v


def _size(value: tuple[Any, ...]) -> int:
    return sum(t.numel() * t.element_size()
               for t in (v.k if isinstance(v, _Packed) else v for v in value)
               if isinstance(t, Tensor))


def decoded(key: Hashable, read: Callable[[], tuple[Any, ...]]) -> tuple[Any, ...]:
    """``read()``'s tuple, from the store when ``key`` is there (its float32 ``k / 255``
    tensors packed, every tensor returned as a fresh copy); ``key`` must hold the
    :func:`file_id` of every file ``read`` opens. Nothing is kept when ``key`` holds ``None``
    or the value exceeds the limit."""
    global _used
    hit = _store.get(key)
    if hit is not None:
        _store.move_to_end(key)
        return tuple(_unpack(v) for v in hit)
    value = read()
    limit = limit_bytes()
    if None in (key if isinstance(key, tuple) else (key,)) or limit <= 0:
        return value
    packed = tuple(_pack(v) for v in value)
    size = _size(packed)
    if size > limit:
        return value
    while _store and _used + size > limit:
        _used -= _size(_store.popitem(last=False)[1])
    _store[key] = packed
    _used += size
    return value


def clear() -> None:
    """Forget every kept image."""
    global _used
    _store.clear()
    _used = 0


def used_bytes() -> int:
    """Bytes the kept images take."""
    return _used
