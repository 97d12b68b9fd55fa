"""Dataset registry, the data-root rule and the scikit-learn stratified split."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import TINY_CFG
from torch.utils.data import Dataset

from racam.config import DataConfig, load_config
from racam.data import registry
from racam.data.io import Record
from racam.data.sample import Sample
from racam.data.spec import DatasetSpec, InfoOptions
from racam.data.stratify import class_quota, per_class_split, stratified_split
from racam.data.summary import detect_dataset, summarize
from racam.errors import ConfigError
from racam.layout import fold_list
from racam.stages.folds import fold_datasets, resolve_root

# ---------------------------------------------------------------- registry


def test_registry_lists_the_three_datasets() -> None:
    assert registry.names()[:3] == ["ksdd", "ksdd2", "folder"]
    assert registry.get("ksdd").root_subdir == "KolektorSDD"
    assert registry.get("ksdd2").root_subdir == "KolektorSDD2"
    assert registry.get("folder").root_subdir is None
    with pytest.raises(ConfigError, match="unknown dataset 'mnist'; choose one of ksdd, ksdd2"):
        registry.get("mnist")
    with pytest.raises(ConfigError, match=r"data\.dataset: unknown dataset 'mnist'"):
        load_config(TINY_CFG, {"data.dataset": "mnist"})


class ToyDataset(Dataset):
    """12 training and 6 test images, every third one defective; no files on disk."""

    def __init__(self, split: str, size: tuple[int, int]) -> None:
        n = {"train": 12, "test": 6}
        parts = ("train", "test") if split == "all" else (split,)
        items = [(f"{p}{i}", int(i % 3 == 0)) for p in parts for i in range(n[p])]
        self.labels = [label for _, label in items]
        self.records = [Record(id=name, image_path=Path(f"{name}.png"), mask_path=None,
                               label=label, group=name) for name, label in items]
        self.size = size

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> Sample:
        w, h = self.size
        return Sample(torch.full((1, h, w), float(self.labels[i])), self.labels[i],
                      self.records[i].id, (w, h))

    def true_mask(self, i: int):
        return None


class ToySpec(DatasetSpec):
    name = "toy"
    description = "test data made up in memory"
    root_subdir = "Toy"

    def load(self, cfg, root, *, fold, split, augment, seed):
        return ToyDataset(split, tuple(cfg.size))

    def folds(self, cfg):
        return list(cfg.folds)

    def detect(self, root):
        return (root / "toy.marker").exists()


@pytest.fixture
def toy():
    spec = registry.register(ToySpec())
    yield spec
    registry.unregister("toy")


def test_a_registered_toy_dataset_runs_through_the_pipeline_pieces(toy, tmp_path,
                                                                   monkeypatch) -> None:
    monkeypatch.setenv("RACAM_DATA", str(tmp_path))
    assert "toy" in registry.names()
    with pytest.raises(ConfigError, match="already registered"):
        registry.register(ToySpec())
    cfg = load_config(TINY_CFG, {"data.dataset": "toy", "data.root": None, "data.folds": [1, 2],
                               "data.size": [4, 6], "data.plan": "off"}).data
    assert resolve_root(cfg) == tmp_path / "Toy"
    assert fold_list(cfg) == [1, 2]
    fd = fold_datasets(cfg, fold=1, seed=0)
    assert fd.fold == 1 and len(fd.train_all) == 12 and len(fd.test) == 6
    # val_fraction 0.15 of 8 defect-free and 4 defective: round(1.2) = 1 and round(0.6) = 1
    assert sorted(fd.val.labels) == [0, 1] and len(fd.train) == 10
    assert fd.train[0].image.shape == (1, 6, 4)
    rows = summarize(tmp_path, "toy")
    assert [(r.name, r.images, r.defective) for r in rows] == [
        ("all", 18, 6), ("train", 12, 4), ("test", 6, 2)]
    (tmp_path / "toy.marker").touch()
    assert detect_dataset(tmp_path) == "toy"
    assert detect_dataset(tmp_path / "elsewhere") == "ksdd"


def test_data_info_reads_the_registry(toy, tmp_path) -> None:
    from typer.testing import CliRunner

    from racam.cli import app

    result = CliRunner().invoke(app, ["data", "info", str(tmp_path), "--dataset", "toy"])
    assert result.exit_code == 0, result.output
    assert "toy at" in result.output and "18" in result.output
    result = CliRunner().invoke(app, ["data", "info", str(tmp_path), "--dataset", "toy",
                                      "--split-file", "x.pyb"])
    assert isinstance(result.exception, ConfigError)
    assert "--split-file applies to ksdd only, not toy" in str(result.exception)


# ---------------------------------------------------------------- data root


def test_missing_root_names_data_root_and_racam_data(monkeypatch, tmp_path) -> None:
    monkeypatch.delenv("RACAM_DATA", raising=False)
    with pytest.raises(ConfigError) as err:
        resolve_root(DataConfig(dataset="ksdd", root=None))
    text = str(err.value)
    assert "data.root" in text and "RACAM_DATA" in text and "KolektorSDD" in text
    monkeypatch.setenv("RACAM_DATA", "")  # empty counts as not set
    with pytest.raises(ConfigError, match="RACAM_DATA"):
        resolve_root(DataConfig(dataset="ksdd2", root=None))
    with pytest.raises(ConfigError, match="data.root: required for dataset 'folder'"):
        resolve_root(DataConfig(dataset="folder", root=None))
    # an explicit root, the bundled sample and $RACAM_DATA need nothing else
    assert resolve_root(DataConfig(dataset="ksdd", root=str(tmp_path))) == tmp_path
    sample = resolve_root(DataConfig(dataset="ksdd", root="builtin:ksdd_sample"))
    assert (sample / "splits" / "demo_split.pyb").is_file()
    monkeypatch.setenv("RACAM_DATA", str(tmp_path))
    assert resolve_root(DataConfig(dataset="ksdd2")) == tmp_path / "KolektorSDD2"


def test_demo_needs_no_data_folder(monkeypatch) -> None:
    monkeypatch.delenv("RACAM_DATA", raising=False)
    cfg = load_config(TINY_CFG)
    fd = fold_datasets(cfg.data, fold_list(cfg.data)[0], cfg.seed)
    assert len(fd.train_all) == 72 and sum(fd.val.labels) >= 1


def test_the_package_has_no_development_data_default() -> None:
    import racam.stages.folds as folds

    src = Path(folds.__file__).read_text() + Path(registry.__file__).read_text()
    assert "\"shared\"" not in src and not hasattr(folds, "DEFAULT_DATA")


# ---------------------------------------------------------------- stratified split


def test_split_is_stratified_seeded_and_drawn_by_scikit_learn(monkeypatch) -> None:
    labels = np.random.default_rng(5).permutation([0] * 90 + [1] * 30).tolist()
    rest, picked = stratified_split(labels, 0.2, seed=3)
    assert sorted(rest + picked) == list(range(120)) and rest == sorted(rest)
    assert sum(labels[i] for i in picked) == 6 and len(picked) == 24  # 18 + 6
    assert stratified_split(labels, 0.2, seed=3) == (rest, picked)
    assert stratified_split(labels, 0.2, seed=4) != (rest, picked)
    assert stratified_split(labels, 0.0, seed=3) == (list(range(120)), [])

    from sklearn.model_selection import StratifiedShuffleSplit

    calls = []
    split = StratifiedShuffleSplit.split

    def counted(self, *args, **kwargs):
        calls.append(self)
        return split(self, *args, **kwargs)

    monkeypatch.setattr(StratifiedShuffleSplit, "split", counted)
    assert stratified_split(labels, 0.2, seed=3) == (rest, picked)
    assert len(calls) == 1 and calls[0].n_splits == 1 and calls[0].train_size == 24


@pytest.mark.parametrize("fraction", [0.1, 0.15, 0.3, 0.7])
def test_split_equals_the_earlier_per_class_split(fraction) -> None:
    """Every split is the one earlier racam versions made (per_class_split is that code)."""
    for n0 in range(1, 41, 3):
        for n1 in range(1, 23, 2):
            labels = np.random.default_rng(n0 * 100 + n1).permutation([0] * n0 + [1] * n1)
            for seed in (0, 1):
                rest, picked = stratified_split(labels.tolist(), fraction, seed)
                assert (rest, picked) == per_class_split(labels.tolist(), fraction, seed)
                got = [int((labels[picked] == c).sum()) for c in (0, 1)]
                assert got == class_quota(np.array([n0, n1]), fraction).tolist()


def test_quota_keeps_one_of_each_class_on_each_side() -> None:
    assert class_quota(np.array([3, 2]), 0.9).tolist() == [2, 1]
    assert class_quota(np.array([100, 2]), 0.1).tolist() == [10, 1]
    assert class_quota(np.array([1, 5]), 0.3).tolist() == [0, 2]
    rest, picked = stratified_split([1, 1, 0, 0, 0], 0.9, seed=0)
    assert {0, 1} <= {[1, 1, 0, 0, 0][i] for i in rest}
    assert {0, 1} <= {[1, 1, 0, 0, 0][i] for i in picked}


#: Validation images held out by ``ksdd-cpu`` / ``ksdd-paper`` (seed 0) of each fold's 263-271
#: training images, as racam drew them before the split used scikit-learn.
KSDD_HELD_OUT = {
    0: [0, 7, 10, 20, 28, 42, 45, 59, 69, 74, 77, 79, 80, 84, 86, 93, 96, 106, 112, 114, 116, 117,
        124, 155, 163, 168, 176, 184, 191, 195, 217, 227, 234, 239, 247, 249, 251, 253, 261],
    1: [1, 5, 8, 9, 15, 16, 22, 24, 28, 33, 49, 60, 72, 89, 90, 92, 99, 101, 118, 121, 122, 136,
        140, 145, 146, 154, 155, 160, 164, 171, 172, 179, 188, 198, 208, 209, 225, 256, 259],
    2: [12, 30, 45, 48, 55, 59, 60, 61, 67, 77, 89, 98, 102, 119, 127, 129, 131, 133, 136, 141,
        145, 158, 159, 161, 169, 173, 178, 185, 194, 196, 199, 216, 233, 242, 248, 249, 262, 264,
        267, 268],
}


@pytest.mark.data
def test_ksdd_validation_images_are_unchanged(ksdd_root) -> None:
    cfg = load_config("ksdd-cpu", {"data.root": str(ksdd_root)})
    assert cfg.data.val_fraction == 0.15 and cfg.seed == 0
    for fold in fold_list(cfg.data):
        fd = fold_datasets(cfg.data, fold, cfg.seed)
        assert fd.val.indices == KSDD_HELD_OUT[fold]
        for seed in (1, 2):  # other seeds: the earlier algorithm's draw as well
            labels = fd.train_all.labels
            assert stratified_split(labels, 0.15, seed + fold) == \
                per_class_split(labels, 0.15, seed + fold)


def test_summary_options_default_split_file() -> None:
    sample = registry.BUILTIN_ROOTS["builtin:ksdd_sample"]
    info = registry.get("ksdd").summarize(sample, InfoOptions())
    assert info.note == "split file demo_split.pyb"
    assert [r.name for r in info.rows] == ["all", "fold 0 / train", "fold 0 / test"]
    assert [r.name for r in summarize(sample, "ksdd")] == ["all"]  # None: no split file
