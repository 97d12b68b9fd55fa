"""Ranks under ``torchrun``: the process group, rank helpers, barrier, gathering python objects,
and splitting per-image work across ranks.

``torchrun`` starts one process per worker and tells each its place through environment
variables (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``).
:func:`init_from_env` joins that process group (``gloo`` for CPU tensors, ``nccl`` for CUDA
tensors). Without those variables no process group exists: :func:`world_size` is 1,
:func:`rank` 0, :func:`is_main` true, and every helper below returns its input unchanged, so the
code paths of a plain ``racam`` call are exactly the single-process ones.

Per-image work is split with :func:`shard` (this rank's items) and put back together with
:func:`gather_shards` (every rank gets all results, in the original order);
:func:`sharded_map` does both around a function of a list of items. Items are dealt out in
blocks (``block``, usually the batch size) round robin: rank ``r`` gets blocks ``r``,
``r + N``, ..., so each rank's batches are exactly batches of the single-process run (same
images together, hence the same numbers) and the work is balanced to within one block.

Every rank must call the collective helpers (:func:`barrier`, :func:`gather`,
:func:`broadcast`, :func:`all_sum`, :func:`gather_shards`, :func:`sharded_map`) the same number
of times in the same order.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import torch
import torch.distributed as dist

T = TypeVar("T")
R = TypeVar("R")

#: Environment variables ``torchrun`` sets for every worker.
TORCHRUN_VARS = ("RANK", "WORLD_SIZE")


def launched_by_torchrun() -> bool:
    """Whether the environment holds torchrun's ``RANK`` and ``WORLD_SIZE``."""
    return all(v in os.environ for v in TORCHRUN_VARS)


def init_from_env() -> bool:
    """Join torchrun's process group (``env://``); return whether one is active.

    A no-op (returning False) without torchrun's variables. On a machine with CUDA the
    process's GPU is ``LOCAL_RANK`` and the backend ``cpu:gloo,cuda:nccl`` (NCCL for CUDA
    tensors, gloo for CPU ones); otherwise ``gloo``.
    """
    if is_initialized():
        return True
    if not launched_by_torchrun():
        return False
    from racam.errors import ConfigError

    if not dist.is_available():
        raise ConfigError("launched by torchrun, but this torch build has no torch.distributed")
    backend = "gloo"
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        backend = "cpu:gloo,cuda:nccl"
    dist.init_process_group(backend=backend)
    return True


def peer_lost(exc: BaseException) -> bool:
    """Whether ``exc`` says that another rank went away (killed or crashed) mid-collective;
    torchrun then stops every rank, and rerunning the command resumes."""
    if not is_distributed() or not isinstance(exc, RuntimeError):
        return False
    text = str(exc)
    return isinstance(exc, dist.DistError) or any(
        s in text for s in ("Connection closed by peer", "Connection reset by peer"))


def shutdown() -> None:
    """Leave the process group, if any."""
    if is_initialized():
        dist.destroy_process_group()


def is_initialized() -> bool:
    """Whether a process group is active in this process."""
    return dist.is_available() and dist.is_initialized()


def world_size() -> int:
    """Number of ranks (1 without a process group)."""
    return dist.get_world_size() if is_initialized() else 1


def rank() -> int:
    """This process's rank (0 without a process group)."""
    return dist.get_rank() if is_initialized() else 0


def is_distributed() -> bool:
    """Whether more than one rank takes part."""
    return world_size() > 1


def is_main() -> bool:
    """Whether this is rank 0, the rank that writes checkpoints, caches, manifests, reports."""
    return rank() == 0


def barrier() -> None:
    """Wait until every rank gets here (no-op with one rank)."""
    if is_distributed():
        dist.barrier()


def gather(obj: T) -> list[T]:
    """Every rank's ``obj`` (picklable), in rank order, on every rank; ``[obj]`` with one rank."""
    if not is_distributed():
        return [obj]
    out: list[Any] = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


def broadcast(obj: T) -> T:
    """Rank 0's ``obj`` on every rank (``obj`` itself with one rank)."""
    if not is_distributed():
        return obj
    box: list[Any] = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def all_sum(values: Sequence[float]) -> list[float]:
    """Element-wise sum over ranks of a few numbers (float64); ``values`` with one rank."""
    if not is_distributed():
        return [float(v) for v in values]
    t = torch.tensor([float(v) for v in values], dtype=torch.float64)
    dist.all_reduce(t)
    return t.tolist()


def shard(items: Sequence[T], block: int = 1) -> list[T]:
    """This rank's share of ``items``: blocks ``rank, rank + N, ...`` of ``block`` consecutive
    items (see the module docstring); all of them with one rank."""
    items = list(items)
    n, b = world_size(), max(1, int(block))
    if n == 1:
        return items
    r = rank()
    return [x for start in range(r * b, len(items), n * b) for x in items[start:start + b]]


def gather_shards(local: Sequence[R], block: int = 1) -> list[R]:
    """Inverse of :func:`shard`: every rank's ``local`` results (one per item of its shard, in
    shard order) put back in the order of the original items, on every rank."""
    if not is_distributed():
        return list(local)
    parts = gather(list(local))
    n, b = len(parts), max(1, int(block))
    total = sum(len(p) for p in parts)
    out: list[R] = []
    taken = [0] * n
    for g in range(-(-total // b)):
        r, size = g % n, min(b, total - g * b)
        out.extend(parts[r][taken[r]:taken[r] + size])
        taken[r] += size
    if taken != [len(p) for p in parts]:
        raise RuntimeError(f"gather_shards: ranks returned {[len(p) for p in parts]} results, "
                           "not one per item of their shard")
    return out


def sharded_map(fn: Callable[[list[T]], Sequence[R]], items: Sequence[T],
                block: int = 1) -> list[R]:
    """``fn`` on this rank's :func:`shard` of ``items`` (``fn`` returns one result per item),
    gathered back in item order on every rank: N ranks each do 1/N of the items, and the
    result equals ``fn(items)`` when ``fn`` treats its items batch by batch of ``block``."""
    return gather_shards(fn(shard(items, block)), block)
