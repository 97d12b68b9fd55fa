"""Bad-input matrix of ``racam predict`` / ``racam export`` (issue 24): through the real entry
point, the exit code, the one-line message and what is and is not on disk afterwards, with the
SHA-256 of every file the user owned before. Also the bundle's metadata round trip and predict
from a bundle against predict from the run folder.

Images: real KolektorSDD images of the sample bundled with racam. Runs: the session's tiny
1-channel run (``trained_run``) and a tiny 3-channel run made here (a few seconds).
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
import torch.nn.functional as F
from helpers import TINY_CFG, racam
from PIL import Image
from test_bad_input import one_error_line

import racam as racam_pkg
from racam.data.registry import BUILTIN_ROOTS
from racam.deploy.bundle import read_bundle
from racam.errors import DataError
from racam.segmentation import load_segmentation

SAMPLE = BUILTIN_ROOTS["builtin:ksdd_sample"]
MARKER = ".racam-predict.json"
SOURCES = [("kos10", 0), ("kos14", 1), ("kos15", 2)]


def real_images(dest: Path) -> Path:
    """Three real sample images (grayscale JPEGs) as ``d0.png`` .. ``d2.png``; returns ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    for i, (item, part) in enumerate(SOURCES):
        Image.open(SAMPLE / item / f"Part{part}.jpg").save(dest / f"d{i}.png")
    return dest


def snapshot(folder: Path) -> dict[str, str]:
    """SHA-256 of every file under ``folder`` by relative path."""
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def csv_rows(out: Path) -> dict[str, dict[str, str]]:
    with (out / "predictions.csv").open() as f:
        return {r["file"]: r for r in csv.DictReader(f)}


@pytest.fixture(scope="module")
def run3(tmp_path_factory) -> Path:
    """A finished tiny run on RGB input (``data.channels: 3``)."""
    from racam.config import load_config
    from racam.engine import Engine

    out = tmp_path_factory.mktemp("run3")
    cfg = load_config(TINY_CFG, {"output": str(out), "device": "cpu", "data.size": [64, 160],
                               "data.channels": 3, "classifier.epochs": 1,
                               "classifier.samples_per_epoch": 8, "segmentation.epochs": 1,
                               "segmentation.samples_per_epoch": 4})
    Engine(cfg, progress=False, log=lambda _: None).run()
    return out


@pytest.fixture(scope="module")
def bundle1(trained_run, tmp_path_factory) -> Path:
    """The 1-channel run's bundle, exported under umask 027 (see the umask tests)."""
    out = tmp_path_factory.mktemp("b") / "bundle1"
    old = os.umask(0o027)
    try:
        code, stdout, err = racam("export", trained_run, "--out", out)
    finally:
        os.umask(old)
    assert code == 0, err
    assert f"{out / 'bundle.json'}: 1 channel(s), 64x160" in stdout
    return out


@pytest.fixture(scope="module")
def bundle3(run3, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("b") / "bundle3"
    assert racam("export", run3, "--out", out)[0] == 0
    return out


@pytest.fixture()
def images(tmp_path) -> Path:
    return real_images(tmp_path / "imgs")


# ------------------------------------------------------------ the output folder is predict's
def test_out_at_a_dataset_root_keeps_its_ground_truth(trained_run, tmp_path) -> None:
    """``--out`` at a folder dataset's root: refused; with ``--into-existing`` the ground-truth
    ``masks/d0.png`` (the mask predict would write for ``defect/d0.png``) is named, not
    overwritten; nothing is written either time."""
    ds = tmp_path / "ds"
    real_images(ds / "defect")
    (ds / "masks").mkdir()
    for i, (item, part) in enumerate(SOURCES):
        shutil.copy(SAMPLE / item / f"Part{part}_label.png", ds / "masks" / f"d{i}.png")
    before = snapshot(ds)
    code, _, err = racam("predict", trained_run, "--images", ds / "defect", "--out", ds,
                         "--device", "cpu", "--quiet")
    line = one_error_line(err)
    assert code == 2 and f"{ds}: folder is not empty and was not made by racam predict" in line
    assert "--into-existing" in line
    assert snapshot(ds) == before
    code, _, err = racam("predict", trained_run, "--images", ds / "defect", "--out", ds,
                         "--into-existing", "--device", "cpu", "--quiet")
    assert code == 2
    assert one_error_line(err) == (f"error: {ds / 'masks' / 'd0.png'}: exists and was not "
                                   "written by racam predict; not replaced (give another --out)")
    assert snapshot(ds) == before and not (ds / MARKER).exists()


def users_folder(out: Path) -> dict[str, str]:
    """A folder of the user's own: a gallery, a table and notes; returns their checksums."""
    out.mkdir()
    (out / "index.html").write_text("<h1>my own gallery</h1>\n")
    (out / "predictions.csv").write_text("file,my column\nx.png,1\n")
    (out / "notes.txt").write_text("do not lose me\n")
    return snapshot(out)


def test_users_gallery_and_table_are_never_replaced(trained_run, images, tmp_path) -> None:
    out = tmp_path / "mine"
    before = users_folder(out)
    code, _, err = racam("predict", trained_run, "--images", images, "--out", out,
                         "--into-existing", "--device", "cpu", "--quiet")
    assert code == 2
    assert f"{out / 'index.html'}: exists and was not written by racam predict" in \
        one_error_line(err)
    assert snapshot(out) == before


START_FAILURES = {
    "threshold": ["--threshold", "2"],
    "source": ["--source", "nosuch"],
    "cam_with_onnx": ["--source", "cam", "--onnx", "BUNDLE"],
    "no_images": ["--images", "EMPTY"],
    "other_bundle": ["--onnx", "BUNDLE3"],
}


@pytest.mark.parametrize("case", sorted(START_FAILURES))
def test_a_failure_at_start_leaves_the_users_files(trained_run, bundle1, bundle3, images,
                                                   tmp_path, case) -> None:
    """Each refusal comes before the first write (the old predict deleted the user's
    ``index.html`` and ``predictions.csv`` first)."""
    out = tmp_path / "mine"
    before = users_folder(out)
    (tmp_path / "empty").mkdir()
    subst = {"BUNDLE": str(bundle1), "BUNDLE3": str(bundle3), "EMPTY": str(tmp_path / "empty")}
    extra = [subst.get(a, a) for a in START_FAILURES[case]]
    args = ["--images", images, "--out", out, "--into-existing", "--device", "cpu", "--quiet"]
    code, _, err = racam("predict", trained_run, *args, *extra)
    assert code == 2 and one_error_line(err)
    assert snapshot(out) == before


def test_into_existing_writes_beside_the_users_files_only(trained_run, images, tmp_path) -> None:
    out = tmp_path / "shared"
    out.mkdir()
    (out / "notes.txt").write_text("mine\n")
    (out / "masks").mkdir()
    (out / "masks" / "other.png").write_bytes((images / "d0.png").read_bytes())
    before = snapshot(out)
    code, stdout, err = racam("predict", trained_run, "--images", images, "--out", out,
                              "--into-existing", "--device", "cpu", "--quiet")
    assert code == 0, err
    assert "3 images: 3 predicted, 0 already done, 0 unreadable" in stdout
    after = snapshot(out)
    assert {k: after[k] for k in before} == before  # the user's files, byte for byte
    listed = set(json.loads((out / MARKER).read_text())["files"])
    assert listed == set(after) - set(before) - {MARKER}  # exactly what predict wrote
    assert {f"masks/d{i}.png" for i in range(3)} <= listed
    # a second call needs no flag (the marker) and redoes nothing
    code, stdout, _ = racam("predict", trained_run, "--images", images, "--out", out,
                            "--device", "cpu", "--quiet")
    assert code == 0 and "3 images: 0 predicted, 3 already done" in stdout
    # a new image whose mask name the user has taken in predict's own folder
    (images / "other.png").write_bytes((images / "d1.png").read_bytes())
    before = snapshot(out)
    code, _, err = racam("predict", trained_run, "--images", images, "--out", out,
                         "--device", "cpu", "--quiet")
    assert code == 2
    assert f"{out / 'masks' / 'other.png'}: exists and was not written by racam predict" in \
        one_error_line(err)
    assert snapshot(out) == before


def test_outputs_inside_the_images_are_never_read(trained_run, images) -> None:
    """Day 1 and day 2 write their ``--out`` inside ``--images``: each reads only the three
    images; an earlier output given as ``--images`` is refused."""
    for day in ("day1", "day2", "day1"):
        code, stdout, err = racam("predict", trained_run, "--images", images, "--out",
                                  images / day, "--device", "cpu", "--quiet")
        assert code == 0, err
        assert stdout.startswith("3 images: ")
        assert set(csv_rows(images / day)) == {"d0.png", "d1.png", "d2.png"}
    assert "3 images: 0 predicted, 3 already done" in stdout  # day 1 again
    code, _, err = racam("predict", trained_run, "--images", images / "day1", "--out",
                         images.parent / "day3", "--device", "cpu", "--quiet")
    assert code == 2
    assert f"{images / 'day1'}: an output folder of racam predict" in one_error_line(err)
    assert not (images.parent / "day3").exists()


def test_marker_that_is_not_ours_is_refused(trained_run, images, tmp_path) -> None:
    out = tmp_path / "odd"
    out.mkdir()
    (out / MARKER).write_text("[1, 2]\n")
    before = snapshot(out)
    code, _, err = racam("predict", trained_run, "--images", images, "--out", out,
                         "--device", "cpu", "--quiet")
    assert code == 2 and f"{out / MARKER}: not a racam predict marker" in one_error_line(err)
    assert snapshot(out) == before


# ------------------------------------------------------------------------- provenance
def test_bundle_of_another_run_or_channel_count_is_refused(trained_run, run3, bundle1,
                                                           bundle3, images, tmp_path) -> None:
    cases = [(trained_run, bundle3, ["3 input channel(s) there, 1 here", f"run {run3.resolve()}",
                                     f"not from the run {trained_run}"]),
             (run3, bundle1, ["1 input channel(s) there, 3 here",
                              f"run {trained_run.resolve()}", f"not from the run {run3}"])]
    other = tmp_path / "rerun"  # the same run with another config (seed): another run
    shutil.copytree(trained_run, other)
    cfg = json.loads((other / "config.json").read_text())
    cfg["seed"] = 1
    (other / "config.json").write_text(json.dumps(cfg))
    cases.append((other, bundle1, ["another config", f"not from the run {other}"]))
    for run, bundle, parts in cases:
        out = tmp_path / "out"
        code, _, err = racam("predict", run, "--images", images, "--out", out, "--onnx", bundle,
                             "--device", "cpu", "--quiet")
        line = one_error_line(err)
        assert code == 2 and line.startswith(f"error: --onnx {bundle}: exported from ")
        assert all(p in line for p in parts), line
        assert not out.exists()


def test_swapped_onnx_file_and_old_export_folder(trained_run, run3, bundle1, bundle3, images,
                                                 tmp_path) -> None:
    swapped = tmp_path / "swapped"
    shutil.copytree(bundle1, swapped)
    shutil.copy(bundle3 / "classifier.onnx", swapped / "classifier.onnx")
    code, _, err = racam("predict", swapped, "--images", images, "--out", tmp_path / "o1",
                         "--device", "cpu", "--quiet")
    assert code == 2 and (f"{swapped / 'classifier.onnx'}: not the file bundle.json describes"
                          in one_error_line(err))
    # an export folder of the earlier racam (export.json: the run's path, no digests)
    old = tmp_path / "old"
    old.mkdir()
    for name in ("classifier.onnx", "segmentation.onnx"):
        shutil.copy(bundle3 / name, old / name)
    meta = json.loads((bundle3 / "bundle.json").read_text())
    (old / "export.json").write_text(json.dumps({
        "run": meta["source"]["run"], "fold": 0, "size": meta["size"], "channels": 3,
        "threshold": 0.5, "opset": 18,
        "classifier": {"file": "classifier.onnx", "dynamic_axes": ["batch"]},
        "segmentation": {"file": "segmentation.onnx", "dynamic_axes": ["batch"]}}))
    code, _, err = racam("predict", trained_run, "--images", images, "--out", tmp_path / "o2",
                         "--onnx", old, "--device", "cpu", "--quiet")
    line = one_error_line(err)
    assert code == 2 and f"--onnx {old}: exported from run {run3.resolve()}" in line
    assert "another run folder" in line and "3 input channel(s) there, 1 here" in line
    # with its own run it is accepted
    code, stdout, err = racam("predict", run3, "--images", images, "--out", tmp_path / "o3",
                              "--onnx", old, "--device", "cpu", "--quiet")
    assert code == 0 and "3 predicted" in stdout, err
    assert not (tmp_path / "o1").exists() and not (tmp_path / "o2").exists()


def test_bundle_of_a_3_channel_run_reads_grayscale_images(bundle3, images, tmp_path) -> None:
    """The images' channels follow the bundle (grayscale converted to RGB), no onnxruntime
    error."""
    code, stdout, err = racam("predict", bundle3, "--images", images, "--out", tmp_path / "o",
                              "--device", "cpu", "--quiet")
    assert code == 0 and "3 images: 3 predicted, 0 already done, 0 unreadable" in stdout, err


def test_export_never_replaces_a_users_model_file(trained_run, tmp_path) -> None:
    out = tmp_path / "models"
    out.mkdir()
    (out / "classifier.onnx").write_bytes(b"my own network")
    before = snapshot(out)
    code, _, err = racam("export", trained_run, "--out", out)
    assert code == 2 and (f"{out / 'classifier.onnx'}: exists and was not written by racam "
                          "export" in one_error_line(err))
    assert snapshot(out) == before


def test_broken_bundle_json_is_named(bundle1, images, tmp_path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(bundle1, broken)
    meta = json.loads((broken / "bundle.json").read_text())
    del meta["channels"]
    (broken / "bundle.json").write_text(json.dumps(meta))
    code, _, err = racam("predict", broken, "--images", images, "--out", tmp_path / "o",
                         "--device", "cpu", "--quiet")
    assert code == 2 and (f"{broken / 'bundle.json'}: key 'channels' missing"
                          in one_error_line(err))
    with pytest.raises(DataError, match="not a racam export bundle"):
        read_bundle(images)
    code, _, err = racam("predict", images, "--images", images, "--out", tmp_path / "o")
    assert code == 2 and one_error_line(err) == (
        f"error: {images}: neither a racam run folder (no config.json) nor an export bundle "
        "(no bundle.json)")
    assert not (tmp_path / "o").exists()


# ------------------------------------------------------------------ bundle = run folder
def test_bundle_metadata_round_trips_and_describes_the_run(trained_run, bundle1) -> None:
    stored = json.loads((bundle1 / "bundle.json").read_text())
    meta = read_bundle(bundle1)
    assert json.loads(json.dumps(meta.to_dict())) == stored  # read -> write gives the file
    cfg = json.loads((trained_run / "config.json").read_text())
    assert list(meta.size) == cfg["data"]["size"] == [64, 160]
    assert meta.channels == cfg["data"]["channels"] == 1
    assert meta.decision_threshold == cfg["classifier"]["threshold"]
    assert meta.racam_version == racam_pkg.__version__ and meta.schema == 1
    assert (meta.mask.source, meta.mask.activation, meta.mask.channel, meta.mask.threshold,
            meta.mask.resize) == ("seg", "softmax", 1, 0.5, "bilinear")
    assert (meta.normalisation.range, meta.normalisation.mean, meta.normalisation.std) == \
        ((0.0, 1.0), 0.0, 1.0)
    src = meta.source
    assert src.run == str(trained_run.resolve()) and src.fold == 0
    assert src.config_sha256 == hashlib.sha256(
        json.dumps(cfg, sort_keys=True).encode()).hexdigest()
    assert src.classifier_sha256 == sha256(trained_run / "fold0/classifier/best.pt")
    seg_ckpt = next((trained_run / "fold0/segmentation").glob("*/last.pt"))
    assert src.segmentation_sha256 == sha256(seg_ckpt)
    for part, model in meta.models.items():
        assert model.format == "onnx" and model.sha256 == sha256(bundle1 / model.file)
        session = ort.InferenceSession(str(bundle1 / model.file),
                                       providers=["CPUExecutionProvider"])
        assert session.get_inputs()[0].shape[1] == meta.channels, part


def seg_probability(trained_run: Path, image: Path) -> np.ndarray:
    """Defect probability of the run's segmentation network at the image's original size,
    computed here with PIL and torch (the mask rule: softmax, channel 1, bilinear resize)."""
    seg, _ = load_segmentation(next((trained_run / "fold0/segmentation").glob("*/last.pt")))
    img = Image.open(image).convert("L")
    small = img.resize((64, 160), Image.Resampling.BILINEAR)
    x = torch.from_numpy(np.asarray(small, dtype=np.float32) / 255.0)[None, None]
    with torch.no_grad():
        p = seg(x).softmax(1)[:, 1:]
    big = F.interpolate(p, size=(img.size[1], img.size[0]), mode="bilinear",
                        align_corners=False)
    return big[0, 0].clamp(0, 1).numpy()


def test_predict_from_a_bundle_gives_the_run_folders_masks(trained_run, bundle1, images,
                                                           tmp_path) -> None:
    """Masks and probabilities of ``racam predict BUNDLE`` (onnxruntime) against ``racam
    predict RUN`` (torch) and against the probability computed here. Tolerance: ONNX and torch
    logits differ by float32 rounding (<= 1e-4, ``test_onnx_export``); softmax changes by at
    most 1/4 of a logit difference, so probabilities agree within 1e-4 and a mask pixel may
    differ only where the probability lies within 1e-3 of the 0.5 cut."""
    outs = {}
    for name, model in (("run", trained_run), ("bundle", bundle1)):
        outs[name] = tmp_path / name
        code, _, err = racam("predict", model, "--images", images, "--out", outs[name],
                             "--device", "cpu", "--quiet")
        assert code == 0, err
    a, b = csv_rows(outs["run"]), csv_rows(outs["bundle"])
    assert set(a) == set(b) == {"d0.png", "d1.png", "d2.png"}
    for name in a:
        assert abs(float(a[name]["probability"]) - float(b[name]["probability"])) <= 1e-4
        prob = seg_probability(trained_run, images / name)
        sure = np.abs(prob - 0.5) > 1e-3
        for out in outs.values():
            mask = np.asarray(Image.open(out / "masks" / name)) > 0
            assert mask.shape == prob.shape
            assert np.array_equal(mask[sure], (prob > 0.5)[sure]), (out, name)
        assert sure.mean() > 0.99  # the comparison covers nearly every pixel


# ------------------------------------------------------------------------------ umask
def test_exported_models_follow_the_umask(bundle1) -> None:
    for name in ("classifier.onnx", "segmentation.onnx"):
        assert (bundle1 / name).stat().st_mode & 0o777 == 0o640


def test_predict_outputs_and_bundle_json_follow_the_umask(trained_run, bundle1, images,
                                                          tmp_path) -> None:
    old = os.umask(0o027)
    try:
        assert racam("predict", trained_run, "--images", images, "--out", tmp_path / "o",
                     "--device", "cpu", "--quiet")[0] == 0
    finally:
        os.umask(old)
    files = [p for p in (tmp_path / "o").rglob("*") if p.is_file()]
    files.append(bundle1 / "bundle.json")
    assert len(files) > 6
    assert {p.relative_to(p.parents[1]).as_posix(): p.stat().st_mode & 0o777
            for p in files} == {p.relative_to(p.parents[1]).as_posix(): 0o640 for p in files}


def test_deploy_imports_nothing_of_the_training_pipeline() -> None:
    """``racam.deploy`` (and the ``predict`` / ``export`` commands) stand on their own."""
    import subprocess
    import sys

    code = ("import sys, racam.deploy.predict, racam.deploy.export, racam.cli.predict\n"
            "print(sorted(m for m in sys.modules if m.split('.')[:2] in "
            "(['racam', 'pipeline'], ['racam', 'engine'], ['racam', 'stages'])))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert out.stdout.strip() == "[]"
