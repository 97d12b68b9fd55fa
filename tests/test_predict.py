"""``racam predict`` on unseen real KolektorSDD images of mixed sizes and modes."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import ndimage
from typer.testing import CliRunner

from racam.checkpoint import load_classifier
from racam.cli import app
from racam.deploy.predict import PredictOptions, predict_folder
from racam.errors import DataError

pytestmark = pytest.mark.data


def mixed_folder(ksdd_root: Path, dest: Path) -> dict[str, tuple[int, int]]:
    """Real images in several sizes and modes plus one corrupt file; returns the readable
    files (relative paths) with their (width, height)."""
    (dest / "sub").mkdir(parents=True)
    src = lambda item, part: Image.open(ksdd_root / item / f"Part{part}.jpg")  # noqa: E731
    src("kos01", 0).resize((250, 600)).save(dest / "gray.png")
    src("kos02", 3).convert("RGB").resize((200, 480)).save(dest / "rgb.jpg")
    src("kos03", 1).convert("RGBA").save(dest / "sub" / "rgba.png")
    src("kos04", 2).convert("P").resize((300, 700)).save(dest / "sub" / "palette.png")
    sixteen = np.asarray(src("kos05", 4).convert("L"), dtype=np.uint16) * 257
    Image.fromarray(sixteen).save(dest / "sixteen.png")
    (dest / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    return {str(p.relative_to(dest).as_posix()): Image.open(p).size
            for p in sorted(dest.rglob("*.png")) + [dest / "rgb.jpg"] if p.name != "corrupt.png"}


def read_rows(out: Path) -> dict[str, dict[str, str]]:
    with (out / "predictions.csv").open() as f:
        return {r["file"]: r for r in csv.DictReader(f)}


def test_predict_writes_original_size_masks_csv_gallery_and_skips_on_rerun(
        trained_run, ksdd_root, tmp_path) -> None:
    sizes = mixed_folder(ksdd_root, tmp_path / "imgs")
    out = tmp_path / "pred"
    res = CliRunner().invoke(app, ["predict", str(trained_run), "--images", str(tmp_path / "imgs"),
                                   "--out", str(out), "--batch-size", "2", "--device", "cpu"],
                             catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert "6 images: 5 predicted, 0 already done, 1 unreadable" in res.output
    rows = read_rows(out)
    assert set(rows) == set(sizes) | {"corrupt.png"}
    bad = rows["corrupt.png"]
    assert str(tmp_path / "imgs/corrupt.png") in bad["error"] and bad["probability"] == ""
    for name, (w, h) in sizes.items():
        r = rows[name]
        mask_path = out / "masks" / Path(name).with_suffix(".png")
        mask = np.asarray(Image.open(mask_path))
        assert mask.shape == (h, w) and set(np.unique(mask)) <= {0, 255}, name
        assert r["mask"] == mask_path.relative_to(out).as_posix() and r["error"] == ""
        assert (out / r["overlay"]).is_file() and Image.open(out / r["overlay"]).size == (w, h)
        defect = mask > 0
        assert int(r["defect_pixels"]) == defect.sum()
        assert float(r["defect_percent"]) == pytest.approx(100 * defect.mean(), abs=1e-4)
        labels, _ = ndimage.label(defect, structure=np.ones((3, 3)))
        boxes = sorted(f"{s[1].start} {s[0].start} {s[1].stop - s[1].start} "
                       f"{s[0].stop - s[0].start}" for s in ndimage.find_objects(labels))
        assert sorted(filter(None, r["boxes"].split(";"))) == boxes
        p = float(r["probability"])
        assert r["decision"] == ("defect" if p >= 0.5 else "good")

    # the probability of the grayscale image, computed independently of racam's reader
    model, _ = load_classifier(trained_run / "fold0/classifier/best.pt")
    img = Image.open(tmp_path / "imgs/gray.png").convert("L").resize((64, 160),
                                                                     Image.Resampling.BILINEAR)
    x = torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0)[None, None]
    with torch.no_grad():
        expected = model(x).softmax(1)[0, 1].item()
    assert float(rows["gray.png"]["probability"]) == pytest.approx(expected, abs=1e-5)

    page = (out / "index.html").read_text()
    order = sorted((n for n in sizes), key=lambda n: -float(rows[n]["probability"]))
    positions = [page.index(f"alt='{n}'") for n in order]
    assert positions == sorted(positions)  # sorted by probability, highest first

    mtimes = {p: p.stat().st_mtime_ns for p in (out / "masks").rglob("*.png")}
    os.utime(tmp_path / "imgs/gray.png")  # a changed file is predicted again
    s = predict_folder(trained_run, PredictOptions(images=tmp_path / "imgs", out=out,
                                                   device="cpu", progress=False))
    assert (s.total, s.predicted, s.skipped, s.errors) == (6, 1, 4, 1)
    changed = {p for p, t in mtimes.items() if p.stat().st_mtime_ns != t}
    assert changed == {out / "masks/gray.png"}
    assert read_rows(out) == rows


def test_predict_from_heat_maps_follows_the_decision(trained_run, ksdd_root, tmp_path) -> None:
    mixed_folder(ksdd_root, tmp_path / "imgs")
    for thr, empty in ((1.0, True), (0.0, False)):
        out = tmp_path / f"cam{thr}"
        predict_folder(trained_run, PredictOptions(images=tmp_path / "imgs", out=out,
                                                   source="cam", threshold=thr, device="cpu",
                                                   progress=False))
        rows = [r for r in read_rows(out).values() if not r["error"]]
        assert len(rows) == 5
        # threshold 1: every image is called good and gets an empty mask; 0: Otsu finds a
        # foreground in each map
        assert all((int(r["defect_pixels"]) == 0) == empty for r in rows)
        assert all(r["decision"] == ("good" if empty else "defect") for r in rows)


def test_predict_names_a_missing_run_folder(tmp_path) -> None:
    with pytest.raises(DataError, match=str(tmp_path / "nope")):
        predict_folder(tmp_path / "nope", PredictOptions(images=tmp_path, out=tmp_path / "o"))


def test_predict_uses_the_classifier_attempt_the_run_chose(trained_run, tmp_path) -> None:
    """A run whose first classifier never learned and whose restart was chosen: ``racam
    predict`` / ``export`` load ``restart1/best.pt``, not the failed first attempt."""
    import json
    import shutil

    from racam.deploy.run_dir import open_run

    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    clf = run / "fold0" / "classifier"
    assert open_run(run).classifier_path == clf / "best.pt"
    (clf / "restart1").mkdir()
    shutil.copy(clf / "best.pt", clf / "restart1" / "best.pt")
    result = json.loads((clf / "result.json").read_text())
    result["attempts"] = [{"attempt": 0, "seed": 0, "val_auroc": 0.5, "chosen": False},
                          {"attempt": 1, "seed": 1000, "val_auroc": 1.0, "chosen": True}]
    (clf / "result.json").write_text(json.dumps(result))
    assert open_run(run).classifier_path == clf / "restart1" / "best.pt"


def test_defect_calls_without_a_mask_pixel_are_flagged(trained_run, ksdd_root, tmp_path) -> None:
    """At threshold 0 every image is called defective and none is gated, so the images whose
    network mask is empty (counted from predictions.csv and the mask files) are the ones the
    CLI line, the summary and the gallery's dashed cards name."""
    mixed_folder(ksdd_root, tmp_path / "imgs")
    Image.new("L", (250, 600), 0).save(tmp_path / "imgs" / "black.png")
    out = tmp_path / "pred"
    res = CliRunner().invoke(app, ["predict", str(trained_run), "--images", str(tmp_path / "imgs"),
                                   "--out", str(out), "--threshold", "0", "--device", "cpu",
                                   "--quiet"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    rows = {n: r for n, r in read_rows(out).items() if not r["error"]}
    empty = {n for n, r in rows.items()
             if not np.asarray(Image.open(out / r["mask"])).any()}
    assert all(r["decision"] == "defect" for r in rows.values())
    assert empty == {n for n, r in rows.items() if r["defect_pixels"] == "0"}
    assert empty, "no empty mask: the check below would not be exercised"
    assert f"{len(empty)} image(s) called defective with no defect pixel outlined" in res.output
    page = (out / "index.html").read_text()
    assert f"<b>{len(empty)} image(s) called defective with no defect pixel outlined" in page
    flagged = {n for n in rows if f"class='defect unlocated'><a href='{rows[n]['overlay']}'"
               in page}
    assert flagged == empty
    # at threshold 1 every image is called good and gated: nothing to flag
    res = CliRunner().invoke(app, ["predict", str(trained_run), "--images", str(tmp_path / "imgs"),
                                   "--out", str(tmp_path / "good"), "--threshold", "1",
                                   "--device", "cpu", "--quiet"], catch_exceptions=False)
    assert "no defect pixel" not in res.output
    assert "class='defect unlocated'" not in (tmp_path / "good" / "index.html").read_text()
