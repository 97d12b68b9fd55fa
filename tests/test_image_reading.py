"""Issue 24, reading images: one reader and one listing for every command, on real files.

Each case runs a real entry point (``racam cam``, ``racam data info``) on image files written
with Pillow, and checks the exit code, the one-line message and what is on disk; the values
read are compared with what the files were written from (independent of racam).
"""

from __future__ import annotations

import json
import os
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from helpers import racam
from PIL import Image

from racam.data.images import DEFAULT_MAX_PIXELS, MAX_PIXELS_ENV, image_size
from racam.data.io import image_to_tensor, read_image, read_image_tensor
from racam.data.listing import list_images

CAM = ["--model", "vgg16_narrow", "--width", "16", "--size", "32", "32", "--device", "cpu"]




def one_error_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0]


def ramp(h: int = 40, w: int = 48) -> np.ndarray:
    """A 16-bit test pattern with every row and column different."""
    y, x = np.mgrid[0:h, 0:w]
    return ((y * 1181 + x * 613) % 65536).astype(np.uint16)


def exif_jpeg(path: Path, arr: np.ndarray, orientation: int) -> None:
    img = Image.fromarray(arr)
    exif = img.getexif()
    exif[0x0112] = orientation
    img.save(path, quality=100, subsampling=0, exif=exif)


def big_png_header(path: Path, width: int, height: int) -> None:
    """A PNG file whose header claims ``width x height`` (its pixel data is a stub): what a
    decompression bomb or a line-scan image looks like to a reader before decoding."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
                     + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))


@pytest.fixture()
def mixed(tmp_path: Path) -> Path:
    """A folder of the formats a factory has: WebP, 16-bit PNG, float TIFFs, an EXIF-rotated
    JPEG, an 8-bit RGB PNG."""
    d = tmp_path / "mixed"
    d.mkdir()
    a16 = ramp()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(d / "a.webp",
                                                                            lossless=True)
    Image.fromarray(a16).save(d / "b16.png")
    Image.fromarray(a16.astype(np.float32) / 65535).save(d / "c_unit.tif")
    Image.fromarray((a16 % 256).astype(np.float32)).save(d / "d_255.tif")
    exif_jpeg(d / "e_rot.jpg", rng.integers(0, 256, (40, 48), dtype=np.uint8), 6)
    Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(d / "f.png")
    return d


def test_every_format_read_with_its_scaling_and_channel_count(mixed: Path) -> None:
    a16 = ramp()
    got = read_image_tensor(mixed / "b16.png", 3)
    assert got.shape == (3, 40, 48)
    assert np.array_equal(got[2].numpy(), (a16 / 65535).astype(np.float32))
    unit = read_image_tensor(mixed / "c_unit.tif", 1)[0].numpy()
    assert np.allclose(unit, a16 / 65535, atol=1e-7)
    by255 = read_image_tensor(mixed / "d_255.tif", 1)[0].numpy()
    assert np.allclose(by255, (a16 % 256) / 255, atol=1e-7)
    webp = np.asarray(Image.open(mixed / "a.webp").convert("L"), dtype=np.float32) / 255
    assert np.array_equal(read_image_tensor(mixed / "a.webp", 1)[0].numpy(), webp)
    # predict's path: read_image(path, 3) then image_to_tensor without channels -> 3 channels
    for name in ("b16.png", "c_unit.tif", "a.webp", "f.png"):
        assert image_to_tensor(read_image(mixed / name, 3), (32, 32)).shape == (3, 32, 32)


def test_exif_orientation_applied_as_viewers_show_it(tmp_path: Path) -> None:
    raw = np.zeros((40, 48), np.uint8)
    raw[:10, :] = 255  # a bright band on top of the raw pixels
    exif_jpeg(tmp_path / "r.jpg", raw, 6)  # 6: shown rotated 90 degrees clockwise
    shown = np.rot90(raw, k=-1)  # the band is on the right as displayed
    img = read_image(tmp_path / "r.jpg", 1)
    assert img.size == (40, 48) == image_size(tmp_path / "r.jpg")
    assert np.abs(np.asarray(img, dtype=float) - shown).max() < 8


def test_racam_cam_reads_every_format_of_a_mixed_folder(mixed: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    code, stdout, err = racam("cam", "--images", mixed, "--out", out, "--in-channels", "3", *CAM)
    assert code == 0, err
    assert "Traceback" not in err and "warning" not in err
    manifest = json.loads((out / "manifest.json").read_text())
    assert sorted(Path(r["image"]).name for r in manifest["images"]) == sorted(
        p.name for p in mixed.iterdir())
    assert sorted(p.name for p in (out / "maps").iterdir()) == sorted(
        f"{p.stem}.npy" for p in mixed.iterdir())


def test_racam_cam_names_an_unreadable_image_and_writes_nothing(mixed: Path,
                                                                tmp_path: Path) -> None:
    (mixed / "z.webp").write_bytes(b"RIFF\x00\x00\x00\x00WEBPVP8 broken")
    out = tmp_path / "out"
    code, _, err = racam("cam", "--images", mixed, "--out", out, *CAM)
    line = one_error_line(err)
    assert code == 2 and f"{mixed / 'z.webp'}: cannot read image file" in line
    assert not out.exists()


def test_pixel_limit_is_one_line_and_settable(mixed: Path, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MAX_PIXELS_ENV, "1000")  # 40 x 48 = 1920 pixels
    out = tmp_path / "out"
    code, _, err = racam("cam", "--images", mixed, "--out", out, *CAM)
    line = one_error_line(err)
    assert code == 2 and f"{mixed}/" in line
    assert "image is 48x40 (width x height, 1,920 pixels), over racam's limit of 1,000 pixels" \
        in line
    assert f"set {MAX_PIXELS_ENV}" in line and not out.exists()
    ds = tmp_path / "ds"
    for sub in ("good", "defect"):
        (ds / sub).mkdir(parents=True)
        Image.new("L", (20, 20), len(sub)).save(ds / sub / f"small_{sub}.png")
    Image.new("L", (40, 30), 4).save(ds / "defect" / "large.png")
    code, stdout, err = racam("data", "info", ds, "--dataset", "folder")
    assert code == 0 and "readable images: good 1, defect 1" in stdout
    assert (f"warning: {ds / 'defect' / 'large.png'}: unreadable image: image is 40x30 (width "
            "x height, 1,200 pixels), over racam's limit of 1,000 pixels") in err
    monkeypatch.setenv(MAX_PIXELS_ENV, "abc")
    code, _, err = racam("cam", "--images", mixed, "--out", out, *CAM)
    assert code == 2 and f"{MAX_PIXELS_ENV}='abc'" in one_error_line(err)


def test_default_limit_refuses_a_bomb_header_without_pil_warning(tmp_path: Path) -> None:
    d = tmp_path / "big"
    d.mkdir()
    Image.new("L", (40, 40), 128).save(d / "ok.png")
    side = int(DEFAULT_MAX_PIXELS ** 0.5) + 1
    big_png_header(d / "bomb.png", side, side)
    big_png_header(tmp_path / "mp96.png", 12000, 8000)  # PIL warns above 89 megapixels
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert image_size(tmp_path / "mp96.png") == (12000, 8000)  # within racam's limit
        code, _, err = racam("cam", "--images", d, "--out", tmp_path / "out", *CAM)
    line = one_error_line(err)
    assert code == 2 and f"{d / 'bomb.png'}: image is {side}x{side}" in line
    assert f"{side * side:,} pixels), over racam's limit of {DEFAULT_MAX_PIXELS:,} pixels" in line
    assert "decompression" not in err.lower() and not (tmp_path / "out").exists()


def test_listing_follows_links_names_loops_and_unreadable_files(tmp_path: Path) -> None:
    top = tmp_path / "images"
    (top / "lot1").mkdir(parents=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for p in (top / "a.png", top / "lot1" / "b.png", elsewhere / "c.webp"):
        Image.new("L", (8, 8), 1).save(p)
    (top / "linked").symlink_to(elsewhere, target_is_directory=True)
    (top / "lot1" / "loop").symlink_to(top, target_is_directory=True)
    (top / "gone.png").symlink_to(tmp_path / "nowhere.png")
    (top / "bad.tif").write_bytes(b"II*\x00 not a tiff")
    (top / "notes.txt").write_text("not an image")
    found = list_images(top, recursive=True)
    assert found.images == [top / "a.png", top / "linked" / "c.webp", top / "lot1" / "b.png"]
    reasons = {s.path.relative_to(top).as_posix(): s.reason for s in found.skipped}
    assert set(reasons) == {"bad.tif", "gone.png", "lot1/loop"}
    assert reasons["lot1/loop"].startswith("a symbolic link loop to")
    assert reasons["gone.png"].startswith("broken symbolic link")
    assert reasons["bad.tif"].startswith("cannot read image file")
    flat = list_images(top)
    assert flat.images == [top / "a.png"]
    assert {s.reason for s in flat.skipped} >= {"sub-folder, not searched"}


def test_racam_cam_follows_a_symlinked_file_and_warns_of_sub_folders(tmp_path: Path) -> None:
    d = tmp_path / "imgs"
    (d / "sub").mkdir(parents=True)
    Image.new("L", (40, 40), 3).save(tmp_path / "real.png")
    (d / "linked.png").symlink_to(tmp_path / "real.png")
    Image.new("L", (40, 40), 9).save(d / "sub" / "inner.png")
    out = tmp_path / "out"
    code, _, err = racam("cam", "--images", d, "--out", out, *CAM)
    assert code == 0, err
    assert f"warning: {d / 'sub'}: sub-folder, not searched" in err
    manifest = json.loads((out / "manifest.json").read_text())
    assert [Path(r["image"]).name for r in manifest["images"]] == ["linked.png"]
    assert manifest["not_read"] == [f"{d / 'sub'}: sub-folder, not searched"]


def test_folder_dataset_counts_webp_and_exif_images(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    for sub in ("good", "defect", "masks"):
        (root / sub).mkdir(parents=True)
    rng = np.random.default_rng(1)
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (40, 48), dtype=np.uint8)).save(
            root / "good" / f"g{i}.webp", lossless=True)
    # an EXIF-rotated photo (stored 40 x 48, shown 48 x 40) and a mask drawn on the photo as shown
    exif_jpeg(root / "defect" / "d0.jpg", rng.integers(0, 256, (48, 40), dtype=np.uint8), 6)
    mask = np.zeros((40, 48), np.uint8)
    mask[5:9, 10:30] = 255
    Image.fromarray(mask).save(root / "masks" / "d0.png")
    Image.fromarray(rng.integers(0, 256, (40, 48), dtype=np.uint8)).save(root / "defect" / "d1.tif")
    Image.fromarray(mask).save(root / "masks" / "d1.png")
    code, stdout, err = racam("data", "info", root, "--dataset", "folder")
    assert code == 0, err
    assert "readable images: good 3, defect 2" in stdout
    assert "48x40 (5)" in stdout
    assert "warning" not in err, err


def test_data_info_names_unreadable_and_unsearched_files(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    for sub in ("good", "defect", "good/old"):
        (root / sub).mkdir(parents=True)
    Image.new("L", (40, 40), 5).save(root / "good" / "g.png")
    Image.new("L", (40, 40), 6).save(root / "good" / "old" / "g_old.png")
    Image.new("L", (40, 40), 7).save(tmp_path / "d.png")
    (root / "defect" / "d.png").symlink_to(tmp_path / "d.png")
    (root / "defect" / "e.webp").write_bytes(b"not a webp")
    os.symlink(tmp_path / "missing.png", root / "defect" / "f.png")
    code, stdout, err = racam("data", "info", root, "--dataset", "folder")
    assert code == 0, err
    assert "readable images: good 1, defect 1" in stdout
    assert f"warning: {root / 'good' / 'old'}: not read: sub-folder, not searched" in err
    assert f"warning: {root / 'defect' / 'e.webp'}: unreadable image: cannot read" in err
    assert f"warning: {root / 'defect' / 'f.png'}: not read: broken symbolic link" in err


def test_listing_leaves_out_the_callers_output_and_marked_folders(tmp_path: Path) -> None:
    top = tmp_path / "images"
    for sub in ("out", "old_run", "lot"):
        (top / sub).mkdir(parents=True)
    for p in (top / "a.png", top / "a_label.png", top / "out" / "m.png",
              top / "old_run" / "m.png", top / "lot" / "b.png"):
        Image.new("L", (8, 8), 1).save(p)
    (top / "old_run" / ".racam-predict").write_text("{}")
    found = list_images(top, recursive=True, exclude=[top / "out"], skip_stems=("_label",),
                        markers=(".racam-predict",))
    assert found.images == [top / "a.png", top / "lot" / "b.png"]
    assert [str(s) for s in found.skipped] == [
        f"{top / 'old_run'}: holds .racam-predict: a racam output folder, not read as input"]


def test_listing_excludes_an_output_folder_inside_but_not_the_folder_asked(tmp_path) -> None:
    """``exclude`` leaves out an output folder below the listed folder; an excluded folder that
    holds the listed folder (``--images OUT/defect`` with ``--out OUT``) excludes nothing."""
    from PIL import Image as PILImage

    from racam.data.listing import list_images

    images, out = tmp_path / "ds" / "defect", tmp_path / "ds"
    (images / "masks").mkdir(parents=True)
    for p in (images / "a.png", images / "masks" / "a.png"):
        PILImage.new("L", (8, 8)).save(p)
    assert list_images(images, recursive=True, exclude=[images / "masks"]).images == [
        images / "a.png"]
    assert list_images(images, recursive=True, exclude=[out]).images == [
        images / "a.png", images / "masks" / "a.png"]
