"""Mixed supervision (``segmentation.train_masks``, issue 27 item 1) on a folder dataset of real
KolektorSDD images: the mixed label folder holds exactly the true masks (read from the copied
KolektorSDD label files) of the chosen training images and the pseudo-labels elsewhere, test
images never give a mask, the random choice is seeded, and ``none`` keeps the old names and
keys."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import ksdd_folder, tiny_folder_overrides
from PIL import Image

from racam.config import load_config
from racam.data import read_mask
from racam.engine import Engine
from racam.layout import pseudo_key, segmentation_tag
from racam.pseudo.labels import mask_filename
from racam.pseudo.mixed import HeldOutLeak, check_held_out, choose_images, write_mixed_labels
from racam.pseudo.ranking import RULE
from racam.segmentation.losses import IGNORE_INDEX, segmentation_loss
from racam.stages.mixed_labels import mixed_labels
from racam.stages.pseudo_labels import pseudo_quality


@pytest.fixture(scope="module")
def folder(ksdd_root, tmp_path_factory) -> tuple[Path, dict[str, list[str]], Path]:
    tmp = tmp_path_factory.mktemp("mixed")
    split = ksdd_folder(ksdd_root, tmp / "ds")
    return tmp / "ds", split, tmp / "run"


def engine(folder, **seg) -> Engine:
    """folder-example on the small folder, with ``segmentation.<key>`` from ``seg``;
    ``train_masks_rest`` is ``pseudo`` and ``train_masks_choice`` ``random`` unless given
    (folder-example's own are ``ignore`` and ``typical``)."""
    root, _, out = folder
    seg.setdefault("train_masks_rest", "pseudo")
    seg.setdefault("train_masks_choice", "random")  # typical needs the engine's classifier
    over = tiny_folder_overrides(root, out)
    over.update({f"segmentation.{k}": v for k, v in seg.items()})
    return Engine(load_config("folder-example", over), progress=False, log=lambda _: None)


def true_mask(root: Path, stem: str) -> np.ndarray:
    """The oracle: the KolektorSDD label file copied into ``masks/``, nonzero = defect."""
    return np.asarray(Image.open(root / "masks" / f"{stem}.png")) > 0


def test_none_keeps_the_old_tag_and_key(folder) -> None:
    pipe = engine(folder, train_masks="none", train_masks_choice="ranked")
    cfg = pipe.cfg
    assert segmentation_tag(cfg) == f"unet-{pseudo_key(cfg)}" == "unet-racam-d50-sm1_1.5_2-otsu2"
    d, key = pipe.seg.path_key(0, "unet")
    assert d.name == "unet-racam-d50-sm1_1.5_2-otsu2"
    assert "train_masks" not in key["segmentation"]
    assert "train_masks_choice" not in key["segmentation"]
    plain = engine(folder, train_masks="none")  # the choice means nothing without a count
    assert plain.seg.path_key(0, "unet") == (d, key)
    for built_in in ("ksdd-cpu", "demo", "ksdd-paper"):
        c = load_config(built_in)
        assert c.segmentation.train_masks == "none"
        assert "-tm" not in segmentation_tag(c)
    assert load_config("folder-example").segmentation.train_masks == "all"
    assert load_config("folder-example").segmentation.train_masks_rest == "ignore"


def test_a_count_names_the_network_and_its_key(folder) -> None:
    pipe = engine(folder, train_masks=2)
    d, key = pipe.seg.path_key(0, "unet")
    assert d.name == "unet-racam-d50-sm1_1.5_2-otsu2-tm2-random"
    assert key["segmentation"]["train_masks"] == "2"
    assert "train_masks_choice" not in key["segmentation"]  # random: the earlier default
    assert load_config("folder-example").segmentation.train_masks_choice == "typical"
    typical = engine(folder, train_masks=2, train_masks_choice="typical").seg.path_key(0, "unet")
    assert typical[0].name == "unet-racam-d50-sm1_1.5_2-otsu2-tm2-typical"
    assert typical[1]["segmentation"]["train_masks_choice"] == "typical"
    ranked = engine(folder, train_masks=2, train_masks_choice="ranked").seg.path_key(0, "unet")
    assert ranked[0].name == "unet-racam-d50-sm1_1.5_2-otsu2-tm2-ranked"
    assert ranked[1]["segmentation"]["train_masks_choice"] == "ranked"
    assert ranked[1]["segmentation"]["train_masks_list"] == RULE  # a new list: a new key
    assert "train_masks_list" not in key["segmentation"]
    assert engine(folder, train_masks="all").seg.path_key(0, "unet")[0].name == \
        "unet-racam-d50-sm1_1.5_2-otsu2-tmall"
    true_dir, true_key = pipe.seg.path_key(0, "unet", "true")  # learns every mask anyway
    assert true_dir.name == "unet-true" and "train_masks" not in true_key["segmentation"]


def test_another_draw_seed_draws_other_images_in_its_own_folder(folder) -> None:
    from racam.stages.mixed_labels import chosen_ids

    run_seed = engine(folder, train_masks=3)
    again = engine(folder, train_masks=3, train_masks_seed=run_seed.cfg.seed)
    other = engine(folder, train_masks=3, train_masks_seed=run_seed.cfg.seed + 1)
    assert chosen_ids(again.ctx, 0) == chosen_ids(run_seed.ctx, 0)  # null: the run's seed
    assert chosen_ids(other.ctx, 0)[1] != chosen_ids(run_seed.ctx, 0)[1]
    eligible = [r.id for r, y in zip(other.data(0).train_all.records,
                                     other.data(0).train_all.labels) if y == 1]
    assert chosen_ids(other.ctx, 0) == (
        "random", choose_images(eligible, "3", "random", seed=run_seed.cfg.seed + 1 + 0), 7)
    d, key = other.seg.path_key(0, "unet")
    assert d.name == f"unet-racam-d50-sm1_1.5_2-otsu2-tm3-random-draw{run_seed.cfg.seed + 1}"
    assert key["segmentation"]["train_masks_seed"] == run_seed.cfg.seed + 1
    assert "train_masks_seed" not in run_seed.seg.path_key(0, "unet")[1]["segmentation"]


def test_mixed_folder_holds_the_chosen_true_masks_and_pseudo_labels_elsewhere(folder) -> None:
    root, split, _ = folder
    pipe = engine(folder, train_masks=3)
    pipe.pseudo_labels()
    base = pipe.pseudo_dir(0)
    out, chosen = mixed_labels(pipe.ctx, 0, base)
    assert out == base.with_name("racam-d50-sm1_1.5_2-otsu2-mixed-3-random")
    train_defects = [s for s in split["train"] if s in split["defect"]]
    stems = [i.split("/", 1)[1] for i in chosen.ids]
    assert len(stems) == 3 and set(stems) <= set(train_defects)
    assert chosen.eligible == len(train_defects) == 7
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["true_mask_ids"] == chosen.ids
    ids = [rec.id for rec in pipe.data(0).train_all.records]
    assert sorted(p.name for p in (out / "masks").iterdir()) == sorted(map(mask_filename, ids))
    for image_id in ids:
        got = read_mask(out / "masks" / mask_filename(image_id))
        if image_id in chosen.ids:
            want = true_mask(root, image_id.split("/", 1)[1])
            assert got.shape == want.shape and (got == want).all(), image_id
            assert want.any()
        else:
            pseudo = read_mask(base / "masks" / mask_filename(image_id))
            assert (got == pseudo).all(), image_id
    # the pseudo-labels' own score is not the mixed labels'
    fd = pipe.data(0)
    assert pseudo_quality(fd, base) != pseudo_quality(fd, out)


def test_all_takes_every_training_mask_and_never_a_test_mask(folder) -> None:
    _, split, _ = folder
    pipe = engine(folder, train_masks="all")
    pipe.pseudo_labels()
    _, chosen = mixed_labels(pipe.ctx, 0, pipe.pseudo_dir(0))
    stems = {i.split("/", 1)[1] for i in chosen.ids}
    assert stems == {s for s in split["train"] if s in split["defect"]}
    assert not stems & set(split["test"])


def test_test_images_never_give_masks(folder) -> None:
    pipe = engine(folder, train_masks="all")
    fd = pipe.data(0)
    test_defect = next(r.id for r, y in zip(fd.test.records, fd.test.labels) if y == 1)
    with pytest.raises(HeldOutLeak, match="test images"):
        check_held_out([test_defect], fd.train_all, fd.test)
    # a training record pointing at a test image's file is refused as well
    disguised = dataclasses.replace(fd.train_all.records[0],
                                    image_path=fd.test.records[0].image_path)
    fake = type("Train", (), {"records": [disguised] + fd.train_all.records[1:]})
    with pytest.raises(HeldOutLeak):
        check_held_out([disguised.id], fake, fd.test)
    out = pipe.pseudo_dir(0).with_name("leak-check")
    with pytest.raises(HeldOutLeak):
        write_mixed_labels(pipe.pseudo_dir(0), fd.train_all, [test_defect], out, test=fd.test,
                           key={})
    assert not out.exists() and not out.with_name("leak-check.partial").exists()


def test_random_choice_is_seeded() -> None:
    pool = [f"defect/d{i}" for i in range(20)]
    first = choose_images(pool, "5", "random", seed=3)
    assert first == choose_images(list(reversed(pool)), "5", "random", seed=3)
    assert len(first) == 5 and set(first) <= set(pool)
    assert len({tuple(choose_images(pool, "5", "random", seed=s)) for s in range(10)}) > 1
    assert choose_images(pool[:3], "5", "random", seed=3) == sorted(pool[:3])
    assert choose_images(pool, "3", "ranked", seed=0, ranking=pool[::-1]) == sorted(pool[-3:])


def test_run_trains_on_the_mixed_labels_and_reports_them(folder) -> None:
    pipe = engine(folder, train_masks=2)
    results = pipe.run()
    seg = pipe.segmentation(0)
    assert Path(seg.checkpoint).parent.name == "unet-racam-d50-sm1_1.5_2-otsu2-tm2-random"
    assert seg.train_masks is not None and seg.train_masks["count"] == 2
    again = engine(folder, train_masks=2)  # the same run again: the same images
    assert again.segmentation(0).train_masks == seg.train_masks
    stored = json.loads((pipe.out / "results.json").read_text())
    assert stored["train_masks"]["0"]["ids"] == seg.train_masks["ids"]
    # the list of this run's network leaves out the images labelled already
    listed = [r["id"] for r in stored["label_next"]["0"]]
    assert len(listed) == 7 - 2 and not set(listed) & set(seg.train_masks["ids"])
    # the pseudo-label row scores the pseudo-labels, not the mixed labels
    fd = pipe.data(0)
    assert results.pseudo_labels is not None
    from racam.evaluation.pooling import pooled
    assert results.pseudo_labels == pooled({0: pseudo_quality(fd, pipe.pseudo_dir(0))},
                                           lambda c: c)
    report = (pipe.out / "run-report.md").read_text()
    assert "## True masks in training" in report
    assert all(f"`{i}`" in report for i in seg.train_masks["ids"])
    assert "unet on pseudo-labels + 2 true masks" in report


def test_rest_ignore_leaves_the_other_defective_images_out_of_the_pixel_loss(folder) -> None:
    """``train_masks_rest: ignore``: the chosen images carry their true mask, the other
    defective training images an empty mask wholly in their ignore band (so the loss sees
    none of their pixels), the good images their own empty pseudo-label without a band; the
    setting names the folder and the network and enters the key."""
    from racam.pseudo.labels import PseudoLabelDataset

    root, split, _ = folder
    pipe = engine(folder, train_masks=2, train_masks_rest="ignore")
    d, key = pipe.seg.path_key(0, "unet")
    assert d.name == "unet-racam-d50-sm1_1.5_2-otsu2-tm2-random-restignore"
    assert key["segmentation"]["train_masks_rest"] == "ignore"
    assert "train_masks_rest" not in engine(folder, train_masks=2).seg.path_key(0, "unet")[1][
        "segmentation"]
    pipe.pseudo_labels()
    out, chosen = mixed_labels(pipe.ctx, 0, pipe.pseudo_dir(0))
    assert out.name.endswith("-mixed-2-random-restignore")
    train = pipe.data(0).train_all
    labels = PseudoLabelDataset(train, out, augment=False)
    for i, rec in enumerate(train.records):
        sample = labels[i]
        ignored = None if sample.ignore is None else sample.ignore.numpy().astype(bool)
        if rec.id in chosen.ids:
            assert sample.mask.numpy().any() and (ignored is None or not ignored.any()), rec.id
        elif train.labels[i] == 1:
            assert ignored is not None and ignored.all() and not sample.mask.numpy().any()
        else:
            assert ignored is None and not sample.mask.numpy().any(), rec.id


def test_a_batch_with_every_pixel_ignored_has_loss_zero_not_nan() -> None:
    logits = torch.randn(2, 2, 8, 8, requires_grad=True)
    y = torch.full((2, 8, 8), IGNORE_INDEX, dtype=torch.long)
    for name in ("ce", "ce+dice_defect"):
        loss = segmentation_loss(name, whole_batches_ignored=True)(logits, y)
        assert float(loss.detach()) == 0.0
        loss.backward()
        assert torch.isfinite(logits.grad).all()
    y[0, 0, 0] = 1  # one pixel to learn: a real loss again, the mean of torch's rule
    safe = segmentation_loss("ce+dice_defect", whole_batches_ignored=True)(logits, y)
    plain = segmentation_loss("ce+dice_defect")(logits, y)
    assert float(safe.detach()) > 0 and torch.allclose(safe, plain)


def test_rest_ignore_without_any_true_mask_falls_back_to_the_pseudo_labels(folder) -> None:
    """With no true mask in training, ``train_masks_rest: ignore`` would leave every defective
    image out of the pixel loss: the labels are then the pseudo-labels, with a log line."""
    import shutil

    root, _, out = folder
    bare = out.parent / "bare-ds"
    if not bare.exists():
        shutil.copytree(root, bare, ignore=shutil.ignore_patterns("masks"))
    lines: list[str] = []
    over = tiny_folder_overrides(bare, out.parent / "bare-run")
    over.update({"segmentation.train_masks": "all", "segmentation.train_masks_rest": "ignore"})
    pipe = Engine(load_config("folder-example", over), progress=False, log=lines.append)
    pipe.pseudo_labels()
    base = pipe.pseudo_dir(0)
    mixed, chosen = mixed_labels(pipe.ctx, 0, base)
    assert chosen.ids == [] and any("no training image has a true mask" in x for x in lines)
    for rec in pipe.data(0).train_all.records:
        name = mask_filename(rec.id)
        assert (read_mask(mixed / "masks" / name) == read_mask(base / "masks" / name)).all()
    assert not (mixed / "ignore").exists()
