"""The label-next list (issue 27 item 3) on a folder dataset of real KolektorSDD images: the
images ``train_masks_choice: typical`` would take first, then the defective training images
ranked by the disagreement of their pseudo-label and the weak network's mask (recomputed here
from the two mask files), deterministic, computed without any true mask file, and the top
``N`` is what ``train_masks_choice: ranked`` trains on."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import ksdd_folder, tiny_folder_overrides
from PIL import Image

from racam.config import load_config
from racam.engine import Engine
from racam.pseudo.labels import mask_filename
from racam.pseudo.ranking import TYPICAL_FIRST
from racam.stages.mixed_labels import chosen_ids, mixed_labels


def engine(root: Path, out: Path, **seg) -> Engine:
    over = tiny_folder_overrides(root, out)
    over.update({f"segmentation.{k}": v for k, v in seg.items()})
    return Engine(load_config("folder-example", over), progress=False, log=lambda _: None)


@pytest.fixture(scope="module")
def weak(ksdd_root, tmp_path_factory) -> tuple[Engine, Path, dict[str, list[str]]]:
    tmp = tmp_path_factory.mktemp("label-next")
    split = ksdd_folder(ksdd_root, tmp / "ds")
    pipe = engine(tmp / "ds", tmp / "run", train_masks="none")
    pipe.run()
    return pipe, tmp / "ds", split


def read(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path)) > 0


def test_list_ranks_the_defective_training_images_by_disagreement(weak) -> None:
    pipe, root, split = weak
    result = pipe.label_next.run(0)
    rows = result.ranked()
    train_defects = {s for s in split["train"] if s in split["defect"]}
    assert {r.id.split("/", 1)[1] for r in rows} == train_defects
    assert [r.rank for r in rows] == list(range(1, len(rows) + 1))
    for r in rows:  # the score from the two mask files, by hand
        a = read(Path(result.pseudo) / "masks" / mask_filename(r.id))
        b = read(Path(result.network_masks) / "masks" / mask_filename(r.id))
        union = np.logical_or(a, b).sum()
        want = 0.0 if union == 0 else 1 - np.logical_and(a, b).sum() / union
        assert r.score == r.disagreement == pytest.approx(want, abs=1e-6)
        assert (r.pseudo_pixels, r.network_pixels) == (a.sum(), b.sum())
    head = rows[:TYPICAL_FIRST]
    assert [r.typical_pick for r in head] == list(range(1, TYPICAL_FIRST + 1))
    assert all(r.typical_pick is None for r in rows[TYPICAL_FIRST:])
    typical = engine(root, pipe.out, train_masks=TYPICAL_FIRST,
                     train_masks_choice="typical")
    _, chosen, _ = chosen_ids(typical.ctx, 0, classifier=typical.classifier_stage.model)
    assert sorted(r.id for r in head) == chosen  # the head is the typical choice
    order = [(-r.score, r.classifier_prob, r.id) for r in rows[TYPICAL_FIRST:]]
    assert order == sorted(order)
    # the classifier's defect probability of the first image, by hand
    ds = pipe.data(0).train_all
    i = next(k for k, rec in enumerate(ds.records) if rec.id == rows[0].id)
    with torch.no_grad():
        p = pipe.model(0)(ds[i].image[None]).float().softmax(1)[0, 1].item()
    assert rows[0].classifier_prob == pytest.approx(p, abs=1e-5)
    with (pipe.fold_dir(0) / "label-next.csv").open() as f:
        stored = list(csv.DictReader(f))
    assert [(int(s["rank"]), s["id"], float(s["score"])) for s in stored] == \
        [(r.rank, r.id, r.score) for r in rows]


def test_the_networks_agreement_with_its_labels_is_pooled_from_the_mask_files(weak) -> None:
    """The run's label-free agreement figure equals the pooled IoU of the two mask folders
    over the listed images, counted here from the files; results.json and the report carry
    it."""
    from racam.pseudo.ranking import network_agreement

    pipe, _, _ = weak
    result = pipe.label_next.run(0)
    inter = union = 0
    for r in result.ranked():
        a = read(Path(result.pseudo) / "masks" / mask_filename(r.id))
        b = read(Path(result.network_masks) / "masks" / mask_filename(r.id))
        inter += int(np.logical_and(a, b).sum())
        union += int(np.logical_or(a, b).sum())
    assert union > 0
    assert network_agreement(result.ranked()) == pytest.approx(inter / union, abs=1e-5)
    stored = json.loads((pipe.out / "results.json").read_text())["network_agreement"]
    assert stored == {"0": pytest.approx(inter / union, abs=1e-5)}
    report = (pipe.out / "run-report.md").read_text()
    assert f"fold 0 {100 * inter / union:.1f} %" in report


def test_no_agreement_without_defect_pixels() -> None:
    from racam.pseudo.ranking import LabelNextRow, network_agreement

    empty = LabelNextRow(rank=1, id="a", image="a.png", score=0.0, disagreement=0.0,
                         classifier_prob=0.9, pseudo_pixels=0, network_pixels=0)
    assert network_agreement([empty]) is None and network_agreement([]) is None
    half = LabelNextRow(rank=2, id="b", image="b.png", score=0.5, disagreement=0.5,
                        classifier_prob=0.9, pseudo_pixels=4, network_pixels=2)
    assert network_agreement([empty, half]) == pytest.approx(0.5)  # 2 shared of 4


def test_list_is_deterministic_and_reads_no_mask_file(weak) -> None:
    """With the dataset's ``masks/`` moved away (the engine keeps the records it read before,
    so a mask read would fail), the list and the network's masks are computed again and come
    out the same."""
    pipe, root, _ = weak
    before = pipe.label_next.run(0)
    stored = pipe.fold_dir(0) / "label-next"
    shutil.rmtree(stored)
    shutil.rmtree(before.network_masks)
    (root / "masks").rename(root / "masks-away")
    try:
        again = pipe.label_next.run(0)
    finally:
        (root / "masks-away").rename(root / "masks")
    assert Path(again.network_masks).is_dir()
    assert len(before.rows) == 7 and again.rows == before.rows


def test_a_list_of_an_older_rule_is_listed_again_not_refused(weak, monkeypatch) -> None:
    """A run folder made by a racam whose list rule differed (its stored key names another
    ``label_next`` rule) gets the list again, instead of a refusal that asks the user to delete
    racam's own folder; the rows are the same ones the stored rule gave here."""
    import racam.stages.label_next as stage

    pipe, _, _ = weak
    before = pipe.label_next.run(0)
    path = next((pipe.fold_dir(0) / "label-next").glob("*/result.json"))
    stored = json.loads(path.read_text())
    stored["key"]["label_next"] = "an-older-rule"
    path.write_text(json.dumps(stored))
    said: list[str] = []
    monkeypatch.setattr(pipe.ctx, "log", said.append)
    again = pipe.label_next.run(0)
    assert any("label-next list: computed again, its config changed (label_next:" in s
               for s in said)
    assert json.loads(path.read_text())["key"]["label_next"] == stage.RULE
    assert again.rows == before.rows


def test_ranked_choice_trains_on_the_top_n(weak) -> None:
    pipe, root, _ = weak
    top = [r["id"] for r in pipe.label_next.run(0).rows[:3]]
    weak_net = Path(pipe.segmentation(0).checkpoint)
    stamp = weak_net.stat().st_mtime_ns
    ranked = engine(root, pipe.out, train_masks=3, train_masks_choice="ranked")
    _, chosen = mixed_labels(ranked.ctx, 0, ranked.pseudo_dir(0), ranked.seg.ranking)
    assert chosen.ids == sorted(top) and chosen.choice == "ranked"
    results = ranked.run()
    assert ranked.stages_computed == 1  # the mixed network; the classifier, labels, list reused
    assert weak_net.stat().st_mtime_ns == stamp
    assert results.train_masks[0]["ids"] == sorted(top)
    assert [r["id"] for r in results.label_next[0][:3]] == top
    report = (pipe.out / "run-report.md").read_text()
    assert "## Which defective images to outline next" in report
    assert f"| 1 | `{top[0]}` |" in report


def test_identical_images_are_listed_once(ksdd_root, tmp_path) -> None:
    """KolektorSDD's kos26 is a second copy of kos01 (same file bytes, checked here): the list
    names the copy at the best place of the two, saved as PNG so that only the pixels match."""
    import hashlib

    from racam.data.io import Record
    from racam.pseudo.ranking import rank_for_labelling

    a, b = ksdd_root / "kos01" / "Part5.jpg", ksdd_root / "kos26" / "Part5.jpg"
    assert hashlib.md5(a.read_bytes()).digest() == hashlib.md5(b.read_bytes()).digest()
    shutil.copyfile(a, tmp_path / "a.jpg")
    Image.open(b).save(tmp_path / "b.png")  # other format, other bytes, same pixels
    shutil.copyfile(ksdd_root / "kos02" / "Part6.jpg", tmp_path / "c.jpg")
    recs = [Record(k, tmp_path / f, None, 1, k) for k, f in
            [("a", "a.jpg"), ("b", "b.png"), ("c", "c.jpg")]]
    w, h = Image.open(tmp_path / "a.jpg").size
    net = np.zeros((h, w), bool)
    net[10:20, 10:20] = True
    pseudo = {"a": net, "b": np.zeros_like(net), "c": net.copy()}  # b disagrees most
    pseudo["c"][10:15, 10:20] = False                               # c half
    for sub, masks in [("pseudo", pseudo), ("net", {k: net for k in pseudo})]:
        (tmp_path / sub / "masks").mkdir(parents=True)
        for k, m in masks.items():
            Image.fromarray(m.astype(np.uint8) * 255).save(
                tmp_path / sub / "masks" / mask_filename(k))
    rows = rank_for_labelling(recs, [1, 1, 1], tmp_path / "pseudo", tmp_path / "net",
                              {"a": 0.9, "b": 0.9, "c": 0.9})
    assert [(r.rank, r.id, r.copies, r.disagreement) for r in rows] == \
        [(1, "b", "a", 1.0), (2, "c", "", 0.5)]
