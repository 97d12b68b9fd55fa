"""Issue 24, reading masks: values are counted (not rows), each mask's reading is stated, doubtful
masks are warned about, and training, evaluation and ``racam data info`` read them the same way.

The oracle of every mask is the rectangle it was drawn with.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from helpers import tiny_folder_run
from PIL import Image
from test_image_reading import racam

from racam.data import FolderDataset
from racam.data.audit import audit_folder
from racam.data.masks import read_mask, read_mask_reading

W, H = 64, 64


def clean_folder(root: Path, n: int = 6) -> dict[str, np.ndarray]:
    """A public-style dataset: 8-bit images, binary 0/255 one-channel PNG masks (small defects
    at different rows, so the masks' rows differ); returns {defect stem: true mask}."""
    rng = np.random.default_rng(0)
    for sub in ("good", "defect", "masks"):
        (root / sub).mkdir(parents=True)
    truth = {}
    for i in range(n):
        good = rng.normal(128, 20, (H, W)).clip(0, 255).astype(np.uint8)
        Image.fromarray(good).save(root / "good" / f"good{i}.png")
        img = rng.normal(128, 20, (H, W))
        mask = np.zeros((H, W), bool)
        r = 6 + 7 * i
        mask[r:r + 4, 8 + i:40 + i] = True
        img[mask] = 20
        Image.fromarray(img.clip(0, 255).astype(np.uint8)).save(root / "defect" / f"defect{i}.png")
        Image.fromarray(mask.astype(np.uint8) * 255).save(root / "masks" / f"defect{i}.png")
        truth[f"defect{i}"] = mask
    return truth


def warnings_of(err: str) -> list[str]:
    return [ln for ln in err.splitlines() if ln.startswith("warning: ")]


def test_clean_dataset_gets_no_warning_and_states_the_reading(tmp_path: Path) -> None:
    clean_folder(tmp_path / "ds")
    code, stdout, err = racam("data", "info", tmp_path / "ds", "--dataset", "folder")
    assert code == 0 and warnings_of(err) == [], err
    assert "0 problem(s)" in stdout
    assert "masks: 6 read as L, one channel: nonzero = defect" in stdout


def test_clean_dataset_trains_with_strict(tmp_path: Path) -> None:
    clean_folder(tmp_path / "ds")
    out = tmp_path / "run"
    code, _, err = racam(*tiny_folder_run(tmp_path / "ds", out), "--set", "data.strict=true")
    assert code == 0, err
    assert warnings_of(err) == [] and "not binary" not in err
    assert (out / "results.json").is_file()


def colour_masks(root: Path, truth: dict[str, np.ndarray]) -> dict[str, str]:
    """Replace three masks with doubtful ones; returns {stem: the problem tag expected}."""
    m = truth["defect0"]
    red = np.zeros((H, W, 4), np.uint8)
    red[..., 3] = 255  # opaque black background
    red[m, 0] = 255    # defect in red
    Image.fromarray(red, "RGBA").save(root / "masks" / "defect0.png")
    stroke = np.zeros((H, W, 4), np.uint8)  # transparent background, white opaque strokes
    stroke[truth["defect1"]] = 255
    Image.fromarray(stroke, "RGBA").save(root / "masks" / "defect1.png")
    inverted = np.where(truth["defect2"], 0, 255).astype(np.uint8)  # white background
    Image.fromarray(inverted).save(root / "masks" / "defect2.png")
    return {"defect0": "colour mask", "defect1": "mask transparency",
            "defect2": "mask mostly defect"}


def test_doubtful_masks_are_read_as_drawn_and_warned(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    truth = clean_folder(root)
    expected = colour_masks(root, truth)
    code, stdout, err = racam("data", "info", root, "--dataset", "folder")
    assert code == 0
    got = warnings_of(err)
    assert len(got) == len(expected), got
    for stem, tag in expected.items():
        assert any(w.startswith(f"warning: {root / 'masks' / stem}.png: {tag}: ") for w in got)
    assert "masks: 1 read as RGBA colours: any nonzero channel = defect (alpha 255 everywhere, " \
        "ignored)" in stdout
    assert "masks: 1 read as RGBA transparency: not fully transparent (alpha > 0) = defect" \
        in stdout
    assert "masks: 4 read as L, one channel: nonzero = defect" in stdout
    # the red-on-black mask is the red rectangle, not the whole image (it was before)
    assert np.array_equal(read_mask(root / "masks" / "defect0.png"), truth["defect0"])
    assert np.array_equal(read_mask(root / "masks" / "defect1.png"), truth["defect1"])
    assert read_mask_reading(root / "masks" / "defect2.png").defect.mean() > 0.9


def test_training_evaluation_and_audit_read_masks_alike(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    truth = clean_folder(root)
    colour_masks(root, truth)
    ds = FolderDataset(root, split="all")
    audit = audit_folder(root)
    assert sum(audit.mask_rules.values()) == 6
    for i, rec in enumerate(ds.records):
        if rec.label == 0:
            continue
        stem = rec.image_path.stem
        expect = truth[stem] if stem != "defect2" else ~truth[stem]
        assert np.array_equal(ds.true_mask(i), expect)   # evaluation
        assert np.array_equal(ds[i].mask.numpy(), expect)  # training samples


def test_strict_refuses_a_doubtful_mask_in_one_line(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    truth = clean_folder(root)
    colour_masks(root, truth)
    out = tmp_path / "run"
    code, _, err = racam(*tiny_folder_run(root, out), "--set", "data.strict=true")
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2 and len(lines) == 1, err
    assert lines[0].startswith(f"error: {root / 'masks' / 'defect0.png'}: colour mask: ")
    assert "and 2 more" in lines[0]
    assert not (out / "results.json").exists()


def test_exif_rotated_mask_and_image_turn_together(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    truth = clean_folder(root, n=2)
    raw = np.zeros((H, W // 2), np.uint8)  # stored 32 wide, 64 high; shown 64 x 32
    raw[2:6, 4:20] = 255
    img = Image.fromarray(raw)
    exif = img.getexif()
    exif[0x0112] = 8  # shown rotated 90 degrees counter-clockwise
    img.save(root / "masks" / "defect1.png", exif=exif)
    shown = np.rot90(raw, k=1) > 0
    photo = Image.fromarray(np.full((H, W // 2), 90, np.uint8))
    photo.save(root / "defect" / "defect1.png", exif=exif)
    code, stdout, err = racam("data", "info", root, "--dataset", "folder")
    assert code == 0 and warnings_of(err) == [], err
    ds = FolderDataset(root, split="all")
    i = [r.image_path.stem for r in ds.records].index("defect1")
    assert ds[i].original_size == (W, H // 2)
    assert np.array_equal(ds.true_mask(i), shown)
    assert truth  # the other masks stay as drawn


def test_kolektorsdd_style_palette_masks_read_by_colour(tmp_path: Path) -> None:
    m = np.zeros((H, W), np.uint8)
    m[10:14, 5:40] = 1
    p = Image.fromarray(m, "P")
    p.putpalette([0, 0, 0, 255, 255, 255])
    p.save(tmp_path / "p.png")
    reading = read_mask_reading(tmp_path / "p.png")
    assert np.array_equal(reading.defect, m == 1) and reading.doubts == ()
    assert reading.rule == "P, grey colours: nonzero = defect"
    assert reading.values == 2
