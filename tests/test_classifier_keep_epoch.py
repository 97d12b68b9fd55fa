"""``classifier.keep_epoch: pseudo_area``: of the epochs within ``keep_tolerance`` of the best
validation AUROC, the one whose pseudo-labels mark the least of the defective training images is
kept (:mod:`racam.classifier.epochs`), and every reader of the stage uses its weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import TINY_CFG, count_label_heat_maps
from PIL import Image

from racam.classifier.epochs import eligible_epochs, epoch_path, keep_smallest_area, may_keep
from racam.classifier.restarts import chosen_checkpoint
from racam.config import load_config
from racam.engine import Engine
from racam.errors import ConfigError
from racam.io import read_json
from racam.pseudo.stash import STASH_DIR


def _history(aurocs: list[float | None]) -> list[dict]:
    return [{"epoch": e, "val_auroc": a} for e, a in enumerate(aurocs, start=1)]


def test_eligible_epochs_are_those_within_the_tolerance_of_the_best_auroc() -> None:
    h = _history([0.70, 0.94, 0.97, 0.96, 0.93])
    assert eligible_epochs(h, 0.0) == [3]
    assert eligible_epochs(h, 0.02) == [3, 4]
    assert eligible_epochs(h, 0.03) == [2, 3, 4]  # the floor itself is eligible
    assert eligible_epochs(h, 0.04) == [2, 3, 4, 5]
    assert eligible_epochs(_history([None, None]), 0.02) == [1, 2]  # no AUROC: every epoch
    # during training: an epoch is stored while it is within the tolerance of the best so far
    assert [may_keep(h[:k], 0.02) for k in range(1, 6)] == [True, True, True, True, False]


def test_the_smallest_area_is_kept_and_epochs_that_cannot_be_kept_are_removed(tmp_path) -> None:
    for e in (1, 2, 3, 4):
        epoch_path(tmp_path, e).parent.mkdir(exist_ok=True)
        epoch_path(tmp_path, e).write_bytes(bytes([e]))
    (tmp_path / "best.pt").write_bytes(b"best")
    h = _history([0.70, 0.96, 0.97, 0.95])
    area = {2: 0.03, 3: 0.02, 4: 0.01}
    scored: list[int] = []

    def score(p):
        scored.append(p.read_bytes()[0])
        return area[p.read_bytes()[0]]

    choice = keep_smallest_area(tmp_path, h, 3, 0.02, score)
    assert sorted(scored) == [2, 3, 4]  # epoch 1 (AUROC 0.70) is not eligible
    assert (choice.epoch, choice.by_auroc, choice.path) == (4, 3, epoch_path(tmp_path, 4))
    assert choice.areas == {2: 0.03, 3: 0.02, 4: 0.01}
    assert choice.to_json()["file"] == "epochs/epoch4.pt"
    assert not epoch_path(tmp_path, 1).exists()  # not eligible: removed
    assert all(epoch_path(tmp_path, e).exists() for e in (2, 3, 4))
    assert (tmp_path / "best.pt").read_bytes() == b"best"  # best.pt is never touched


def test_best_pt_stands_for_the_best_epoch_when_its_file_is_missing(tmp_path) -> None:
    (tmp_path / "best.pt").write_bytes(b"x")
    choice = keep_smallest_area(tmp_path, _history([0.9, 0.8]), 1, 0.02, lambda p: 0.5)
    assert (choice.epoch, choice.path) == (1, tmp_path / "best.pt")
    assert choice.to_json()["file"] == "best.pt"


def test_keep_epoch_is_checked() -> None:
    with pytest.raises(ConfigError, match="keep_epoch"):
        load_config(TINY_CFG, {"classifier.keep_epoch": "smallest"})


def test_the_pipeline_keeps_the_epoch_with_the_smallest_pseudo_label_area(tmp_path, monkeypatch
                                                                           ) -> None:
    cfg = load_config(TINY_CFG, {"output": str(tmp_path), "device": "cpu", "data.size": [64, 160],
                               "classifier.epochs": 3, "classifier.samples_per_epoch": 16,
                               "classifier.keep_epoch": "pseudo_area",
                               "classifier.keep_tolerance": 1.0,  # every epoch eligible
                               "cam.pseudo_threshold": "otsu2"})
    said: list[str] = []
    engine = Engine(cfg, progress=False, log=said.append)
    res = engine.train_classifier()[0]
    choice = res.epoch_choice
    assert choice is not None and sorted(choice["areas"]) == ["1", "2", "3"]
    areas = {int(e): a for e, a in choice["areas"].items()}
    assert len(set(areas.values())) == 3 and all(0 < a < 1 for a in areas.values())
    kept = min(areas, key=areas.__getitem__)
    assert choice["epoch"] == kept == res.best_epoch
    folder = engine.fold_dir(0) / "classifier"
    assert res.checkpoint == str(epoch_path(folder, kept))
    assert chosen_checkpoint(folder) == epoch_path(folder, kept)  # predict and bundles
    assert any(f"kept classifier epoch {kept}" in s for s in said)
    # the epoch file of the AUROC epoch holds best.pt's weights
    by_auroc = torch.load(epoch_path(folder, choice["by_auroc"]), weights_only=False)["model"]
    best = torch.load(folder / "best.pt", weights_only=False)["model"]
    assert all(torch.equal(by_auroc[k], best[k]) for k in best)
    # each scored epoch's masks are kept apart, and the stage reuses the kept one's
    assert sorted(p.name for p in (folder / "epochs" / STASH_DIR).iterdir()) == [
        "epoch1", "epoch2", "epoch3"]
    computed = count_label_heat_maps(monkeypatch)
    # the kept area is the mean share of the masks the pseudo-label stage writes
    engine.pseudo_labels([0])
    assert computed == [] and any("are reused" in s for s in said)
    manifest = read_json(engine.pseudo_dir(0) / "manifest.json")
    shares = [(np.asarray(Image.open(engine.pseudo_dir(0) / it["mask"])) > 0).mean()
              for it in manifest["images"] if it["label"] == 1]
    assert areas[kept] == pytest.approx(float(np.mean(shares)), rel=1e-12)
    assert manifest["checkpoint"] == res.checkpoint


def test_changed_cam_options_choose_the_epoch_again_without_training_again(tmp_path) -> None:
    """The kept epoch depends on the pseudo-labels' config: a run folder whose ``cam`` changed
    scores the stored epochs again under the new options (no epoch is trained again, the
    classifier's files stay as they are) and keeps the smallest area among them, where the
    old choice would have been reused silently before."""
    over = {"output": str(tmp_path), "device": "cpu", "data.size": [64, 160],
            "classifier.epochs": 3, "classifier.samples_per_epoch": 16,
            "classifier.keep_epoch": "pseudo_area", "classifier.keep_tolerance": 1.0,
            "cam.pseudo_threshold": "otsu2"}
    engine = Engine(load_config(TINY_CFG, over), progress=False)
    first = engine.train_classifier()[0]
    engine.pseudo_labels([0])
    folder = tmp_path / "fold0" / "classifier"
    def stamps() -> dict[str, tuple[bytes, int]]:  # a file trained again is written again
        files = [folder / "last.pt", folder / "best.pt", *(folder / "epochs").glob("*.pt")]
        return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(files)}

    weights = stamps()
    said: list[str] = []
    engine = Engine(load_config(TINY_CFG, {**over, "cam.delta": 0, "cam.fusion": "mean"}),
                    progress=False, log=said.append)
    engine.check_stored()  # the preflight does not refuse it
    again = engine.train_classifier()[0]
    assert any("classifier: computed again, its config changed (cam." in s for s in said)
    assert stamps() == weights  # no epoch trained or written again
    assert again.history == first.history
    # the training time stays the stage's: a reproduction's profile counts both computations
    assert first.seconds is not None and again.replaced_seconds == [first.seconds]
    areas = {int(e): a for e, a in again.epoch_choice["areas"].items()}
    assert areas != {int(e): a for e, a in first.epoch_choice["areas"].items()}
    assert again.best_epoch == min(areas, key=areas.__getitem__)
    assert read_json(folder / "result.json")["key"]["cam"]["fusion"] == "mean"
    # finished pseudo-labels of another fusion (a folder name that does not hold it) are
    # refused before any epoch is scored again
    fused = Engine(load_config(TINY_CFG, {**over, "cam.fusion": "mean"}), progress=False)
    with pytest.raises(ConfigError, match="pseudo.*cam.fusion: 'max' stored, 'mean' now"):
        fused.check_stored()
    # the data and classifier sections still refuse a stored result computed otherwise
    with pytest.raises(ConfigError, match="classifier.lr"):
        Engine(load_config(TINY_CFG, {**over, "classifier.lr": 0.5}), progress=False
               ).train_classifier()


def test_the_report_states_the_epoch_choice_and_its_evidence() -> None:
    from racam.report.tables import classifier_notes
    from racam.stages.classifier import ClassifierSummary

    choice = {"epoch": 3, "file": "epochs/epoch3.pt", "by_auroc": 6, "tolerance": 0.1,
              "areas": {"3": 0.011, "4": 0.0118, "6": 0.0161}}
    stored = ClassifierSummary(0.99, 0.9, 3, 10.0, epoch_choice=choice).to_json()
    assert ClassifierSummary.from_json(stored).epoch_choice == choice
    (note,) = classifier_notes("Fold 0", stored)
    assert note.startswith("Fold 0: the classifier kept epoch 3 (epoch 6 has the best validation")
    assert "within 0.1 of that AUROC" in note
    assert "epoch 3: 1.10 % (kept), epoch 4: 1.18 %, epoch 6: 1.61 %" in note
