"""racam.interop: masks as COCO polygons / RLE and LabelMe files, checked against pycocotools'
own reader (``COCO.annToMask``) and against masks drawn with Pillow; which mask belongs to which
image (prediction folders, folder datasets, pseudo-label folders)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw
from pycocotools.coco import COCO
from scipy import ndimage

from racam.errors import DataError
from racam.interop import coco, labelme
from racam.interop.masks import collect
from racam.interop.records import ExportOptions
from racam.interop.shapes import EXACT_TOLERANCE, instances, polygons, rasterize

# pycocotools 2.0 decoding under numpy 2 warns about numpy's copy= keyword
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

H, W = 48, 64


def _save(path: Path, arr: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)
    return path


def drawn_masks() -> dict[str, np.ndarray]:
    """Masks drawn with Pillow: a rectangle, a slanted polygon with an ellipse, a ring (a hole),
    two pixels touching at a corner, a lone pixel, and an empty mask."""
    out = {}
    img = Image.new("L", (W, H))
    d = ImageDraw.Draw(img)
    d.rectangle((5, 4, 20, 14), fill=255)
    d.polygon([(30, 5), (60, 12), (45, 40), (28, 30)], fill=255)
    out["shapes"] = np.asarray(img) > 0
    img = Image.new("L", (W, H))
    d = ImageDraw.Draw(img)
    d.ellipse((10, 8, 50, 40), fill=255)
    d.ellipse((22, 18, 36, 30), fill=0)  # the hole
    out["ring"] = np.asarray(img) > 0
    m = np.zeros((H, W), dtype=bool)
    m[10, 10] = m[11, 11] = True  # one 8-connected instance, two polygons
    m[30, 50] = True
    out["specks"] = m
    out["empty"] = np.zeros((H, W), dtype=bool)
    return out


@pytest.fixture
def folder(tmp_path: Path) -> tuple[Path, Path, dict[str, np.ndarray]]:
    """An image folder (PNG and JPEG, one in a sub-folder) and a mask folder of drawn masks."""
    masks = drawn_masks()
    images, mask_dir = tmp_path / "images", tmp_path / "masks"
    gray = np.full((H, W), 100, np.uint8)
    for i, name in enumerate(masks):
        rel = f"sub/{name}.jpg" if i == 1 else f"{name}.png"
        _save(images / rel, gray)
        _save(mask_dir / Path(rel).with_suffix(".png"), masks[name].astype(np.uint8) * 255)
    return images, mask_dir, masks


def filled(mask: np.ndarray) -> np.ndarray:
    """The oracle of polygon export: scipy's hole filling of each component."""
    return np.asarray(ndimage.binary_fill_holes(mask))


def coco_masks(path: Path) -> dict[str, np.ndarray]:
    """Each image's mask as pycocotools reads the file: the union of ``annToMask``."""
    api = COCO(str(path))
    out = {}
    for img in api.loadImgs(api.getImgIds()):
        m = np.zeros((img["height"], img["width"]), dtype=bool)
        for ann in api.loadAnns(api.getAnnIds(imgIds=[img["id"]])):
            m |= api.annToMask(ann).astype(bool)
        out[Path(img["file_name"]).stem] = m
    return out


def test_polygons_reproduce_random_shapes_exactly() -> None:
    """At the default tolerance every pixel comes back (shapes without holes; holes filled):
    the outline stays within 0.4 px of pixel edges, pixel centres are 0.5 px away."""
    rng = np.random.default_rng(0)
    for _ in range(60):
        h, w = rng.integers(8, 60, size=2)
        m = ndimage.gaussian_filter(rng.random((h, w)), rng.uniform(0.6, 3)) > 0.55
        for inst in instances(m):
            got = rasterize([polygons(inst)], int(h), int(w), "test")
            assert np.array_equal(got, filled(inst.full(int(h), int(w))))


def test_coco_polygons_load_in_pycocotools(folder, tmp_path) -> None:
    images, mask_dir, masks = folder
    out = tmp_path / "coco.json"
    summary = coco.write_coco(collect(mask_dir, images), out, ExportOptions())
    read = coco_masks(out)
    assert set(read) == set(masks)
    for name, m in masks.items():
        assert np.array_equal(read[name], filled(m)), name
    data = json.loads(out.read_text())
    assert {i["file_name"] for i in data["images"]} == {
        "shapes.png", "sub/ring.jpg", "specks.png", "empty.png"}
    assert all(a["iscrowd"] == 0 and a["category_id"] == 1 for a in data["annotations"])
    # one annotation per 8-connected component: shapes 2, ring 1, specks 2, empty 0
    assert summary.instances == len(data["annotations"]) == 5
    hole = filled(masks["ring"]) & ~masks["ring"]
    assert summary.holes_filled == hole.sum() > 0


def test_coco_rle_is_exact_with_holes(folder, tmp_path) -> None:
    images, mask_dir, masks = folder
    out = tmp_path / "rle.json"
    coco.write_coco(collect(mask_dir, images), out, ExportOptions(rle=True))
    read = coco_masks(out)
    for name, m in masks.items():
        inter, union = (read[name] & m).sum(), (read[name] | m).sum()
        assert inter == union, name  # IoU 1.0 (and the empty mask stays empty)
    data = json.loads(out.read_text())
    assert all(a["iscrowd"] == 1 and isinstance(a["segmentation"]["counts"], str)
               for a in data["annotations"])
    (ring_id,) = [i["id"] for i in data["images"] if i["file_name"] == "sub/ring.jpg"]
    (ring,) = [a for a in data["annotations"] if a["image_id"] == ring_id]
    assert ring["area"] == masks["ring"].sum()


def test_simplified_polygons_stay_within_the_tolerance(tmp_path) -> None:
    """--simplify 2: fewer vertices, and IoU above the bound the tolerance allows. Every point
    of the simplified outline is within t = 2 + 0.1 px (pycocotools' rounding) of the exact
    pixel-edge outline of length P, so only pixels whose centre lies in a band of width 2t
    around it can change: |difference| <= 2 t P and IoU >= (A - 2tP) / (A + 2tP)."""
    img = Image.new("L", (200, 160))
    ImageDraw.Draw(img).ellipse((20, 20, 180, 140), fill=255)
    m = np.asarray(img) > 0
    (inst,) = instances(m)
    exact, simple = polygons(inst), polygons(inst, tolerance=2.0)
    assert len(simple[0]) < len(exact[0]) / 3
    got = rasterize([simple], 160, 200, "test")
    area = m.sum()
    perimeter = np.abs(np.diff(np.pad(m.astype(int), 1), axis=0)).sum() + np.abs(
        np.diff(np.pad(m.astype(int), 1), axis=1)).sum()
    t = 2.0 + 0.1
    bound = (area - 2 * t * perimeter) / (area + 2 * t * perimeter)
    iou = (got & m).sum() / (got | m).sum()
    assert iou >= bound
    assert iou < 1.0  # the tolerance did change pixels: the bound is what is tested
    assert EXACT_TOLERANCE < 0.5


LABELME_KEYS = {"version", "imageData", "imagePath", "shapes", "flags", "imageHeight",
                "imageWidth"}
LABELME_SHAPE_KEYS = {"label", "points", "group_id", "shape_type", "flags", "description", "mask"}


def test_labelme_files_match_labelmes_schema(folder, tmp_path) -> None:
    """The keys LabelMe's ``LabelFile.load`` reads (labelme/label_file.py, labelmeai/labelme),
    ``imagePath`` relative to the JSON file as LabelMe resolves it, one file per image stem (what
    ``labelme IMAGES --output OUT`` looks for), and the polygons give back each mask."""
    images, mask_dir, masks = folder
    out = tmp_path / "labelme"
    labelme.write_labelme(collect(mask_dir, images), out, ExportOptions())
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{n}.json" for n in masks)
    for name, m in masks.items():
        doc = json.loads((out / f"{name}.json").read_text())
        assert set(doc) == LABELME_KEYS and doc["imageData"] is None and doc["flags"] == {}
        image = out / doc["imagePath"]
        assert image.is_file() and image.stem == name
        assert Image.open(image).size == (doc["imageWidth"], doc["imageHeight"]) == (W, H)
        for shape in doc["shapes"]:
            assert set(shape) == LABELME_SHAPE_KEYS
            assert shape["shape_type"] == "polygon" and shape["label"] == "defect"
            assert all(len(p) == 2 for p in shape["points"]) and len(shape["points"]) >= 3
        flat = [[v for p in s["points"] for v in p] for s in doc["shapes"]]
        got = rasterize([flat] if flat else [], H, W, name)
        assert np.array_equal(got, filled(m)), name
    (read,) = labelme.read_labelme(out / "specks.json")
    assert read.name == "specks.png" and np.array_equal(read.mask, masks["specks"])


def test_labelme_rectangles_and_circles_are_read_as_areas(tmp_path) -> None:
    doc = {"version": "5.5.0", "flags": {}, "imagePath": "a.png", "imageData": None,
           "imageHeight": 40, "imageWidth": 50, "shapes": [
               {"label": "scratch", "points": [[30, 20], [10, 5]], "shape_type": "rectangle"},
               {"label": "x", "points": [[40, 30], [40, 35]], "shape_type": "circle"}]}
    path = tmp_path / "a.json"
    path.write_text(json.dumps(doc))
    (read,) = labelme.read_labelme(path)
    expect = np.zeros((40, 50), dtype=bool)
    expect[5:20, 10:30] = True  # the rectangle's pixels, corners at pixel edges
    yy, xx = np.mgrid[:40, :50]
    disk = (xx + 0.5 - 40) ** 2 + (yy + 0.5 - 30) ** 2 <= 25
    assert np.array_equal(read.mask[:, :35], expect[:, :35])
    circle = read.mask & ~expect
    assert (circle & disk).sum() == disk.sum() - (disk & expect).sum()  # every centre inside
    assert (circle & ~disk).sum() <= 2 * math.pi * 5  # at most a pixel ring beyond the circle
    doc["shapes"] = [{"label": "x", "points": [[1, 1], [5, 5]], "shape_type": "line"}]
    path.write_text(json.dumps(doc))
    with pytest.raises(DataError, match=r"a\.json: shapes\[0\]: shape_type 'line'"):
        labelme.read_labelme(path)


def test_folder_dataset_flat_masks_find_their_images(tmp_path) -> None:
    root = tmp_path / "ds"
    for rel in ("good/g1.png", "defect/d1.bmp", "defect/d2.png"):
        _save(root / rel, np.zeros((8, 8), np.uint8))
    for stem in ("d1", "d2", "g1"):
        _save(root / "masks" / f"{stem}.png", np.zeros((8, 8), np.uint8))
    found = collect(root, root)  # the dataset root: its masks/ are used
    assert [(i.name, i.mask.name) for i in found.items] == [
        ("defect/d1.bmp", "d1.png"), ("defect/d2.png", "d2.png"), ("good/g1.png", "g1.png")]


def test_pseudo_label_folder_lists_its_images(tmp_path) -> None:
    data = tmp_path / "data" / "kos01"
    pseudo = tmp_path / "run" / "fold0" / "pseudo" / "k"
    entries = []
    for i in range(2):
        image = _save(data / f"Part{i}.jpg", np.zeros((10, 6), np.uint8))
        mask = f"masks/kos01__Part{i}.png"
        _save(pseudo / mask, np.eye(10, 6, dtype=np.uint8) * 255)
        entries.append({"id": f"kos01/Part{i}", "image": str(image), "label": 1, "mask": mask})
    (pseudo / "manifest.json").write_text(json.dumps({"images": entries}))
    for where in (pseudo, pseudo / "masks"):
        found = collect(where, None)
        assert found.source == "pseudo-labels" and found.root == data
        assert [i.name for i in found.items] == ["Part0.jpg", "Part1.jpg"]
    assert [i.name for i in collect(pseudo, tmp_path / "data").items] == [
        "kos01/Part0.jpg", "kos01/Part1.jpg"]


def test_labelme_folder_appears_whole(folder, tmp_path) -> None:
    """A new LabelMe folder is written as <out>.partial and renamed: an interrupted export
    leaves no folder that looks finished, and the next export starts the partial one again."""
    images, mask_dir, masks = folder
    out = tmp_path / "lm"
    stale = tmp_path / "lm.partial"
    stale.mkdir()
    (stale / "old.json").write_text("{}")
    labelme.write_labelme(collect(mask_dir, images), out, ExportOptions())
    assert not stale.exists()
    assert sorted(p.stem for p in out.iterdir()) == sorted(masks)
    with pytest.raises(DataError, match="exists"):
        labelme.write_labelme(collect(mask_dir, images), out, ExportOptions())


@pytest.mark.data
def test_real_kolektorsdd_defects_come_back_from_pycocotools(ksdd_root, tmp_path) -> None:
    """Every defect mask of KolektorSDD (the shapes racam predicts), as COCO polygons and as
    RLE: pycocotools' reader gives back each mask (holes filled for polygons; exact for RLE)."""
    masks = tmp_path / "masks"
    truth = {}
    for label in sorted(ksdd_root.glob("kos*/Part*_label.*")):
        m = np.asarray(Image.open(label)) > 0
        if m.ndim == 3:
            m = m.any(axis=-1)
        if m.any():
            rel = f"{label.parent.name}/{label.stem.removesuffix('_label')}"
            truth[rel] = m
            _save(masks / f"{rel}.png", m.astype(np.uint8) * 255)
    assert len(truth) >= 50  # KolektorSDD has 52 defective images
    for rle in (False, True):
        out = tmp_path / f"ksdd-{rle}.json"
        coco.write_coco(collect(masks, ksdd_root), out, ExportOptions(rle=rle))
        api = COCO(str(out))
        for img in api.loadImgs(api.getImgIds()):
            got = np.zeros((img["height"], img["width"]), dtype=bool)
            for ann in api.loadAnns(api.getAnnIds(imgIds=[img["id"]])):
                got |= api.annToMask(ann).astype(bool)
            m = truth[img["file_name"].rsplit(".", 1)[0]]
            assert np.array_equal(got, m if rle else filled(m)), img["file_name"]
