"""``segmentation.mask_cut`` (:mod:`racam.segmentation.mask_cut`): where a network's defect
probability is cut into a mask, one rule for scoring, reports, ``racam predict`` (torch, tiled)
and export bundles (onnxruntime).

Oracle: scikit-image's ``threshold_otsu`` on the probabilities above 0.5. Run: a copy of the
session's tiny run (real images of the bundled KolektorSDD sample) whose network's last layer
is redrawn so that its probabilities spread above and below 0.5 (the tiny network is barely
trained and marks nothing).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import TINY_CFG, racam
from PIL import Image
from skimage.filters import threshold_otsu

from racam.config import load_config
from racam.data.io import image_to_tensor
from racam.data.registry import BUILTIN_ROOTS
from racam.deploy.bundle import read_bundle
from racam.deploy.export import export_run
from racam.deploy.inference import Inferencer
from racam.deploy.predict import PredictOptions, predict_folder
from racam.engine import Engine
from racam.errors import ConfigError, DataError
from racam.plan.rules import RECIPE
from racam.pseudo.heatmaps import to_original_size
from racam.segmentation import load_segmentation
from racam.segmentation.mask_cut import MASK_CUTS, cut_mask, cut_threshold
from racam.segmentation.probability import defect_probability

SAMPLE = BUILTIN_ROOTS["builtin:ksdd_sample"]
#: the settings of the session's ``trained_run`` (tests/conftest.py)
TINY = {"device": "cpu", "data.size": [64, 160], "classifier.epochs": 2,
        "classifier.samples_per_epoch": 16, "segmentation.epochs": 1,
        "segmentation.samples_per_epoch": 8}


def oracle(p: np.ndarray) -> np.ndarray:
    """``p > max(0.5, threshold_otsu(p[p > 0.5]))`` by scikit-image; ``p > 0.5`` when the
    pixels above 0.5 are fewer than two or all equal."""
    fg = p[p > 0.5]
    if fg.size < 2 or fg.min() == fg.max():
        return p > 0.5
    return p > max(0.5, float(threshold_otsu(fg, nbins=256)))


# ------------------------------------------------------------------------------ the rule
def test_foreground_otsu_matches_scikit_image_on_random_maps() -> None:
    """Maps with a background, a halo and a core at random levels: the cut's mask is
    scikit-image's, it lies inside ``p > 0.5``, and ``half`` is ``p > 0.5``."""
    rng = np.random.default_rng(0)
    narrowed = 0
    for _ in range(40):
        p = rng.uniform(0.0, 0.45, (60, 90))
        r0, c0 = rng.integers(5, 30, 2)
        p[r0:r0 + 20, c0:c0 + 40] = rng.uniform(0.5, 0.8, (20, 40))  # halo
        p[r0 + 5:r0 + 12, c0 + 10:c0 + 25] = rng.uniform(0.85, 1.0, (7, 15))  # core
        t = torch.from_numpy(p.astype(np.float32))
        got = cut_mask(t, "foreground_otsu").numpy()
        assert np.array_equal(got, oracle(p.astype(np.float32)))
        assert not (got & ~(p > 0.5)).any()
        assert np.array_equal(cut_mask(t, "half").numpy(), p > 0.5)
        narrowed += got.sum() < (p > 0.5).sum()
    assert narrowed == 40


def test_degenerate_foregrounds_keep_their_half_mask() -> None:
    """Nothing above 0.5: empty; one pixel, or a foreground of one value (saturated
    probabilities): the ``p > 0.5`` mask, not an empty one; a core on a halo: the core."""
    p = torch.full((8, 8), 0.2)
    assert not cut_mask(p, "foreground_otsu").any()
    p[3, 3] = 0.9
    assert cut_mask(p, "foreground_otsu").sum() == 1
    p[2:5, 2:5] = 1.0
    assert torch.equal(cut_mask(p, "foreground_otsu"), p > 0.5)
    p[2:6, 2:7] = 0.6
    p[3, 3:5] = 0.97
    assert cut_threshold(p, "foreground_otsu") > 0.6
    assert cut_mask(p, "foreground_otsu").nonzero().tolist() == [[3, 3], [3, 4]]
    assert MASK_CUTS.names() == ["half", "foreground_otsu"]


def test_mask_cut_is_checked_and_not_in_the_network_key(trained_run) -> None:
    """An unknown cut: one error naming the key and the choices. The network's folder and key
    are the same under both cuts (the cut is not trained). The folder example and the folder
    plan's recipe (a user's own folder config, the demo) cut by ``foreground_otsu``; the
    KolektorSDD configs at 0.5, as the paper."""
    with pytest.raises(ConfigError, match="mask_cut.*half, foreground_otsu"):
        load_config(TINY_CFG, {"segmentation.mask_cut": "otsu"})
    keys = [Engine(load_config(TINY_CFG, {**TINY, "output": str(trained_run),
                                        "segmentation.mask_cut": c}), progress=False,
                   log=lambda _: None).seg.path_key(0, "deeplabv3") for c in MASK_CUTS.names()]
    assert keys[0][0] == keys[1][0]
    assert json.dumps(keys[0][1], sort_keys=True, default=str) == json.dumps(
        keys[1][1], sort_keys=True, default=str)
    for name in ("ksdd-cpu", "ksdd-paper", "ksdd-paper-offline", "ksdd2-paper"):
        assert load_config(name).segmentation.mask_cut == "half"
    assert load_config("folder-example").segmentation.mask_cut == "foreground_otsu"
    assert {s.key: s.value for s in RECIPE}["segmentation.mask_cut"] == "foreground_otsu"


# ------------------------------------------------------------------------------ a run
def spread(src: Path, dest: Path) -> Path:
    """A copy of the segmentation checkpoint ``src`` whose last layer is redrawn (seeded) so
    its defect probabilities spread on both sides of 0.5."""
    state = torch.load(src, map_location="cpu", weights_only=True)
    w = state["model"]["segmentation_head.0.weight"]
    g = torch.Generator().manual_seed(0)
    w.copy_(torch.randn(w.shape, generator=g) * 3.0 / w[0].numel() ** 0.5)
    state["model"]["segmentation_head.0.bias"].copy_(torch.tensor([-0.5, 0.5]))
    dest.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, dest)
    return dest


@pytest.fixture(scope="module")
def cut_run(trained_run, tmp_path_factory) -> Path:
    """A full copy of ``trained_run`` with the spread network in place of its own."""
    run = tmp_path_factory.mktemp("cut") / "run"
    shutil.copytree(trained_run, run)
    seg = next((run / "fold0/segmentation").glob("*/last.pt"))
    spread(seg, seg)
    return run


def expected_counts(run: Path, cut: str) -> dict[str, list[int]]:
    """Per test image ``[tp, fp, fn, tn]`` of the run's network, its map at the image's size
    cut by ``cut`` with the oracle (``half``: ``p > 0.5``), counted with numpy."""
    eng = Engine(load_config(TINY_CFG, {**TINY, "output": str(run)}), progress=False,
                 log=lambda _: None)
    test = eng.data(0).test
    model, _ = load_segmentation(next((run / "fold0/segmentation").glob("*/last.pt")))
    out = {}
    with torch.no_grad():
        for i in range(len(test)):
            s = test[i]
            p = to_original_size(defect_probability(model(s.image[None])), s.original_size)[0]
            p = p.numpy()
            m = oracle(p) if cut == "foreground_otsu" else p > 0.5
            t = test.true_mask(i).astype(bool)
            out[s.id] = [int((m & t).sum()), int((m & ~t).sum()), int((~m & t).sum()),
                         int((~m & ~t).sum())]
    return out


def test_a_run_scores_its_stored_network_again_under_another_cut(cut_run) -> None:
    """``racam run`` with ``mask_cut: foreground_otsu`` on a finished run: the stored network
    is scored again (not trained: its file is unchanged), its per-image counts are the
    oracle's (to a pixel in 10,000: the run predicts in batches, the oracle one image at a
    time), narrower than ``half``'s; back to ``half``, the counts are ``p > 0.5``'s."""
    seg_dir = next((cut_run / "fold0/segmentation").glob("*/last.pt")).parent
    network = (seg_dir / "last.pt").stat().st_mtime_ns
    sets = [a for k, v in TINY.items() for a in ("--set", f"{k}={json.dumps(v)}")]
    seen = {}
    for cut in ("foreground_otsu", "half"):
        code, out, err = racam("run", TINY_CFG, "--out", cut_run, *sets,
                               "--set", f"segmentation.mask_cut={cut}")
        assert code == 0, err
        stored = json.loads((seg_dir / "result.json").read_text())
        assert stored.get("mask_cut", "half") == cut
        want = expected_counts(cut_run, cut)
        assert stored["per_image"].keys() == want.keys()
        for image, counts in stored["per_image"].items():  # batched or not: float rounding
            assert np.abs(np.subtract(counts, want[image])).max() <= 1e-4 * sum(counts), image
        total = np.sum(list(stored["per_image"].values()), axis=0).tolist()
        assert [stored["counts"][k] for k in ("tp", "fp", "fn", "tn")] == total
        results = json.loads((cut_run / "results.json").read_text())
        assert [results["segmentation"][k] for k in ("tp", "fp", "fn", "tn")] == total
        seen[cut] = total
        report = (cut_run / "run-report.md").read_text()
        labelled = "on pseudo-labels (mask at p > max(0.5, Otsu of p above 0.5)), all" in report
        assert labelled is (cut == "foreground_otsu")
    assert (seg_dir / "last.pt").stat().st_mtime_ns == network
    marked = {c: t[0] + t[1] for c, t in seen.items()}
    assert 0 < marked["foreground_otsu"] < marked["half"]


# ------------------------------------------------------------------------ predict, export
def with_cut(run: Path, dest: Path, cut: str) -> Path:
    """The parts of ``run`` predict reads, with ``segmentation.mask_cut: cut``."""
    seg = next((run / "fold0/segmentation").glob("*/last.pt"))
    (dest / seg.parent.relative_to(run)).mkdir(parents=True)
    shutil.copy2(seg, dest / seg.relative_to(run))
    shutil.copytree(run / "fold0/classifier", dest / "fold0/classifier")
    cfg = json.loads((run / "config.json").read_text())
    cfg["segmentation"]["mask_cut"] = cut
    (dest / "config.json").write_text(json.dumps(cfg))
    return dest


def sample_images(n: int = 4) -> list[Image.Image]:
    return [Image.open(f).convert("L") for f in sorted(SAMPLE.glob("kos*/Part*.jpg"))[::7][:n]]


def network_map(inf: Inferencer, x: torch.Tensor, size: tuple[int, int]) -> np.ndarray:
    """The defect probability of ``inf``'s network at an image's ``size`` ``(w, h)``."""
    p = inf.nets.segment(x[None]).softmax(1)[:, 1]
    return to_original_size(p, size)[0].numpy()


def test_predict_and_the_bundle_cut_as_the_run_says(cut_run, tmp_path) -> None:
    """A run with ``foreground_otsu``: torch masks are the oracle's cut of the network's map;
    its bundle records the cut by name and onnxruntime's masks agree with torch's; a bundle
    naming a cut this racam does not know is refused, naming bundle.json."""
    run = with_cut(cut_run, tmp_path / "run", "foreground_otsu")
    torch_inf = Inferencer.open(run, device="cpu")
    assert torch_inf.meta.mask.threshold == "foreground_otsu"
    bundle = tmp_path / "bundle"
    export_run(run, bundle)
    assert json.loads((bundle / "bundle.json").read_text())["mask"]["threshold"] == \
        "foreground_otsu"
    onnx_inf = Inferencer.open(bundle, device="cpu")
    narrowed = 0
    for img in sample_images():
        x = image_to_tensor(img, torch_inf.meta.size, 1)
        _, masks = torch_inf.predict(x[None], [img.size])
        mask = next(masks).numpy()
        p = network_map(torch_inf, x, img.size)
        assert np.array_equal(mask, oracle(p))
        narrowed += mask.sum() < (p > 0.5).sum()
        _, onnx_masks = onnx_inf.predict(x[None], [img.size])
        assert (next(onnx_masks).numpy() == mask).mean() > 0.999
    assert narrowed > 0
    meta = json.loads((bundle / "bundle.json").read_text())
    meta["mask"]["threshold"] = "sharpest"
    (bundle / "bundle.json").write_text(json.dumps(meta))
    with pytest.raises(DataError, match=r"bundle\.json.*'sharpest'"):
        read_bundle(bundle)


def test_large_images_are_cut_on_the_networks_map(cut_run, tmp_path) -> None:
    """An image far larger than the input, segmented in tiles: the mask lies inside the
    ``half`` run's mask of the same image and is narrower, not empty."""
    runs = {c: Inferencer.open(with_cut(cut_run, tmp_path / c, c), device="cpu")
            for c in MASK_CUTS.names()}
    tiles = sample_images(12)
    w, h = tiles[0].size
    big = Image.new("L", (w * 4, h * 3))
    for k, im in enumerate(tiles):
        big.paste(im.resize((w, h)), ((k % 4) * w, (k // 4) * h))
    tiling = runs["half"].tiling(big.size)
    assert tiling is not None
    x = image_to_tensor(big, runs["half"].meta.size, 1)
    _, half = runs["half"].predict_large(big, x, tiling)
    _, cut = runs["foreground_otsu"].predict_large(big, x, tiling)
    assert cut.shape == half.shape and not (cut & ~half).any()
    assert 0 < cut.sum() < half.sum()


def test_predict_redoes_its_masks_when_the_cut_changes(cut_run, tmp_path) -> None:
    """A second ``racam predict`` into the same folder skips the images already done, unless
    the run's cut changed since (same network files): then every mask is drawn again, and
    narrower."""
    run = with_cut(cut_run, tmp_path / "run", "half")
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    for k, img in enumerate(sample_images()):
        img.save(imgs / f"i{k}.png")
    opts = PredictOptions(images=imgs, out=tmp_path / "out", device="cpu", progress=False)
    first = predict_folder(run, opts)
    pixels = {f.name: (np.asarray(Image.open(f)) > 0).sum()
              for f in sorted((tmp_path / "out/masks").glob("*.png"))}
    assert (first.predicted, first.skipped) == (4, 0)
    again = predict_folder(run, PredictOptions(**{**opts.__dict__, "into_existing": True}))
    assert (again.predicted, again.skipped) == (0, 4)
    cfg = json.loads((run / "config.json").read_text())
    cfg["segmentation"]["mask_cut"] = "foreground_otsu"
    (run / "config.json").write_text(json.dumps(cfg))
    cut = predict_folder(run, PredictOptions(**{**opts.__dict__, "into_existing": True}))
    assert (cut.predicted, cut.skipped) == (4, 0)
    narrower = {f.name: (np.asarray(Image.open(f)) > 0).sum()
                for f in sorted((tmp_path / "out/masks").glob("*.png"))}
    assert narrower.keys() == pixels.keys()
    assert all(narrower[k] <= pixels[k] for k in pixels)
    assert sum(narrower.values()) < sum(pixels.values())


def test_self_training_learns_the_masks_cut_by_the_runs_cut(cut_run) -> None:
    """Round 1's labels are round 0's masks of the training images cut by the run's cut (the
    oracle's, to a pixel in 1,000 per image), in their own folder beside the ``p > 0.5``
    masks (which the copied run holds already, drawn by its own network before the redraw),
    narrower than ``p > 0.5``; round 1's folder and key name the cut, round 0's do not."""
    from racam.data import read_mask
    from racam.pseudo.labels import mask_filename

    def engine(cut: str) -> Engine:
        return Engine(load_config(TINY_CFG, {**TINY, "output": str(cut_run),
                                             "segmentation.self_training": 1,
                                             "segmentation.mask_cut": cut}),
                      progress=False, log=lambda _: None)

    eng, plain = engine("foreground_otsu"), engine("half")
    arch = eng.cfg.segmentation.arch
    cut_dir = eng.seg.self_training_labels(0, arch, 1)
    half_dir = plain.seg.self_training_labels(0, arch, 1)
    assert cut_dir.name == half_dir.name + "-foreground_otsu"
    assert eng.seg.path_key(0, arch, "pseudo", 0) == plain.seg.path_key(0, arch, "pseudo", 0)
    (d1, k1), (d0, k0) = eng.seg.path_key(0, arch, "pseudo", 1), plain.seg.path_key(
        0, arch, "pseudo", 1)
    assert d1.name == d0.name + "-foreground_otsu"
    assert k1["segmentation"]["self_training_cut"] == "foreground_otsu"
    assert "self_training_cut" not in k0["segmentation"]
    model, _ = load_segmentation(next((cut_run / "fold0/segmentation").glob("*/last.pt")))
    model.eval()
    ds = eng.data(0).train_all
    narrower = 0
    for i, (rec, label) in enumerate(zip(ds.records, ds.labels)):
        got = read_mask(cut_dir / "masks" / mask_filename(rec.id))
        if label == 0:
            assert not got.any(), rec.id
            continue
        s = ds[i]
        with torch.no_grad():
            p = to_original_size(defect_probability(model(s.image[None])), s.original_size)[0]
        assert np.mean(got == oracle(p.numpy())) > 0.999, rec.id
        narrower += int(got.sum() < (p > 0.5).sum())
    assert narrower > 0
