"""``segmentation.train_masks_choice: typical``: on synthetic points with planted clusters of
different size and density, the choice takes one point per cluster, the planted densest one
(its centre), largest cluster first, the same for every seed; typicality against a brute-force
oracle; the classifier embeddings of every registered backbone against a hand-written hook;
and a run on a folder of real KolektorSDD images that picks its images among the defective
training images from the classifier's S5 features (recomputed here by hand) without reading a
mask file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import ksdd_folder, tiny_folder_overrides

from racam.classifier.embeddings import pooled_features
from racam.config import load_config
from racam.data import Sample
from racam.engine import Engine
from racam.models import BACKBONES, build_classifier, classifier_target_layers
from racam.pseudo.mixed import choose_images
from racam.pseudo.typical import choose_typical, typicality
from racam.stages.mixed_labels import chosen_ids

SIZES = (40, 30, 25, 21)  # every cluster holds >= 21 points: its 20 neighbours are its own
RADII = (1.0, 0.1, 2.0, 0.5)  # different densities


def planted(seed: int = 0) -> tuple[np.ndarray, list[int], list[int]]:
    """Points in 16-d: per cluster a centre and points at distance ``radius`` from it in
    random directions (pairwise ~ radius * sqrt(2) apart), the clusters 100 apart; rows
    shuffled. Returns the points, each row's cluster and the row of each centre."""
    rng = np.random.default_rng(seed)
    points, cluster, centre_rows = [], [], []
    for c, (size, radius) in enumerate(zip(SIZES, RADII)):
        centre = np.zeros(16)
        centre[c] = 100.0
        dirs = rng.normal(size=(size - 1, 16))
        dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
        points += [centre, *(centre + radius * dirs)]
        cluster += [c] * size
    order = rng.permutation(len(points))
    x = np.asarray(points)[order]
    labels = [cluster[i] for i in order]
    starts = np.cumsum((0,) + SIZES[:-1])  # a centre is the first point of its cluster
    for s in starts:
        centre_rows.append(int(np.flatnonzero(order == s)[0]))
    return x, labels, centre_rows


def test_typical_takes_the_centre_of_each_cluster_largest_first() -> None:
    x, labels, centres = planted()
    for seed in range(5):
        picked = choose_typical(x, 4, seed=seed)
        assert picked == centres, seed  # SIZES are in decreasing order
    assert sorted(labels[i] for i in choose_typical(x, 4, seed=0)) == [0, 1, 2, 3]
    # two clusters asked for: the densest point of each of the two groups k-means forms
    two = choose_typical(x, 2, seed=1)
    assert len(set(two)) == 2 and set(two) <= set(centres)


def test_a_typiclust_round_skips_the_clusters_that_hold_a_labelled_point() -> None:
    x, labels, centres = planted()
    # a point of the largest cluster (not its centre) has a mask already: 3 new images come
    # from the other three clusters, their centres, largest first; the labelled one never
    labelled = next(i for i, c in enumerate(labels) if c == 0 and i != centres[0])
    for seed in range(3):
        assert choose_typical(x, 3, seed=seed, labelled=[labelled]) == centres[1:], seed
    assert choose_typical(x, 4, seed=0, labelled=[]) == choose_typical(x, 4, seed=0)
    few = choose_typical(x[:6], 9, seed=0, labelled=[2])
    assert few == [0, 1, 3, 4, 5]  # fewer free points than asked: every free one


def test_typical_with_as_many_points_as_asked_takes_them_all() -> None:
    x, _, _ = planted()
    assert choose_typical(x[:5], 5, seed=0) == [0, 1, 2, 3, 4]
    assert choose_typical(x[:5], 9, seed=0) == [0, 1, 2, 3, 4]
    assert choose_typical(x[:1], 1, seed=0) == [0]


def test_typicality_is_the_inverse_mean_distance_to_the_nearest_neighbours() -> None:
    rng = np.random.default_rng(4)
    for n in (2, 7, 30):  # k = n - 1 below 21 points, else 20
        x = rng.normal(size=(n, 5))
        k = min(20, n - 1)
        want = []
        for i in range(n):  # by hand
            d = sorted(float(np.sqrt(((x[i] - x[j]) ** 2).sum())) for j in range(n) if j != i)
            want.append(1.0 / (sum(d[:k]) / k))
        assert typicality(x) == pytest.approx(want, rel=1e-9)


def test_duplicates_still_give_as_many_points_as_asked() -> None:
    x = np.repeat(np.eye(3), [5, 5, 5], axis=0)  # 3 distinct points, 4 asked for
    with pytest.warns(Warning):  # scikit-learn: fewer distinct points than clusters
        picked = choose_typical(x, 4, seed=0)
    assert len(set(picked)) == 4
    assert {tuple(x[i]) for i in picked} == {tuple(r) for r in np.eye(3)}


def test_choose_images_typical_embeds_the_sorted_pool() -> None:
    x, _, centres = planted()
    pool = [f"defect/d{i:03d}" for i in range(len(x))]
    seen: list[list[str]] = []

    def embed(ids: list[str]) -> np.ndarray:
        seen.append(list(ids))
        return x[[int(i.removeprefix("defect/d")) for i in ids]]

    got = choose_images(list(reversed(pool)), "4", "typical", seed=0, embed=embed)
    assert got == sorted(pool[i] for i in centres) and seen == [pool]
    assert choose_images(pool[:3], "5", "typical", seed=0, embed=embed) == pool[:3]
    assert len(seen) == 1  # every image chosen: nothing to embed
    with pytest.raises(ValueError, match="embeddings"):
        choose_images(pool, "4", "typical", seed=0)


@pytest.mark.parametrize("backbone", BACKBONES.names())
def test_embeddings_are_the_pooled_normalised_s5_output(backbone: str) -> None:
    torch.manual_seed(0)
    model = build_classifier(backbone, in_channels=1, width=16).eval()
    layer = classifier_target_layers(model)["S5"]
    images = [torch.rand(1, 64, 64) for _ in range(3)]
    data = [Sample(image=im, label=1, id=str(i), original_size=(64, 64))
            for i, im in enumerate(images)]
    got = pooled_features(model, data, layer, batch_size=2, device=torch.device("cpu"))
    outs: list[torch.Tensor] = []  # by hand: the module's output, one image at a time
    module = dict(model.named_modules())[layer]
    handle = module.register_forward_hook(lambda m, a, out: outs.append(out.clone()))
    with torch.no_grad():
        for im in images:
            model(im[None])
    handle.remove()
    want = torch.cat([o.mean(dim=(2, 3)) for o in outs]).double()
    want = want / want.norm(dim=1, keepdim=True)
    assert got.shape == tuple(want.shape) and got.shape[1] > 1
    np.testing.assert_allclose(got, want.numpy(), atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-9)


@pytest.fixture(scope="module")
def run(ksdd_root, tmp_path_factory) -> tuple[Engine, Path, dict[str, list[str]]]:
    tmp = tmp_path_factory.mktemp("typical")
    split = ksdd_folder(ksdd_root, tmp / "ds")
    over = tiny_folder_overrides(tmp / "ds", tmp / "run")
    over.update({"segmentation.train_masks": 3, "segmentation.train_masks_choice": "typical",
                 "segmentation.train_masks_rest": "pseudo"})
    pipe = Engine(load_config("folder-example", over), progress=False, log=lambda _: None)
    pipe.run()
    return pipe, tmp / "ds", split


def test_typical_run_trains_on_typical_defective_training_images(run) -> None:
    pipe, _, split = run
    seg = pipe.segmentation(0)
    assert Path(seg.checkpoint).parent.name == "unet-racam-d50-sm1_1.5_2-otsu2-tm3-typical"
    tm = seg.train_masks
    assert tm is not None and tm["choice"] == "typical" and tm["count"] == 3
    stems = {i.split("/", 1)[1] for i in tm["ids"]}
    train_defects = {s for s in split["train"] if s in split["defect"]}
    assert len(stems) == 3 and stems <= train_defects and not stems & set(split["test"])
    mixed = json.loads((Path(tm["folder"]) / "manifest.json").read_text())
    assert Path(tm["folder"]).name == "racam-d50-sm1_1.5_2-otsu2-mixed-3-typical"
    assert mixed["true_mask_ids"] == tm["ids"]
    report = (pipe.out / "run-report.md").read_text()
    assert "`typical`:" in report and all(f"`{i}`" in report for i in tm["ids"])
    # the oracle: the classifier's S5 output of each eligible image, pooled and normalised by
    # hand, and the pure choice of them (seed = the run's seed + fold 0)
    model = pipe.model(0)
    ds = pipe.data(0).train_all
    pool = sorted(rec.id for rec, y in zip(ds.records, ds.labels) if y == 1)
    module = dict(model.named_modules())[classifier_target_layers(model)["S5"]]
    feats: list[torch.Tensor] = []
    handle = module.register_forward_hook(lambda m, a, out: feats.append(out.mean(dim=(2, 3))))
    with torch.no_grad():
        for image_id in pool:
            model(ds[[r.id for r in ds.records].index(image_id)].image[None])
    handle.remove()
    x = torch.cat(feats).double()
    x = (x / x.norm(dim=1, keepdim=True)).numpy()
    assert tm["ids"] == sorted(pool[i] for i in choose_typical(x, 3, seed=pipe.cfg.seed))


def test_typical_choice_reads_no_mask_file(run) -> None:
    """With the dataset's ``masks/`` moved away (the engine keeps the records it read, so a
    mask read would fail), the choice comes out the same."""
    pipe, root, _ = run
    stored = pipe.segmentation(0).train_masks
    assert stored is not None
    (root / "masks").rename(root / "masks-away")
    try:
        choice, ids, eligible = chosen_ids(pipe.ctx, 0, classifier=pipe.seg.classifier.model)
    finally:
        (root / "masks-away").rename(root / "masks")
    assert (choice, ids, eligible) == ("typical", stored["ids"], 7)
