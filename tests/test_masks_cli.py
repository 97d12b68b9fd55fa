"""``racam masks export`` / ``racam masks import``: the round trip a user makes (export, correct
one mask in the tool's file, import: only that mask changes), a user's own mask files never
replaced without --overwrite, and bad input as one line + exit 2."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from helpers import racam
from PIL import Image

from racam.data.io import read_mask

# pycocotools 2.0 decoding under numpy 2 warns about numpy's copy= keyword
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

H, W = 40, 56




def one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def _rect(y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    m = np.zeros((H, W), dtype=bool)
    m[y0:y1, x0:x1] = True
    return m


MASKS = {"d1": _rect(5, 15, 10, 30) | _rect(25, 35, 40, 50), "d2": _rect(2, 9, 3, 9),
         "d3": _rect(20, 38, 5, 20), "g1": np.zeros((H, W), dtype=bool)}


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    """A folder dataset whose masks/ the user made: good/, defect/ (PNG and BMP images) and
    masks/<stem>.png."""
    root = tmp_path / "ds"
    for stem, m in MASKS.items():
        sub = "good" if stem.startswith("g") else "defect"
        suffix = ".bmp" if stem == "d2" else ".png"
        (root / sub).mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((H, W), 90, np.uint8)).save(root / sub / f"{stem}{suffix}")
        (root / "masks").mkdir(exist_ok=True)
        Image.fromarray(m.astype(np.uint8) * 255).save(root / "masks" / f"{stem}.png")
    return root


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def _move(points: list, dx: int) -> list:
    return [[x + dx, y] for x, y in points]


@pytest.mark.parametrize("fmt", ["coco", "labelme"])
def test_round_trip_changes_only_the_corrected_mask(dataset, tmp_path, fmt) -> None:
    out = tmp_path / ("labels.json" if fmt == "coco" else "labels")
    code, stdout, err = racam("masks", "export", dataset, "--images", dataset, "--out", out,
                              "--format", fmt)
    assert code == 0, err
    assert "4 images, 4 instances" in stdout
    original = tmp_path / f"original-{out.name}"
    if fmt == "coco":
        shutil.copy(out, original)
    else:
        shutil.copytree(out, original)
    # the user corrects d1 as a labelling tool would: moves one polygon 4 px right, deletes
    # the other
    if fmt == "coco":
        doc = json.loads(out.read_text())
        (d1,) = [i["id"] for i in doc["images"] if i["file_name"] == "defect/d1.png"]
        anns = [a for a in doc["annotations"] if a["image_id"] == d1]
        poly = anns[0]["segmentation"][0]
        anns[0]["segmentation"][0] = [v + 4 if k % 2 == 0 else v for k, v in enumerate(poly)]
        doc["annotations"].remove(anns[1])
        out.write_text(json.dumps(doc))
    else:
        doc = json.loads((out / "d1.json").read_text())
        doc["shapes"][0]["points"] = _move(doc["shapes"][0]["points"], 4)
        del doc["shapes"][1]
        (out / "d1.json").write_text(json.dumps(doc))
    expected = dict(MASKS, d1=_rect(5, 15, 14, 34))

    fresh = tmp_path / "corrected"
    code, stdout, err = racam("masks", "import", out, "--out", fresh)
    assert code == 0, err
    assert sorted(p.name for p in fresh.glob("*.png")) == [f"{s}.png" for s in sorted(MASKS)]
    for stem, m in expected.items():
        assert np.array_equal(read_mask(fresh / f"{stem}.png"), m), stem

    # into the dataset's own masks/: only d1 differs, and it is the user's file
    masks = dataset / "masks"
    before = _snapshot(masks)
    code, _, err = racam("masks", "import", out, "--out", masks)
    assert code == 2
    assert "masks/d1.png: exists and was not written by racam (1 such files)" in \
        one_error_line(err)
    assert _snapshot(masks) == before  # nothing written, not even the record
    code, stdout, err = racam("masks", "import", out, "--out", masks, "--overwrite")
    assert code == 0, err
    assert "0 masks written, 1 replaced (1 not written by racam), 3 unchanged" in stdout
    after = _snapshot(masks)
    assert set(after) == set(before) | {".racam-masks.json"}
    assert [n for n in before if after[n] != before[n]] == ["d1.png"]
    assert np.array_equal(read_mask(masks / "d1.png"), expected["d1"])
    # racam wrote d1.png now: importing the uncorrected export replaces it without --overwrite
    code, stdout, err = racam("masks", "import", original, "--out", masks)
    assert code == 0, err
    assert "0 masks written, 1 replaced (0 not written by racam), 3 unchanged" in stdout
    assert np.array_equal(read_mask(masks / "d1.png"), MASKS["d1"])


def test_export_refuses_to_replace_and_rle_round_trip_keeps_holes(tmp_path) -> None:
    images, masks = tmp_path / "img", tmp_path / "pred" / "masks"
    images.mkdir()
    masks.mkdir(parents=True)
    ring = np.zeros((H, W), dtype=bool)
    ring[5:30, 5:30] = True
    ring[12:20, 12:20] = False
    Image.fromarray(np.zeros((H, W), np.uint8)).save(images / "r.jpg")
    Image.fromarray(ring.astype(np.uint8) * 255).save(masks / "r.png")
    (tmp_path / "pred" / "predictions.csv").write_text("file\n")
    out = tmp_path / "r.json"
    code, _, err = racam("masks", "export", tmp_path / "pred", "--images", images, "--out", out)
    assert code == 0 and "64 pixels inside outlines were filled" in err
    code, _, err = racam("masks", "export", tmp_path / "pred", "--images", images, "--out", out,
                         "--rle")
    assert code == 2 and "r.json: exists" in one_error_line(err)
    code, _, err = racam("masks", "export", masks, "--images", images, "--out", out, "--rle",
                         "--overwrite")
    assert code == 0 and err == ""
    code, _, err = racam("masks", "import", out, "--out", tmp_path / "back")
    assert code == 0, err
    assert np.array_equal(read_mask(tmp_path / "back" / "r.png"), ring)
    # a second import finds racam's own file holding the same mask and leaves it
    stat = (tmp_path / "back" / "r.png").stat().st_mtime_ns
    code, stdout, _ = racam("masks", "import", out, "--out", tmp_path / "back")
    assert code == 0 and "1 unchanged" in stdout
    assert (tmp_path / "back" / "r.png").stat().st_mtime_ns == stat


def _bad_inputs(tmp: Path) -> dict[str, tuple[list[object], str]]:
    img, masks = tmp / "img", tmp / "masks"
    for d in (img, masks):
        d.mkdir()
    Image.fromarray(np.zeros((H, W), np.uint8)).save(img / "a.png")
    Image.fromarray(np.zeros((H, W), np.uint8)).save(masks / "a.png")
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(img / "small.png")
    big = tmp / "big"
    big.mkdir()
    Image.fromarray(np.zeros((H, W), np.uint8)).save(big / "small.png")
    orphan = tmp / "orphan"
    orphan.mkdir()
    Image.fromarray(np.zeros((H, W), np.uint8)).save(orphan / "zzz.png")
    bad_ann = tmp / "bad_ann.json"
    bad_ann.write_text(json.dumps({"images": [{"id": 1, "file_name": "a.png", "width": W,
                                               "height": H}],
                                   "annotations": [{"id": 1, "image_id": 7,
                                                    "segmentation": [[0, 0, 5, 0, 5, 5]]}]}))
    bad_poly = tmp / "bad_poly.json"
    bad_poly.write_text(json.dumps({"images": [{"id": 1, "file_name": "a.png", "width": W,
                                                "height": H}],
                                    "annotations": [{"id": 1, "image_id": 1,
                                                     "segmentation": [[0, 0, 5]]}]}))
    (tmp / "text.json").write_text("not json")
    root = tmp / "ds"
    for sub in ("good", "defect"):
        (root / sub).mkdir(parents=True)
    lm_file = tmp / "a.json"
    lm_file.write_text(json.dumps({"imagePath": "a.png", "imageHeight": H, "imageWidth": W,
                                   "shapes": []}))
    return {
        "missing image": (["export", orphan, "--images", img, "--out", tmp / "o.json"],
                          "orphan/zzz.png: no image zzz.*"),
        "size mismatch": (["export", big, "--images", img, "--out", tmp / "o.json"],
                          "big/small.png: mask is 56x40 (width x height) but its image"),
        "unknown format": (["export", masks, "--images", img, "--out", tmp / "o.xml",
                            "--format", "cvat"], "--format must be one of coco, labelme"),
        "no images folder": (["export", masks, "--out", tmp / "o.json"],
                             "name the image folder with --images"),
        "rle for labelme": (["export", masks, "--images", img, "--out", tmp / "lm",
                             "--format", "labelme", "--rle"], "--rle applies to --format coco"),
        "unknown image id": (["import", bad_ann, "--out", tmp / "m"],
                             "bad_ann.json: annotations[0]: image_id 7 is not in 'images'"),
        "short polygon": (["import", bad_poly, "--out", tmp / "m"],
                          "annotations[0] (image a.png): a polygon must be a list of at least"),
        "not json": (["import", tmp / "text.json", "--out", tmp / "m"],
                     "text.json: cannot tell its format"),
        "missing file": (["import", tmp / "nope.json", "--out", tmp / "m"],
                         "nope.json: file not found"),
        "dataset root": (["import", lm_file, "--out", root], "a folder dataset's root; import "
                         "into its masks/"),
    }


def test_bad_input_is_one_line_and_exit_2(tmp_path) -> None:
    for case, (args, message) in _bad_inputs(tmp_path).items():
        code, _, err = racam("masks", *args)
        assert code == 2, (case, err)
        assert message in one_error_line(err), case
    assert not (tmp_path / "o.json").exists() and not (tmp_path / "m").exists()
    assert not (tmp_path / "lm").exists()
    assert sorted(p.name for p in (tmp_path / "ds").iterdir()) == ["defect", "good"]


def test_a_runs_pseudo_labels_export_as_they_are(trained_run, tmp_path) -> None:
    """A real run's pseudo-label folder (manifest, ``masks/<id>.png``): exported without
    --images, every mask comes back from pycocotools' reader pixel for pixel."""
    from pycocotools.coco import COCO

    from racam.config import load_config
    from racam.layout import pseudo_key

    # the heat maps' pseudo-labels (the folder also holds the network's masks of the list)
    manifest = trained_run / "fold0" / "pseudo" / pseudo_key(
        load_config(trained_run / "config.json")) / "manifest.json"
    out = tmp_path / "pseudo.json"
    code, stdout, err = racam("masks", "export", manifest.parent, "--out", out, "--rle")
    assert code == 0, err
    listed = json.loads(manifest.read_text())["images"]
    assert f"{len(listed)} images" in stdout
    api = COCO(str(out))
    by_name = {i["file_name"]: i for i in api.loadImgs(api.getImgIds())}
    root = Path(stdout.strip().rsplit("image folder ", 1)[1])
    for entry in listed:
        img = by_name[Path(entry["image"]).resolve().relative_to(root.resolve()).as_posix()]
        truth = read_mask(manifest.parent / entry["mask"])
        got = np.zeros(truth.shape, dtype=bool)
        for ann in api.loadAnns(api.getAnnIds(imgIds=[img["id"]])):
            got |= api.annToMask(ann).astype(bool)
        assert np.array_equal(got, truth), entry["id"]
    assert any(read_mask(manifest.parent / e["mask"]).any() for e in listed)


def test_the_interrupt_line_of_masks() -> None:
    from racam.cli import interrupted_line

    line = interrupted_line(["masks", "import", "a.json", "--out", "m"])
    assert "no half-written file" in line and line.endswith("racam masks import a.json --out m")
