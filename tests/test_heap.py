"""racam.heap: inside the block a large tensor lives in the heap (kept for reuse when freed);
outside, glibc maps it afresh (``mallinfo2().hblkhd``: bytes in mmap-ed blocks). Heat-map calls
enter the block only when asked (``reuse_freed_memory=True`` or ``RACAM_MALLOC_TUNING=1``).

The heap is observed in a fresh interpreter, where no earlier test has left large free chunks
that glibc would rightly reuse whatever its thresholds.
"""

from __future__ import annotations

import ctypes
import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import torch
from helpers import tiny_vgg

from racam import heap

PROBE = r"""
import ctypes, json, torch
from racam import heap

class MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd",
                                               "usmblks", "fsmblks", "uordblks", "fordblks",
                                               "keepcost")]

libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = MallInfo2

def mapped(numel):
    before = libc.mallinfo2().hblkhd
    x = torch.ones(numel)
    grown = libc.mallinfo2().hblkhd - before
    del x
    return grown

out = {"before": mapped(16 << 20)}
with heap.reuse_freed_memory() as applies:
    out["applies"] = applies
    out["inside"] = mapped(16 << 20)
    with heap.reuse_freed_memory():
        pass
    out["inside_after_nested"] = mapped(16 << 20)
out["after"] = mapped(64 << 20)  # larger than any free chunk the block left
print(json.dumps(out))
"""


def _glibc_with_mallinfo2() -> None:
    if not heap.available():
        pytest.skip("racam.heap only acts with glibc; this C library is not glibc")
    if not hasattr(ctypes.CDLL("libc.so.6"), "mallinfo2"):
        pytest.skip("glibc < 2.33 has no mallinfo2 to observe the heap with")


def test_large_tensors_stay_in_the_heap_only_inside_the_outermost_block() -> None:
    _glibc_with_mallinfo2()
    r = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                       timeout=120, check=True)
    got = json.loads(r.stdout.strip().splitlines()[-1])
    mib64 = 64 << 20
    assert got["applies"] is True
    assert got["before"] >= mib64  # glibc maps 64 MiB afresh (over its 32 MiB threshold)
    assert got["inside"] == 0  # inside: from the heap, so a freed block is kept for reuse
    assert got["inside_after_nested"] == 0  # an inner block's end does not hand back
    assert got["after"] >= 4 * mib64  # after the outermost block: mapped afresh again


def _events(method: str, monkeypatch: pytest.MonkeyPatch, **kw: object) -> list[str]:
    """Forward passes of one CPU call, and when a :func:`heap.reuse_freed_memory` block
    around them is entered and left."""
    from racam.cam import build_cam

    events: list[str] = []
    real = heap.reuse_freed_memory

    @contextmanager
    def spy() -> Iterator[bool]:
        events.append("enter")
        with real() as applies:
            yield applies
        events.append("exit")

    monkeypatch.setattr(heap, "reuse_freed_memory", spy)
    model = tiny_vgg()
    handle = model.register_forward_hook(lambda *_: events.append("forward"))
    try:
        if method == "scorecam":
            kw["batch_size"] = 8
        build_cam(method, model, **kw)(torch.rand(1, 3, 64, 32), 1)
    finally:
        handle.remove()
    return events


def _passes(method: str) -> int:
    return 1 + 32 // 8 if method == "scorecam" else 1  # S5 of the width-16 VGG16: 32 channels


@pytest.mark.parametrize("method", ["scorecam", "racam"])
@pytest.mark.parametrize("how", ["argument", "environment"])
def test_every_pass_of_a_cpu_call_runs_inside_the_block_when_asked(
        method: str, how: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if how == "environment":
        monkeypatch.setenv(heap.ENV, "1")
        events = _events(method, monkeypatch)
    else:
        monkeypatch.delenv(heap.ENV, raising=False)
        events = _events(method, monkeypatch, reuse_freed_memory=True)
    assert events == ["enter"] + ["forward"] * _passes(method) + ["exit"]


@pytest.mark.parametrize("method", ["scorecam", "racam"])
def test_malloc_is_left_alone_by_default(method: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(heap.ENV, raising=False)
    assert _events(method, monkeypatch) == ["forward"] * _passes(method)
    monkeypatch.setenv(heap.ENV, "1")  # the argument wins over the environment
    assert _events(method, monkeypatch, reuse_freed_memory=False) == \
        ["forward"] * _passes(method)


def test_tuning_requested_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from racam.errors import ConfigError

    for value, want in (("1", True), ("Yes", True), ("on", True), ("0", False), ("", False),
                        ("off", False)):
        monkeypatch.setenv(heap.ENV, value)
        assert heap.tuning_requested() is want
        assert heap.tuning_requested(not want) is (not want)
    monkeypatch.delenv(heap.ENV)
    assert heap.tuning_requested() is False
    monkeypatch.setenv(heap.ENV, "maybe")
    with pytest.raises(ConfigError, match=heap.ENV):
        heap.tuning_requested()
