"""torchrun / DistributedDataParallel: sharding helpers, per-rank batches, and one epoch of
DDP training on 2 CPU processes (gloo) against one process with the whole batch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch.utils.data import BatchSampler, SequentialSampler

from racam import distributed, training
from racam.errors import ConfigError
from racam.models.registry import build_classifier

REPO = Path(__file__).resolve().parent.parent


def _as_rank(monkeypatch, r: int, n: int) -> None:
    monkeypatch.setattr(distributed, "rank", lambda: r)
    monkeypatch.setattr(distributed, "world_size", lambda: n)


@pytest.mark.parametrize("n", [1, 2, 3, 4])
@pytest.mark.parametrize("block", [1, 2, 3])
@pytest.mark.parametrize("items", [0, 1, 7, 12])
def test_shard_then_gather_restores_the_order(monkeypatch, n, block, items) -> None:
    data = [f"x{i}" for i in range(items)]
    parts = []
    for r in range(n):
        _as_rank(monkeypatch, r, n)
        parts.append(distributed.shard(data, block))
    # disjoint, complete, balanced to within one block, whole blocks of the original order
    assert sorted(sum(parts, [])) == sorted(data)
    assert max(map(len, parts)) - min(map(len, parts)) <= block
    blocks = [data[i:i + block] for i in range(0, items, block)]
    for r, part in enumerate(parts):
        assert part == sum(blocks[r::n], [])
    monkeypatch.setattr(distributed, "gather", lambda obj: [list(p) for p in parts])
    _as_rank(monkeypatch, 0, n)
    if n > 1:
        monkeypatch.setattr(distributed, "is_distributed", lambda: True)
    assert distributed.gather_shards(parts[0], block) == data


def test_single_process_helpers_are_pass_through() -> None:
    assert not distributed.is_initialized()
    assert distributed.world_size() == 1 and distributed.rank() == 0 and distributed.is_main()
    assert distributed.gather({"a": 1}) == [{"a": 1}]
    assert distributed.broadcast([3]) == [3]
    assert distributed.all_sum([1, 2.5]) == [1.0, 2.5]
    assert distributed.sharded_map(lambda xs: [x * x for x in xs], range(5), 2) == \
        [0, 1, 4, 9, 16]


@pytest.mark.parametrize("n", [2, 3])
def test_rank_batches_split_each_global_batch(monkeypatch, n) -> None:
    draws = list(range(100, 123))  # 23 draws: batches of 8, 8, 7
    per_rank = []
    for r in range(n):
        _as_rank(monkeypatch, r, n)
        per_rank.append(list(training.RankBatchSampler(draws, 8, drop_last=False)))
    for j, batch in enumerate(BatchSampler(draws, 8, drop_last=False)):
        parts = [per_rank[r][j] for r in range(n)]
        assert sum(parts, []) == batch  # consecutive parts, rank order
        assert max(map(len, parts)) - min(map(len, parts)) <= 1
    _as_rank(monkeypatch, 0, n)
    assert len(training.RankBatchSampler(SequentialSampler(range(23)), 8, True)) == 2


def test_batches_that_leave_a_rank_empty_are_refused(monkeypatch) -> None:
    monkeypatch.setattr(distributed, "world_size", lambda: 4)
    training.check_global_batches(64, 8, False, "classifier")
    training.check_global_batches(18, 8, True, "segmentation")  # last (2) dropped
    with pytest.raises(ConfigError, match="classifier.batch_size"):
        training.check_global_batches(64, 2, False, "classifier")
    with pytest.raises(ConfigError, match="last batch of 2"):
        training.check_global_batches(18, 8, False, "classifier")


def _env() -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), env.get("PYTHONPATH", "")])
    for var in distributed.TORCHRUN_VARS:
        env.pop(var, None)
    return env


def test_ddp_epoch_equals_one_process_with_the_whole_batch(tmp_path) -> None:
    """2 gloo ranks with half of each batch reach the weights of 1 process with the whole
    batch (two SGD steps with momentum and weight decay; unequal halves in the second step)."""
    worker = str(REPO / "tests" / "ddp_step_worker.py")
    one, two = tmp_path / "one", tmp_path / "two"
    subprocess.run([sys.executable, worker, str(one)], env=_env(), check=True, timeout=300)
    subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                    "--nproc_per_node", "2", worker, str(two)],
                   env=_env(), check=True, timeout=300)
    assert (one / "world1-rank0.done").exists()
    assert (two / "world2-rank0.done").exists() and (two / "world2-rank1.done").exists()
    torch.manual_seed(3)  # the trainer's initialisation
    init = build_classifier("vgg16_narrow", num_classes=2, in_channels=1, width=16).state_dict()
    for name in ("loss", "sampler"):
        a = torch.load(one / name / "last.pt", weights_only=True)
        b = torch.load(two / name / "last.pt", weights_only=True)
        for key, value in a["model"].items():
            assert torch.allclose(value, b["model"][key], rtol=0, atol=1e-5), (name, key)
        moved = max(float((v - init[k]).abs().max()) for k, v in a["model"].items())
        assert moved > 1e-3, moved  # the steps changed the weights far beyond the tolerance
        # the logged loss is the mean over the whole batch in both runs
        ha, hb = a["meta"]["history"][0], b["meta"]["history"][0]
        assert ha["loss"] == pytest.approx(hb["loss"], rel=1e-5)


def test_a_loss_that_diverges_on_one_rank_stops_every_rank_at_that_epoch(tmp_path) -> None:
    """Rank 1 alone sees NaN images in epoch 2: the per-step all-reduced loss makes both ranks
    stop there and keep epoch 1, so no rank trains on while the other has stopped."""
    worker = str(REPO / "tests" / "ddp_divergence_worker.py")
    subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                    "--nproc_per_node", "2", worker, str(tmp_path)],
                   env=_env(), check=True, timeout=300)
    got = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert got[0] == got[1] == {"diverged_at": 2, "epochs": [1], "best_epoch": 1}
