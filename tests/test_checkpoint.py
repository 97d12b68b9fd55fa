"""Checkpoints: round trip, atomic writes, safe loading, RNG capture."""

from __future__ import annotations

import pathlib
import random

import numpy as np
import pytest
import torch

from racam import checkpoint as ckpt
from racam.checkpoint import load_checkpoint, load_classifier, save_checkpoint
from racam.errors import CheckpointError
from racam.models import build_classifier


def _meta(backbone: str = "vgg16_narrow", width: int = 16) -> dict:
    return {"kind": "classifier", "backbone": backbone, "width": width, "in_channels": 1,
            "num_classes": 2, "history": [{"epoch": 1, "loss": 0.5, "val_auroc": None}]}


def _stepped_model(backbone: str = "vgg16_narrow", width: int = 16):
    model = build_classifier(backbone, width=width)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model.train()
    loss = torch.nn.functional.cross_entropy(model(torch.rand(2, 1, 64, 32)),
                                             torch.tensor([0, 1]))
    loss.backward()
    opt.step()
    return model, opt


@pytest.mark.parametrize("backbone,width", [("vgg16_narrow", 16), ("efficientnet_lite0", 1)])
def test_round_trip_rebuilds_the_same_classifier(tmp_path, backbone: str, width: int) -> None:
    model, opt = _stepped_model(backbone, width)
    path = save_checkpoint(tmp_path / "c.pt", model, opt, None, 3, _meta(backbone, width),
                           ckpt.capture_rng_states())
    state = load_checkpoint(path)
    assert state["epoch"] == 3 and state["meta"]["history"][0]["loss"] == 0.5
    for k, v in model.state_dict().items():
        assert torch.equal(state["model"][k], v), k
    opt2 = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    opt2.load_state_dict(state["optimizer"])
    for p in model.parameters():
        assert torch.equal(opt2.state[p]["momentum_buffer"], opt.state[p]["momentum_buffer"])
    loaded, meta = load_classifier(path)
    assert meta["backbone"] == backbone and not loaded.training
    x = torch.rand(2, 1, 64, 32)
    model.eval()
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))


def test_write_is_atomic(tmp_path, monkeypatch) -> None:
    model, opt = _stepped_model()
    path = save_checkpoint(tmp_path / "last.pt", model, opt, None, 1, _meta())
    before = path.read_bytes()

    def broken_save(obj, fh):
        fh.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(ckpt.torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, model, opt, None, 2, _meta())
    assert path.read_bytes() == before  # old checkpoint untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]  # no temp file left
    monkeypatch.undo()
    assert load_checkpoint(path)["epoch"] == 1


def test_missing_corrupt_and_foreign_files(tmp_path) -> None:
    with pytest.raises(CheckpointError, match="absent.pt: no such file"):
        load_checkpoint(tmp_path / "absent.pt")
    model, opt = _stepped_model()
    good = save_checkpoint(tmp_path / "good.pt", model, opt, None, 1, _meta())
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[:200])
    with pytest.raises(CheckpointError, match="truncated.pt: corrupt"):
        load_checkpoint(truncated)
    plain = tmp_path / "plain.pt"
    torch.save(model.state_dict(), plain)
    with pytest.raises(CheckpointError, match="plain.pt: not a racam checkpoint"):
        load_checkpoint(plain)
    seg_like = save_checkpoint(tmp_path / "seg.pt", model, None, None, 1, {"kind": "seg"})
    with pytest.raises(CheckpointError, match="seg.pt: meta lacks"):
        load_classifier(seg_like)
    wrong = save_checkpoint(tmp_path / "wrong.pt", model, None, None, 1,
                            _meta(width=8))  # weights of width 16 declared as width 8
    with pytest.raises(CheckpointError, match="wrong.pt: weights do not fit"):
        load_classifier(wrong)


class _Evil:
    marker = ""

    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path(self.marker),))


def test_checkpoint_is_not_executed(tmp_path) -> None:
    """weights_only=True: a pickled callable in a checkpoint is refused, not run."""
    evil = _Evil()
    evil.marker = str(tmp_path / "pwned")
    path = tmp_path / "evil.pt"
    torch.save({"format": ckpt.FORMAT, "epoch": 1, "meta": {}, "model": {}, "x": evil}, path)
    with pytest.raises(CheckpointError, match="evil.pt"):
        load_checkpoint(path)
    assert not (tmp_path / "pwned").exists()


def test_rng_states_round_trip(tmp_path) -> None:
    model, _ = _stepped_model()
    gen = torch.Generator().manual_seed(5)
    states = ckpt.capture_rng_states(gen)
    save_checkpoint(tmp_path / "r.pt", model, None, None, 1, _meta(), states)
    loaded = load_checkpoint(tmp_path / "r.pt")["rng_states"]  # survives weights_only
    first = (torch.rand(3), np.random.rand(3), random.random(), torch.rand(3, generator=gen))
    ckpt.restore_rng_states(loaded, gen)
    second = (torch.rand(3), np.random.rand(3), random.random(), torch.rand(3, generator=gen))
    assert torch.equal(first[0], second[0])
    assert np.array_equal(first[1], second[1])
    assert first[2] == second[2]
    assert torch.equal(first[3], second[3])


def test_resume_accepts_keys_added_later_at_their_earlier_value(tmp_path) -> None:
    from racam.training import check_resume

    path = tmp_path / "last.pt"
    old = {"kind": "segmentation", "config": {"lr": 0.01, "epochs": 4}}  # before "optimizer"
    check_resume(path, old, {"kind": "segmentation",
                             "config": {"lr": 0.01, "epochs": 8, "optimizer": "sgd"}})
    with pytest.raises(CheckpointError, match=r"config\.optimizer: None in checkpoint, 'adamw'"):
        check_resume(path, old, {"kind": "segmentation",
                                 "config": {"lr": 0.01, "epochs": 4, "optimizer": "adamw"}})
    with pytest.raises(CheckpointError, match=r"config\.lr: 0\.01 in checkpoint, 0\.02 now"):
        check_resume(path, old, {"kind": "segmentation", "config": {"lr": 0.02}})
    clf = {"kind": "classifier", "config": {"lr": 0.01}}  # written before 'threshold'
    check_resume(path, clf, {"kind": "classifier", "config": {"lr": 0.01, "threshold": 0.7}})
