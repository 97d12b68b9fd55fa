"""``racam export`` + ``racam predict --onnx`` against the torch networks on real images."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
from PIL import Image

from racam.checkpoint import load_classifier
from racam.deploy.export import export_run
from racam.deploy.predict import PredictOptions, predict_folder
from racam.segmentation import load_segmentation

pytestmark = pytest.mark.data


@pytest.fixture(scope="module")
def exported(trained_run, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("onnx")
    export_run(trained_run, out)
    return out


def real_batch(ksdd_root: Path, size: tuple[int, int]) -> torch.Tensor:
    files = [ksdd_root / f"kos{k:02d}" / f"Part{k % 8}.jpg" for k in (6, 7, 8)]
    arrays = [np.asarray(Image.open(f).convert("L").resize(size, Image.Resampling.BILINEAR),
                         dtype=np.float32) / 255.0 for f in files]
    return torch.from_numpy(np.stack(arrays))[:, None]


def ort_logits(path: Path, x: torch.Tensor) -> np.ndarray:
    s = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return s.run(None, {s.get_inputs()[0].name: x.numpy()})[0]


def test_onnx_logits_match_torch_on_real_images(trained_run, exported, ksdd_root) -> None:
    info = json.loads((exported / "bundle.json").read_text())["models"]
    assert json.loads((exported / "bundle.json").read_text())["size"] == [64, 160]
    clf, _ = load_classifier(trained_run / "fold0/classifier/best.pt")
    seg, _ = load_segmentation(next((trained_run / "fold0/segmentation").glob("*/last.pt")))
    # traced at the run's input size with a dynamic batch: 3 real images, exported with 2
    assert info["classifier"]["dynamic_axes"] == info["segmentation"]["dynamic_axes"] == ["batch"]
    x = real_batch(ksdd_root, (64, 160))
    with torch.no_grad():
        want_c, want_s = clf(x).numpy(), seg(x).numpy()
    for name, want in (("classifier.onnx", want_c), ("segmentation.onnx", want_s)):
        got = ort_logits(exported / name, x)
        assert got.shape == want.shape == (3, *want.shape[1:])
        assert np.abs(got - want).max() <= 1e-4
    # another height and width is refused by onnxruntime, not computed with wrong padding
    with pytest.raises(Exception, match="(?i)dimension|shape"):
        ort_logits(exported / "segmentation.onnx", real_batch(ksdd_root, (96, 224)))


def test_predict_with_onnx_gives_the_torch_masks(trained_run, exported, ksdd_root,
                                                 tmp_path) -> None:
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    for k in (9, 10, 11, 12):  # original size, 500 x ~1250
        Image.open(ksdd_root / f"kos{k:02d}" / "Part3.jpg").save(imgs / f"kos{k:02d}.png")
    runs = {}
    for name, onnx in (("torch", None), ("onnx", exported)):
        runs[name] = tmp_path / name
        predict_folder(trained_run, PredictOptions(images=imgs, out=runs[name], onnx=onnx,
                                                   device="cpu", progress=False))
    agree = total = 0
    masks = sorted((runs["torch"] / "masks").glob("*.png"))
    assert len(masks) == 4
    for f in masks:
        a = np.asarray(Image.open(f))
        b = np.asarray(Image.open(runs["onnx"] / "masks" / f.name))
        assert a.shape == b.shape == np.asarray(Image.open(imgs / f.name)).shape
        agree += int((a == b).sum())
        total += a.size
    assert agree / total >= 0.999
