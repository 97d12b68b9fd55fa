"""``racam cam`` on real KolektorSDD images (the bundled sample) with a random narrow VGG16."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from racam.cam import RACAM, GradCAM
from racam.cli import app
from racam.data.io import image_to_tensor, read_image
from racam.errors import ConfigError, DataError

SAMPLE = Path(__file__).resolve().parent.parent / "src" / "racam" / "assets" / "ksdd_sample"


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    d = tmp_path / "images"
    d.mkdir()
    for stem in ("Part0", "Part1"):
        shutil.copy(SAMPLE / "kos15" / f"{stem}.jpg", d / f"{stem}.jpg")
        shutil.copy(SAMPLE / "kos15" / f"{stem}_label.png", d / f"{stem}_label.png")  # skipped
    return d


def _run(*args: str) -> object:
    result = CliRunner().invoke(app, ["cam", *args])
    return result


def test_cam_command_writes_maps_overlays_and_manifest(folder: Path, tmp_path: Path) -> None:
    torch.manual_seed(0)
    out = tmp_path / "out"
    r = _run("--model", "vgg16_narrow", "--width", "16", "--images", str(folder), "--out",
             str(out), "--method", "gradcam", "--size", "64", "160", "--target", "1")
    assert r.exit_code == 0, r.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["method"] == "gradcam" and manifest["size"] == [64, 160]
    assert [Path(i["image"]).name for i in manifest["images"]] == ["Part0.jpg", "Part1.jpg"]
    maps = [np.load(out / "maps" / f"{s}.npy") for s in ("Part0", "Part1")]
    for m in maps:
        assert m.shape == (160, 64) and m.dtype == np.float32
        assert m.min() == 0.0 and m.max() == 1.0
    ov = Image.open(out / "overlays" / "Part0.png")
    assert ov.mode == "RGB" and ov.size == (64, 160)
    assert sorted(p.name for p in (out / "maps").iterdir()) == ["Part0.npy", "Part1.npy"]


def test_cam_command_from_checkpoint_png16(folder: Path, tmp_path: Path) -> None:
    from racam.checkpoint import save_checkpoint
    from racam.models import build_classifier

    torch.manual_seed(1)
    model = build_classifier("vgg16_narrow", in_channels=1, width=16).eval()
    ckpt = tmp_path / "best.pt"
    save_checkpoint(ckpt, model, None, None, 1, {
        "kind": "classifier", "backbone": "vgg16_narrow", "width": 16, "in_channels": 1,
        "num_classes": 2, "input_shape": [1, 96, 48]})
    out = tmp_path / "out16"
    r = _run("--checkpoint", str(ckpt), "--images", str(folder), "--out", str(out),
             "--method", "racam", "--delta", "30", "--format", "png16")
    assert r.exit_code == 0, r.output
    png = np.asarray(Image.open(out / "maps" / "Part1.png"))
    assert png.shape == (96, 48) and png.dtype in (np.uint16, np.int32)
    # oracle: the engine on the same preprocessed image
    x = image_to_tensor(read_image(folder / "Part1.jpg", 1), (48, 96))[None]
    expected = RACAM(model, delta=30)(x, 1)[0].numpy()
    # (the CLI ran both images in one batch: float rounding may move a value by one step)
    np.testing.assert_allclose(png / 65535, expected, atol=2 / 65535, rtol=0)
    assert json.loads((out / "manifest.json").read_text())["delta"] == 30.0
    assert GradCAM(model).target_layer_names == ["features.29"]
    # RA-CAM's channel reading of Eq. 7 and FGBP's per-unit head scope reach the engine
    out = tmp_path / "outc"
    r = _run("--checkpoint", str(ckpt), "--images", str(folder), "--out", str(out),
             "--method", "racam", "--delta", "30", "--weighting", "channel",
             "--fgbp-head", "unit", "--batch-size", "1")
    assert r.exit_code == 0, r.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert (manifest["weighting"], manifest["fgbp_head"]) == ("channel", "unit")
    expected = RACAM(model, delta=30, weighting="channel", fgbp_head="unit")(x, 1)[0].numpy()
    np.testing.assert_allclose(np.load(out / "maps" / "Part1.npy"), expected, atol=1e-6, rtol=0)
    assert np.abs(expected - RACAM(model, delta=30)(x, 1)[0].numpy()).max() > 1e-3


def test_cam_command_errors(folder: Path, tmp_path: Path) -> None:
    r = _run("--images", str(folder), "--out", str(tmp_path / "o"))
    assert isinstance(r.exception, ConfigError) and "--checkpoint" in str(r.exception)
    empty = tmp_path / "empty"
    empty.mkdir()
    r = _run("--model", "vgg16_narrow", "--images", str(empty), "--out", str(tmp_path / "o"))
    assert isinstance(r.exception, DataError) and str(empty) in str(r.exception)
    r = _run("--model", "vgg16_narrow", "--images", str(folder), "--out", str(tmp_path / "o"),
             "--format", "tiff")
    assert isinstance(r.exception, ConfigError) and "--format" in str(r.exception)


def test_cam_replaces_only_what_it_wrote(folder: Path, tmp_path: Path) -> None:
    """A second call into the same --out replaces the first call's maps; a file of the user's in
    ``maps/`` (or a ``maps/`` of the user's, no manifest) stops the call before anything is
    written, and the user's file is unchanged."""
    args = ("--model", "vgg16_narrow", "--width", "16", "--images", str(folder), "--method",
            "gradcam", "--size", "64", "160")
    out = tmp_path / "out"
    torch.manual_seed(0)
    assert _run(*args, "--out", str(out)).exit_code == 0
    assert _run(*args, "--out", str(out)).exit_code == 0  # racam's own maps: replaced
    mine = out / "maps" / "notes.txt"
    mine.write_text("the user's")
    r = _run(*args, "--out", str(out))
    assert r.exit_code != 0 and isinstance(r.exception, DataError)
    assert f"{mine}: exists and was not written by racam cam" in str(r.exception)
    assert mine.read_text() == "the user's"
    assert sorted(p.name for p in (out / "maps").iterdir()) == ["Part0.npy", "Part1.npy",
                                                                 "notes.txt"]
    theirs = tmp_path / "theirs"
    (theirs / "overlays").mkdir(parents=True)
    (theirs / "overlays" / "a.png").write_bytes(b"x")
    r = _run(*args, "--out", str(theirs))
    assert isinstance(r.exception, DataError) and "a.png: exists and was not written" in str(
        r.exception)
    assert (theirs / "overlays" / "a.png").read_bytes() == b"x"
    assert not (theirs / "maps").exists() and not (theirs / "manifest.json").exists()
