"""Classifier training: learning, balancing, selection, exact resume, prediction."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score
from torch.utils.data import Dataset, Subset

from racam import training
from racam.classifier import load_classifier, predict_proba, train_classifier
from racam.classifier import train as train_mod
from racam.config import ClassifierConfig
from racam.data.sample import Sample
from racam.errors import CheckpointError, ConfigError, DataError


class Blobs(Dataset):
    """Synthetic gray images ``(1, h, w)``: every ``pos_every``-th one has a bright disc (the
    "defect", also its mask); the others are texture only. ``augment`` flips like a dataset."""

    def __init__(self, n: int, pos_every: int = 3, seed: int = 0, h: int = 128, w: int = 64,
                 augment: bool = False, channels: int = 1) -> None:
        g = torch.Generator().manual_seed(seed)
        yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
        self.images, self.masks, self.labels = [], [], []
        for i in range(n):
            img = 0.3 + 0.1 * torch.rand(h, w, generator=g)
            label = int(i % pos_every == 0)
            mask = torch.zeros(h, w, dtype=torch.bool)
            if label:
                cy = int(torch.randint(8, h - 8, (1,), generator=g))
                cx = int(torch.randint(8, w - 8, (1,), generator=g))
                mask = (yy - cy) ** 2 + (xx - cx) ** 2 <= 16
                img = torch.where(mask, torch.ones(()), img)
            self.images.append(img[None].repeat(channels, 1, 1))
            self.masks.append(mask)
            self.labels.append(label)
        self.augment = augment

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> Sample:
        img, mask = self.images[i], self.masks[i]
        if self.augment:
            if torch.rand(()) < 0.5:
                img, mask = img.flip(-1), mask.flip(-1)
            if torch.rand(()) < 0.5:
                img, mask = img.flip(-2), mask.flip(-2)
        return Sample(image=img, label=self.labels[i], id=f"s{i}",
                      original_size=(img.shape[-1], img.shape[-2]), mask=mask)


def _cfg(**kw) -> ClassifierConfig:
    base = dict(backbone="vgg16_narrow", width=16, epochs=3, batch_size=8, lr=0.01)
    base.update(kw)
    return ClassifierConfig(**base)


def test_learns_a_separable_task(tmp_path) -> None:
    """Bright disc vs texture: training loss falls and held-out AUROC is near 1."""
    cfg = _cfg(backbone="efficientnet_lite0", weights="imagenet", epochs=5)
    res = train_classifier(cfg, Blobs(48, seed=10, augment=True), Blobs(24, seed=1), tmp_path,
                           seed=0, progress=False)
    losses = [h["loss"] for h in res.history]
    assert len(losses) == 5 and res.finished
    assert losses[-1] < 0.5 * losses[0], losses
    assert res.best_epoch == train_mod.best_epoch_of(res.history)
    model, meta = load_classifier(res.best_path)
    assert meta["best_epoch"] == res.best_epoch and meta["input_shape"] == [1, 128, 64]
    test = Blobs(30, seed=2)
    prob = predict_proba(model, test, batch_size=8, device="cpu")
    assert roc_auc_score(test.labels, prob.numpy()) >= 0.95
    for rec in res.history:
        assert set(rec) >= {"epoch", "loss", "val_loss", "val_auroc", "val_ap", "seconds"}


def _states_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_killed_and_resumed_run_equals_uninterrupted(tmp_path) -> None:
    cfg = _cfg(epochs=3)
    train, val = Blobs(20, augment=True), Blobs(9, seed=1)
    straight = train_classifier(cfg, train, val, tmp_path / "a", seed=3, progress=False)
    killed = train_classifier(cfg, train, val, tmp_path / "b", seed=3, progress=False,
                              stop_after=2)
    assert not killed.finished and len(killed.history) == 2
    torch.manual_seed(123)  # a resumed process starts with other global RNG states
    np.random.seed(123)
    resumed = train_classifier(cfg, train, val, tmp_path / "b", seed=3, progress=False)
    assert resumed.finished and [h["epoch"] for h in resumed.history] == [1, 2, 3]
    a = torch.load(straight.last_path, weights_only=True)
    b = torch.load(resumed.last_path, weights_only=True)
    assert _states_equal(a["model"], b["model"])
    for x, y in zip(a["optimizer"]["state"].values(), b["optimizer"]["state"].values()):
        assert torch.equal(x["momentum_buffer"], y["momentum_buffer"])
    strip = [{k: v for k, v in h.items() if k != "seconds"} for h in straight.history]
    assert strip == [{k: v for k, v in h.items() if k != "seconds"} for h in resumed.history]
    assert straight.best_epoch == resumed.best_epoch
    assert _states_equal(torch.load(straight.best_path, weights_only=True)["model"],
                         torch.load(resumed.best_path, weights_only=True)["model"])


def test_finished_run_is_not_retrained_and_can_be_extended(tmp_path, monkeypatch) -> None:
    train, val = Blobs(12, augment=True), Blobs(6, seed=1)
    first = train_classifier(_cfg(epochs=1), train, val, tmp_path, seed=0, progress=False)
    stamp = first.last_path.stat().st_mtime_ns

    def boom(*a, **k):
        raise AssertionError("retrained a finished run")

    monkeypatch.setattr(train_mod, "train_epoch", boom)
    again = train_classifier(_cfg(epochs=1), train, val, tmp_path, seed=0, progress=False)
    assert again.history == first.history and first.last_path.stat().st_mtime_ns == stamp
    monkeypatch.undo()
    longer = train_classifier(_cfg(epochs=2), train, val, tmp_path, seed=0, progress=False)
    assert [h["epoch"] for h in longer.history] == [1, 2]
    assert longer.history[0] == first.history[0]
    with pytest.raises(CheckpointError, match="differently configured.*lr"):
        train_classifier(_cfg(epochs=3, lr=0.5), train, val, tmp_path, seed=0, progress=False)
    with pytest.raises(CheckpointError, match="seed"):
        train_classifier(_cfg(epochs=3), train, val, tmp_path, seed=1, progress=False)
    # the restart keys decide whether another attempt follows, not how one trains: a finished
    # attempt written without them is returned as it is
    monkeypatch.setattr(train_mod, "train_epoch", boom)
    same = train_classifier(_cfg(epochs=2, restarts=2, min_val_auroc=0.9), train, val, tmp_path,
                            seed=0, progress=False)
    assert same.history == longer.history


def test_balancing_modes() -> None:
    labels = [1] * 10 + [0] * 90
    gen = torch.Generator().manual_seed(0)
    ds = list(range(100))
    drawn = list(training.epoch_sampler(labels, _cfg(samples_per_epoch=20000), gen, ds))
    frac = np.mean([labels[i] for i in drawn])
    assert len(drawn) == 20000 and abs(frac - 0.5) < 0.02
    perm = list(training.epoch_sampler(labels, _cfg(balance="none"), gen, ds))
    assert sorted(perm) == ds  # a plain shuffle
    w = train_mod.class_weights(labels, _cfg(balance="loss"))
    torch.testing.assert_close(w, torch.tensor([100 / 180, 100 / 20]))
    assert train_mod.class_weights(labels, _cfg(balance="sampler")) is None


def test_single_class_validation_selects_on_loss(tmp_path) -> None:
    val = Subset(Blobs(12, seed=1), [1, 2, 4, 5, 7, 8])  # defect-free only
    res = train_classifier(_cfg(epochs=3, balance="loss"), Blobs(12, augment=True), val,
                           tmp_path, seed=0, progress=False)
    assert all(h["val_auroc"] is None and h["val_ap"] is None for h in res.history)
    losses = [h["val_loss"] for h in res.history]
    assert res.best_epoch == int(np.argmin(losses)) + 1


def test_best_epoch_rule() -> None:
    h = [{"epoch": 1, "val_auroc": 0.8, "val_loss": 0.3},
         {"epoch": 2, "val_auroc": 0.9, "val_loss": 0.6},
         {"epoch": 3, "val_auroc": 0.9, "val_loss": 0.5},
         {"epoch": 4, "val_auroc": None, "val_loss": 0.1}]
    assert train_mod.best_epoch_of(h) == 3  # highest AUROC, tie -> lower loss
    assert train_mod.best_epoch_of([{"epoch": 1, "val_auroc": None, "val_loss": 0.4},
                                    {"epoch": 2, "val_auroc": None, "val_loss": 0.2},
                                    {"epoch": 3, "val_auroc": None, "val_loss": math.nan}]) == 2
    none = [{"epoch": e, "val_auroc": None, "val_loss": None} for e in (1, 2, 3)]
    assert train_mod.best_epoch_of(none) == 3  # no validation set: last epoch


def test_no_validation_set_keeps_last(tmp_path) -> None:
    res = train_classifier(_cfg(epochs=2), Blobs(10), None, tmp_path, seed=0, progress=False)
    assert res.best_epoch == 2 and res.history[0]["val_loss"] is None


def test_predict_proba_is_softmax_in_order() -> None:
    from racam.models import build_classifier

    model = build_classifier("vgg16_narrow", width=16).eval()
    ds = Blobs(5)
    with torch.no_grad():
        ref = torch.stack([model(ds[i].image[None]).softmax(1)[0, 1] for i in range(5)])
    torch.testing.assert_close(predict_proba(model, ds, batch_size=2, device="cpu"), ref)


def test_bad_input(tmp_path) -> None:
    with pytest.raises(ConfigError, match="balance"):
        train_classifier(_cfg(balance="oversample"), Blobs(4), None, tmp_path, seed=0)
    with pytest.raises(DataError, match="expects"):
        train_classifier(_cfg(), Blobs(4, channels=3), None, tmp_path, seed=0)
    bad = Blobs(4)
    bad.labels[1] = 2
    with pytest.raises(DataError, match="labels must be 0"):
        train_classifier(_cfg(), bad, None, tmp_path, seed=0)
    with pytest.raises(DataError, match="empty"):
        train_classifier(_cfg(), Blobs(0), None, tmp_path, seed=0)


def test_warmup_cosine_run_resumes_exactly_and_logs_its_rates(tmp_path) -> None:
    """20 images, batch 8: 3 steps per epoch; 1 warm-up epoch then cosine over 2 epochs."""
    cfg = _cfg(epochs=3, warmup_epochs=1, schedule="cosine", lr=0.02)
    train, val = Blobs(20, augment=True), Blobs(9, seed=1)
    straight = train_classifier(cfg, train, val, tmp_path / "a", seed=3, progress=False)
    # the rate after each epoch's last step: end of warm-up, cosine at 3/6 and 6/6 of the decay
    lrs = [h["lr"] for h in straight.history]
    assert lrs == pytest.approx([0.02, 0.02 * 0.5 * (1 + math.cos(math.pi * 2 / 6)),
                                 0.02 * 0.5 * (1 + math.cos(math.pi * 5 / 6))])
    train_classifier(cfg, train, val, tmp_path / "b", seed=3, progress=False, stop_after=1)
    resumed = train_classifier(cfg, train, val, tmp_path / "b", seed=3, progress=False)
    a = torch.load(straight.last_path, weights_only=True)
    b = torch.load(resumed.last_path, weights_only=True)
    assert _states_equal(a["model"], b["model"])
    plain = train_classifier(_cfg(epochs=1, lr=0.02), train, val, tmp_path / "c", seed=3,
                             progress=False)
    assert plain.history[0]["lr"] == 0.02
    assert plain.history[0]["loss"] != straight.history[0]["loss"]  # warm-up changed epoch 1


def test_divergence_stops_training_and_keeps_the_best_epoch_before(tmp_path, monkeypatch) -> None:
    """Epoch 3's loss is NaN (a real NaN: its images are NaN): training stops there, best.pt is
    the best of epochs 1-2 by validation, last.pt records it, a rerun trains nothing more, and
    the restart rule sees the kept epoch. Diverging in epoch 1 leaves nothing to keep: error."""
    from racam.checkpoint import load_checkpoint
    from racam.classifier.restarts import train_until_learned
    from racam.errors import TrainingDiverged

    real = train_mod.train_epoch

    def poisoned(model, loader, st, epoch, progress):
        if epoch == 3:
            loader = [_with_images(b, float("nan")) for b in loader]
        return real(model, loader, st, epoch, progress)

    monkeypatch.setattr(train_mod, "train_epoch", poisoned)
    cfg = _cfg(epochs=5)
    said: list[str] = []
    res, attempts = train_until_learned(cfg, Blobs(24, seed=3, augment=True), Blobs(12, seed=4),
                                        tmp_path, seed=0, log=said.append, progress=False)
    assert res.diverged_at == 3 and [h["epoch"] for h in res.history] == [1, 2]
    assert res.best_epoch == train_mod.best_epoch_of(res.history)
    assert load_checkpoint(res.best_path)["epoch"] == res.best_epoch
    assert load_checkpoint(res.last_path)["meta"]["diverged_at"] == 3
    assert attempts[0]["diverged_at"] == 3
    assert len(said) == 1 and "diverged at epoch 3" in said[0]
    monkeypatch.setattr(train_mod, "train_epoch", real)
    again = train_classifier(cfg, Blobs(24, seed=3, augment=True), Blobs(12, seed=4), tmp_path,
                             seed=0, progress=False)
    assert again.diverged_at == 3 and len(again.history) == 2  # nothing trained again

    def nan_at_once(model, loader, st, epoch, progress):
        return real(model, [_with_images(b, float("nan")) for b in loader], st,
                    epoch, progress)

    monkeypatch.setattr(train_mod, "train_epoch", nan_at_once)
    with pytest.raises(TrainingDiverged, match="diverged at epoch 1.*lower classifier.lr"):
        train_classifier(cfg, Blobs(24, seed=3), Blobs(12, seed=4), tmp_path / "b", seed=0,
                         progress=False)


def _with_images(batch, value: float):
    """``batch`` with every image pixel set to ``value``."""
    import dataclasses

    return dataclasses.replace(batch, images=torch.full_like(batch.images, value))
