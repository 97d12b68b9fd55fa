"""Pseudo-label files and CAM-quality scoring, checked with an oracle heat map on real images.

The oracle "heat map" of an image is its own true mask, so Otsu must give back exactly that
mask: pseudo-labels equal the true masks and the paper-view IoU is 1. The deployment view is
checked against counts computed by hand from the masks. Uses the KolektorSDD sample bundled
with racam (real images, always present) at original size, so no resampling is involved.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from racam.data import KolektorSDD
from racam.errors import ConfigError
from racam.evaluation.cam_quality import evaluate_cam
from racam.pseudo.labels import PseudoLabelDataset, mask_filename, write_pseudo_labels
from racam.stages.folds import SAMPLE_ROOT


class OracleCam:
    """Returns the true masks of ``order`` (dataset indices), batch after batch."""

    def __init__(self, dataset, order: list[int]) -> None:
        self.masks = [torch.from_numpy(dataset.true_mask(i)).float() for i in order]
        self.pos = 0
        self.calls = 0

    def __call__(self, images: torch.Tensor, targets=None) -> torch.Tensor:
        assert targets == 1
        self.calls += 1
        out = torch.stack(self.masks[self.pos:self.pos + len(images)])
        self.pos += len(images)
        assert out.shape[-2:] == images.shape[-2:]
        return out


def _sample(split: str) -> KolektorSDD:
    # size=None keeps each image's original size; images of one unit share a size, so a batch of
    # one keeps stacking simple
    return KolektorSDD(SAMPLE_ROOT, fold=0, split=split, size=None, channels=1,
                       split_file="demo_split.pyb")


def test_pseudo_labels_equal_true_masks_under_an_oracle(tmp_path) -> None:
    ds = _sample("train")
    defective = [i for i, y in enumerate(ds.labels) if y == 1]
    manifest = write_pseudo_labels(OracleCam(ds, defective), ds, tmp_path / "p",
                                   meta={"method": "oracle", "delta": 50}, batch_size=1,
                                   progress=False)
    assert manifest["method"] == "oracle" and manifest["num_images"] == len(ds)
    assert manifest["num_defective"] == len(defective) == 10
    on_disk = json.loads((tmp_path / "p" / "manifest.json").read_text())
    assert on_disk["images"] == manifest["images"]
    for i, rec in enumerate(ds.records):
        got = np.array(Image.open(tmp_path / "p" / "masks" / mask_filename(rec.id))) > 0
        assert np.array_equal(got, ds.true_mask(i)), rec.id
    # the wrapper serves them resized like the dataset's own masks
    small = KolektorSDD(SAMPLE_ROOT, fold=0, split="train", size=(64, 160), channels=1,
                        split_file="demo_split.pyb")
    wrapped = PseudoLabelDataset(small, tmp_path / "p")
    for i in defective[:3]:
        assert torch.equal(wrapped[i].mask, small[i].mask)


def _killed_run(ds, defective, out, key):
    """A pseudo-label run killed before its manifest: the work folder with one mask missing."""
    write_pseudo_labels(OracleCam(ds, defective), ds, out, meta={}, batch_size=1,
                        progress=False, key=key)
    work = out.with_name(out.name + ".partial")
    out.rename(work)
    (work / "manifest.json").unlink()
    (work / "key.json").write_text(json.dumps(key))
    missing = ds.records[defective[4]].id
    (work / "masks" / mask_filename(missing)).unlink()
    return work, missing


def test_pseudo_labels_resume_only_missing_masks(tmp_path) -> None:
    ds = _sample("train")
    defective = [i for i, y in enumerate(ds.labels) if y == 1]
    out = tmp_path / "pseudo"
    work, missing = _killed_run(ds, defective, out, {"fusion": "max"})
    cam = OracleCam(ds, [defective[4]])
    write_pseudo_labels(cam, ds, out, meta={}, batch_size=1, progress=False,
                        key={"fusion": "max"})
    assert cam.calls == 1 and (out / "masks" / mask_filename(missing)).exists()
    assert (out / "manifest.json").exists() and not work.exists()
    assert not (out / "key.json").exists()


def test_pseudo_labels_under_another_key_start_again(tmp_path) -> None:
    ds = _sample("train")
    defective = [i for i, y in enumerate(ds.labels) if y == 1]
    out = tmp_path / "pseudo"
    _killed_run(ds, defective, out, {"fusion": "max"})
    cam = OracleCam(ds, defective)
    manifest = write_pseudo_labels(cam, ds, out, meta={}, batch_size=1, progress=False,
                                   key={"fusion": "mean"})
    assert cam.calls == len(defective)  # every mask recomputed: none of the max-fused kept
    assert manifest["key"] == {"fusion": "mean"}
    # the finished folder is reused under its key only
    assert write_pseudo_labels(cam, ds, out, meta={}, key={"fusion": "mean"}) == manifest
    with pytest.raises(ConfigError, match="different config"):
        write_pseudo_labels(cam, ds, out, meta={}, key={"fusion": "max"})


def test_cam_quality_paper_and_deployment_views() -> None:
    ds = _sample("test")
    labels = ds.labels
    defective = [i for i, y in enumerate(labels) if y == 1]
    # the classifier misses the first defective image and falsely flags one defect-free image
    probs = [0.9 if y == 1 else 0.1 for y in labels]
    probs[defective[0]] = 0.2
    false_alarm = labels.index(0)
    probs[false_alarm] = 0.7
    order = [i for i, y in enumerate(labels) if y == 1 or probs[i] >= 0.5]
    res = evaluate_cam(OracleCam(ds, order), ds, probs, batch_size=1)

    areas = {i: int(ds.true_mask(i).sum()) for i in defective}
    paper = res["paper_counts"]
    assert (paper.tp, paper.fp, paper.fn) == (sum(areas.values()), 0, 0)
    assert res["paper"]["iou"] == 1.0
    dep = res["deployment_counts"]
    assert dep.tp == sum(areas.values()) - areas[defective[0]]
    assert dep.fn == areas[defective[0]] and dep.fp == 0  # the oracle map of a good image is empty
    total_pixels = sum(ds.true_mask(i).size for i in range(len(ds)))
    assert dep.tp + dep.fp + dep.fn + dep.tn == total_pixels
    assert abs(res["deployment"]["iou"] - dep.tp / (dep.tp + dep.fn)) < 1e-12
    # per-image counts of the paper view: one entry per defective image, keyed by its id
    per = dict(res["paper_per_image"])
    assert sorted(per) == sorted(ds.records[i].id for i in defective)
    for i in defective:
        c = per[ds.records[i].id]
        assert (c.tp, c.fp, c.fn) == (areas[i], 0, 0)
        assert c.tp + c.fp + c.fn + c.tn == ds.true_mask(i).size
    # classifier.threshold decides the deployment view: at 0.15 the missed image (0.2) counts
    low = evaluate_cam(OracleCam(ds, order), ds, probs, batch_size=1, threshold=0.15)
    assert (low["deployment_counts"].tp, low["deployment_counts"].fn) == (sum(areas.values()), 0)


def test_pseudo_label_area_is_the_mean_mask_share_under_an_oracle() -> None:
    """Under the oracle heat map the pseudo-label of each image is its true mask, so the area
    score is the mean share of defect pixels of the true masks (computed here with numpy)."""
    from racam.pseudo.area import pseudo_label_area

    ds = _sample("train")
    defective = [i for i, y in enumerate(ds.labels) if y == 1]
    got = pseudo_label_area(OracleCam(ds, defective), ds, defective, batch_size=1)
    want = float(np.mean([ds.true_mask(i).mean() for i in defective]))
    assert 0.001 < want < 0.05 and got == pytest.approx(want, rel=1e-6)
    with pytest.raises(ValueError, match="no images"):
        pseudo_label_area(OracleCam(ds, []), ds, [])
