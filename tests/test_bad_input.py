"""Bad-input matrix (issue 14): each case runs the ``racam`` entry point on tiny generated data and
checks the exit code, the one-line message and what is (not) on disk afterwards.

Exit 2 with one ``error:`` line naming the key, file or path; exit 0 with ``n/a`` (never a
score from nothing) where a run is legitimate but a score has no pixels to count.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import racam
from PIL import Image

from racam.cli import error_line


def one_error_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.startswith("error: ")]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def make_folder(root: Path, good: int, defect: int, masks: bool = True, seed: int = 0) -> Path:
    """``good/``, ``defect/`` (a bright square) and optional ``masks/`` of 32x32 images."""
    rng = np.random.default_rng(seed)
    for d in ("good", "defect") + (("masks",) if masks else ()):
        (root / d).mkdir(parents=True, exist_ok=True)
    for i in range(good):
        Image.fromarray((rng.random((32, 32)) * 80 + 60).astype(np.uint8)).save(
            root / "good" / f"g{i}.png")
    for i in range(defect):
        a = (rng.random((32, 32)) * 80 + 60).astype(np.uint8)
        m = np.zeros((32, 32), np.uint8)
        y, x = rng.integers(2, 24, size=2)
        m[y:y + 6, x:x + 6] = 255
        a[m > 0] = 250
        Image.fromarray(a).save(root / "defect" / f"d{i}.png")
        if masks:
            Image.fromarray(m).save(root / "masks" / f"d{i}.png")
    return root


def write_config(path: Path, root: Path, out: Path) -> Path:
    path.write_text(f"""
name: tiny
seed: 0
output: {out}
device: cpu
data: {{dataset: folder, root: {root}, size: [32, 32], channels: 1, test_fraction: 0.3,
        val_fraction: 0.2}}
classifier: {{backbone: vgg16_narrow, width: 16, epochs: 1, batch_size: 4, samples_per_epoch: 8,
              amp: false}}
cam: {{method: racam, delta: 50, fusion: max, batch_size: 4}}
segmentation: {{arch: unet, encoder: resnet18, epochs: 1, batch_size: 4, samples_per_epoch: 4,
                amp: false}}
""")
    return path


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("bad")
    make_folder(tmp / "ds", 6, 6)
    write_config(tmp / "cfg.yaml", tmp / "ds", tmp / "unused")
    return tmp


# --------------------------------------------------------------- refused before any file
REFUSED = [
    ("epochs_abc", ["--set", "classifier.epochs=abc"], "classifier.epochs: expected an integer"),
    ("lr_negative", ["--set", "classifier.lr=-1"], "classifier.lr: must be > 0"),
    ("seed_abc", ["--set", "seed=abc"], "seed: expected an integer"),
    ("method", ["--set", "cam.method=nosuch"], "cam.method: unknown method 'nosuch'"),
    ("delta", ["--set", "cam.delta=150"], "cam.delta: must lie in [0, 100]"),
    ("fusion", ["--set", "cam.fusion=median"], "cam.fusion: unknown fusion 'median'"),
    ("arch", ["--set", "segmentation.arch=nosuch"], "segmentation.arch: unknown arch"),
    ("folds_folder", ["--set", "data.folds=[7]"], "data.folds: [7]: dataset folder has a single"),
    ("size_16", ["--set", "data.size=[16,16]"], "data.size: 16x16 (width x height) is too small "
                                                 "for the classifier backbone vgg16_narrow; it "
                                                 "needs at least 32x32"),
    ("size_unet", ["--set", "data.size=[40,40]"], "data.size: size 40x40 (WxH) does not fit Unet"),
    ("not_a_key", ["--set", "classifier.nosuch=1"], "classifier: unknown key(s) ['nosuch']"),
    ("set_syntax", ["--set", "classifier.lr"], "--set 'classifier.lr': expected KEY=VALUE"),
]


@pytest.mark.parametrize(("name", "args", "message"), REFUSED, ids=[c[0] for c in REFUSED])
def test_refused_in_one_line_before_any_file(base: Path, name: str, args: list[str],
                                             message: str) -> None:
    out = base / f"out-{name}"
    code, _, err = racam("run", base / "cfg.yaml", "--out", out, "--quiet", *args)
    assert code == 2
    assert message in one_error_line(err)
    assert not out.exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="the case is a machine without a GPU")
@pytest.mark.parametrize("command", ["run", "cam"])
def test_cuda_without_gpu(base: Path, command: str) -> None:
    out = base / f"out-cuda-{command}"
    if command == "run":
        args = ["run", base / "cfg.yaml", "--set", "device=cuda", "--out", out]
    else:
        args = ["cam", "--images", base / "ds" / "good", "--out", out, "--model", "vgg16_narrow",
                "--device", "cuda"]
    code, _, err = racam(*args)
    assert code == 2 and "'cuda' requested but CUDA is not available" in one_error_line(err)
    assert not out.exists()


def test_config_path_is_a_folder(base: Path) -> None:
    (base / "cfgdir").mkdir(exist_ok=True)
    code, _, err = racam("run", base / "cfgdir")
    assert code == 2 and f"config {base / 'cfgdir'}: is a folder" in one_error_line(err)


def test_out_under_a_file(base: Path) -> None:
    (base / "afile").write_text("x")
    code, _, err = racam("train-classifier", base / "cfg.yaml", "--out", base / "afile" / "sub")
    assert code == 2 and f"{base / 'afile' / 'sub'}: Not a directory" in one_error_line(err)
    assert (base / "afile").read_text() == "x"


def test_out_in_an_unwritable_folder(base: Path) -> None:
    if os.geteuid() == 0:  # root writes through permissions; /sys refuses new folders to anyone
        out = Path("/sys/racam-bad-input-test/run")
    else:
        ro = base / "readonly"
        ro.mkdir(exist_ok=True)
        ro.chmod(0o555)
        out = ro / "run"
    code, _, err = racam("train-classifier", base / "cfg.yaml", "--out", out)
    line = one_error_line(err)
    assert code == 2 and ("racam-bad-input-test" in line or "readonly" in line)
    assert "Permission denied" in line or "Operation not permitted" in line
    assert not out.exists()


# ------------------------------------------------------------------------- racam cam
def test_cam_size_zero(base: Path) -> None:
    out = base / "cam0"
    code, _, err = racam("cam", "--images", base / "ds" / "good", "--out", out, "--model",
                         "vgg16_narrow", "--size", "0", "0")
    assert code == 2 and "--size: width and height must be >= 1" in one_error_line(err)
    assert not out.exists()


def test_cam_image_too_small(base: Path) -> None:
    folder = base / "tiny8"
    folder.mkdir()
    for i in range(3):
        Image.fromarray(np.full((8, 8), 40 * i, np.uint8)).save(folder / f"t{i}.png")
    out = base / "cam8"
    code, _, err = racam("cam", "--images", folder, "--out", out, "--model", "vgg16_narrow")
    line = one_error_line(err)
    assert code == 2 and f"{folder / 't0.png'}: image is 8x8" in line and "--size" in line
    assert not out.exists()
    # resized, they are fine
    code, _, _ = racam("cam", "--images", folder, "--out", out, "--model", "vgg16_narrow",
                       "--size", "32", "32")
    assert code == 0 and len(list((out / "maps").glob("*.npy"))) == 3


def test_cam_rerun_failing_part_way_keeps_the_previous_result(base: Path) -> None:
    folder, out = base / "mixed", base / "camre"
    folder.mkdir()
    for name in ("a", "b"):
        (folder / f"{name}.png").write_bytes((base / "ds" / "good" / "g0.png").read_bytes())
    assert racam("cam", "--images", folder, "--out", out, "--model", "vgg16_narrow")[0] == 0
    before = {p.name: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    (folder / "c.png").write_bytes(b"junk")
    code, _, err = racam("cam", "--images", folder, "--out", out, "--model", "vgg16_narrow",
                         "--method", "gradcam")
    assert code == 2 and f"{folder / 'c.png'}: cannot read image file" in one_error_line(err)
    after = {p.name: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before  # old maps and the manifest describing them, nothing else
    assert json.loads((out / "manifest.json").read_text())["method"] == "racam"


def test_constant_image_gets_an_all_zero_map(base: Path) -> None:
    folder, out = base / "const", base / "camconst"
    folder.mkdir()
    Image.fromarray(np.full((48, 48), 128, np.uint8)).save(folder / "c.png")
    assert racam("cam", "--images", folder, "--out", out, "--model", "vgg16_narrow")[0] == 0
    assert not np.load(out / "maps" / "c.npy").any()


def test_crafted_checkpoint_is_refused_without_torch_advice(base: Path) -> None:
    marker = base / "pwned"
    torch.save({"x": _Evil(str(marker))}, base / "evil.pt")
    code, _, err = racam("cam", "--images", base / "ds" / "good", "--out", base / "camevil",
                         "--checkpoint", base / "evil.pt")
    line = one_error_line(err)
    assert code == 2 and f"checkpoint {base / 'evil.pt'}: refused" in line
    assert "weights_only" not in line and "weights_only" not in err
    assert not marker.exists() and not (base / "camevil").exists()


class _Evil:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


# ------------------------------------------------------------------ whole runs, n/a
@pytest.mark.parametrize(("name", "good", "defect", "na"), [
    ("one_defect", 4, 1, ["cam_paper"]),
    ("one_each", 1, 1, ["cam_paper", "segmentation"]),
])
def test_no_score_from_an_empty_set(tmp_path: Path, name: str, good: int, defect: int,
                                    na: list[str]) -> None:
    cfg = write_config(tmp_path / "cfg.yaml", make_folder(tmp_path / "ds", good, defect),
                       tmp_path / "run")
    code, out, err = racam("run", cfg, "--quiet")
    assert code == 0, err
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    report = (tmp_path / "run" / "run-report.md").read_text()
    for key in na:  # the test split has no defective image: nothing to score
        assert results[key]["iou"] is None and "undefined" in results[key]
        assert f"warning: {key}: " in err and "n/a" in err
    assert "100.00" not in out and "100.00" not in report
    assert "n/a" in report


def test_train_seg_on_a_folder_without_masks(tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "cfg.yaml", make_folder(tmp_path / "ds", 6, 6, masks=False),
                       tmp_path / "run")
    code, out, err = racam("train-seg", cfg)
    assert code == 0, err
    assert "not scored: the test images have no masks" in out
    seg = next((tmp_path / "run" / "fold0" / "segmentation").iterdir())
    assert json.loads((seg / "result.json").read_text())["counts"] is None


# ----------------------------------------------------------------- resumed and refused
@pytest.fixture(scope="module")
def trained(base: Path) -> Path:
    """A run folder with a finished classifier and pseudo-labels."""
    out = base / "trained"
    code, _, err = racam("pseudo-labels", base / "cfg.yaml", "--out", out)
    assert code == 0, err
    return out


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.mark.parametrize(("command", "change", "differs"), [
    ("train-classifier", "classifier.epochs=2", "classifier.epochs: 1 stored, 2 now"),
    ("pseudo-labels", "cam.fusion=mean", "cam.fusion: 'max' stored, 'mean' now"),
    ("pseudo-labels", "cam.layers=[S4]", "cam.layers: None stored, ['S4'] now"),
])
def test_refused_rerun_names_the_differing_keys_and_writes_nothing(
        base: Path, trained: Path, command: str, change: str, differs: str) -> None:
    before = _snapshot(trained)
    code, _, err = racam(command, base / "cfg.yaml", "--out", trained, "--set", change)
    line = one_error_line(err)
    assert code == 2 and differs in line and "computed with a different config" in line
    assert len(line) < 300  # the differing keys, not two whole configs
    assert _snapshot(trained) == before  # config.json included


def test_stage_keys_hold_the_checkpoint_and_data_digests(trained: Path) -> None:
    result = json.loads(next((trained / "fold0" / "pseudo").glob("*/result.json")).read_text())
    assert set(result["key"]["inputs"]) == {"data", "checkpoint"}
    manifest = json.loads(next((trained / "fold0" / "pseudo").glob("*/manifest.json"))
                          .read_text())
    assert manifest["key"] == result["key"]
    assert not list((trained / "fold0" / "pseudo").glob("*.partial"))


def test_lr_in_exponent_notation_is_a_float(base: Path) -> None:
    out = base / "lr"
    code, _, err = racam("train-classifier", base / "cfg.yaml", "--out", out,
                         "--set", "classifier.lr=1e-3")
    assert code == 0, err
    assert json.loads((out / "config.json").read_text())["classifier"]["lr"] == 0.001


def test_fold_the_dataset_lacks(base: Path, trained: Path) -> None:
    code, _, err = racam("train-classifier", base / "cfg.yaml", "--out", trained, "--fold", "3")
    assert code == 2 and "--fold 3: data.folds: [3]" in one_error_line(err)


def test_unexpected_errors_keep_their_traceback() -> None:
    assert error_line(ValueError("bug")) is None and error_line(KeyError("x")) is None
    assert error_line(FileNotFoundError(2, "No such file or directory", "/x")) == \
        "/x: No such file or directory"


# ---------------------------------------------------------------- image bit depths and modes
def _modes(tmp: Path) -> list[tuple[str, Path, float]]:
    """(mode, file, expected maximum in [0, 1]) for one image per PIL mode."""
    ramp = (np.arange(64).reshape(8, 8) * 4).astype(np.uint8)  # 0..252
    out = []
    for mode in ("L", "P", "LA", "RGB", "RGBA", "CMYK", "1"):
        path = tmp / f"m_{mode}.{'tif' if mode == 'CMYK' else 'png'}"
        Image.fromarray(ramp).convert(mode).save(path)
        out.append((mode, path, 1.0 if mode == "1" else 252 / 255))
    deep = (np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000)  # 0..63000
    Image.fromarray(deep).save(tmp / "m_16.png")
    out.append(("I;16", tmp / "m_16.png", 63000 / 65535))
    Image.fromarray(deep.astype(np.int32), mode="I").save(tmp / "m_I.tif")
    out.append(("I", tmp / "m_I.tif", 63000 / 65535))
    Image.fromarray((deep / 65535).astype(np.float32), mode="F").save(tmp / "m_F.tif")
    out.append(("F", tmp / "m_F.tif", 63000 / 65535))
    return out


def test_every_mode_and_bit_depth_is_read_with_its_true_values(tmp_path: Path) -> None:
    from racam.data.io import read_image_tensor

    for mode, path, top in _modes(tmp_path):
        assert Image.open(path).mode == mode, path
        for channels in (1, 3):
            t = read_image_tensor(path, channels)
            assert t.shape == (channels, 8, 8) and t.dtype == torch.float32
            assert t.max().item() == pytest.approx(top, abs=1e-6), (mode, channels)
            assert t.min().item() == 0.0
    # 16-bit values keep their 16-bit precision (not rounded to 8 bits)
    t = read_image_tensor(tmp_path / "m_16.png")[0]
    assert torch.allclose(t, torch.arange(64.0).reshape(8, 8) * 1000 / 65535, atol=1e-7)


def test_unscalable_images_are_refused(tmp_path: Path) -> None:
    from racam.data.io import read_image_tensor
    from racam.errors import DataError

    Image.fromarray(np.full((4, 4), 70000, np.int32), mode="I").save(tmp_path / "big.tif")
    with pytest.raises(DataError, match="big.tif: 32-bit integer image with values outside"):
        read_image_tensor(tmp_path / "big.tif")
    # float images: scaled by the smallest of 1, 255, 65535 holding them (3.5 -> 3.5 / 255);
    # negative, NaN or above 65535 cannot be scaled
    Image.fromarray(np.full((4, 4), 3.5, np.float32), mode="F").save(tmp_path / "f.tif")
    assert read_image_tensor(tmp_path / "f.tif").max().item() == pytest.approx(3.5 / 255)
    for name, value in (("neg", -0.5), ("nan", np.nan), ("huge", 70000.0)):
        Image.fromarray(np.full((4, 4), value, np.float32), mode="F").save(tmp_path / f"{name}.tif")
        with pytest.raises(DataError, match=rf"{name}.tif: float image with values outside "
                           r"\[0, 1\], \[0, 255\] and \[0, 65535\]"):
            read_image_tensor(tmp_path / f"{name}.tif")


def test_a_16_bit_folder_dataset_trains_on_true_values(tmp_path: Path) -> None:
    """A 16-bit PNG in a folder dataset reaches the network with its values, not all 1.0."""
    from racam.data import FolderDataset

    root = make_folder(tmp_path / "ds", 2, 2)
    deep = (np.arange(1024, dtype=np.uint16).reshape(32, 32) * 40)
    Image.fromarray(deep).save(root / "good" / "g0.png")
    ds = FolderDataset(root, split="all", size=(32, 32), channels=1)
    i = next(k for k, r in enumerate(ds.records) if r.id.endswith("g0"))
    image = ds[i].image[0]
    assert torch.allclose(image, torch.from_numpy(deep / 65535).float(), atol=1e-6)
