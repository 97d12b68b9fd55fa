"""Opening image files: one reader for every command (folder datasets, KolektorSDD, ``racam cam``,
``racam predict``, ``racam data info``).

:func:`open_image` decodes any file Pillow can open (PNG, JPEG, BMP, TIFF of every bit depth,
WebP, GIF, ...; of a multi-frame file the first frame) and applies the file's EXIF orientation
(:func:`PIL.ImageOps.exif_transpose`), so an image and its mask are read as every viewer shows
them. Masks go through the same function (:mod:`racam.data.masks`).

Size limit: Pillow's decompression-bomb guard (a warning above 89 megapixels, an exception above
179) is replaced by racam's own: an image over :func:`max_pixels` pixels (default
:data:`DEFAULT_MAX_PIXELS`, 2**28 = 16384 x 16384; environment variable ``RACAM_MAX_PIXELS``) is
refused from its header, before anything is decoded, in one line naming the file, its size and
how to raise the limit. Line-scan images (16384 x 11500) are read.

Scaling to ``[0, 1]`` (:func:`read_image`, then :func:`racam.data.io.image_to_tensor`):

- 8-bit images of any mode: ``value / 255`` (mode ``L`` for 1 channel, ``RGB`` for 3, as
  Pillow converts them: palette applied, alpha dropped, CMYK/YCbCr converted);
- 16-bit images (``I;16*``, and ``I`` holding 16-bit values): ``value / 65535``; other ``I``
  values are an error (their range is unknown);
- float images (``F``): divided by the smallest of 1, 255 and 65535 that is at least their
  largest value (a float image in [0, 1] is kept, one holding 8- or 16-bit values is scaled as
  those); negative, NaN or larger values are an error. The divisor is chosen per image, so
  keep a dataset's float images in one range.

Images of more than 8 bits have one channel; with 3 channels it is repeated (a 16-bit image in a
3-channel run, or mixed with 8-bit RGB images, gives the same tensor shape as every other image).
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from racam.errors import ConfigError, DataError

PathLike = str | os.PathLike[str]

#: File name endings of images (lower case). A file with one of them is an image to every
#: listing (:mod:`racam.data.listing`): it is read, or named as unreadable, never skipped.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".jpe", ".jfif", ".bmp", ".dib", ".tif", ".tiff",
                  ".webp", ".gif", ".pbm", ".pgm", ".ppm", ".pnm", ".tga", ".jp2", ".j2k",
                  ".pcx", ".sgi", ".ras", ".qoi", ".dds", ".psd")
#: Largest image (width x height) read by default: 2**28 pixels, e.g. 16384 x 16384.
DEFAULT_MAX_PIXELS = 2 ** 28
#: Environment variable overriding :data:`DEFAULT_MAX_PIXELS` (a positive integer).
MAX_PIXELS_ENV = "RACAM_MAX_PIXELS"
#: PIL modes with more than 8 bits per pixel (one channel): 16-bit unsigned, 32-bit int, float.
HIGH_DEPTH_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")
#: Largest value of a 16-bit image (its values are divided by it).
UINT16_MAX = 65535
#: Divisors of float images, smallest first (:func:`high_depth_to_unit`).
FLOAT_RANGES = (1.0, 255.0, float(UINT16_MAX))
#: ``Image.info`` key holding the channel count :func:`read_image` was asked for.
CHANNELS_INFO = "racam_channels"
_MODES = {1: "L", 3: "RGB"}
_READ_ERRORS = (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError,
                Image.DecompressionBombError)
_GUARD = threading.RLock()


class ImageReadError(DataError):
    """A file that cannot be read as an image: ``path`` and ``reason`` (the message is
    ``"{path}: {reason}"``)."""

    def __init__(self, path: PathLike, reason: str) -> None:
        self.path, self.reason = Path(path), reason
        super().__init__(f"{path}: {reason}")


def max_pixels() -> int:
    """racam's image size limit in pixels: ``RACAM_MAX_PIXELS`` or :data:`DEFAULT_MAX_PIXELS`."""
    raw = os.environ.get(MAX_PIXELS_ENV)
    if raw is None or raw.strip() == "":
        return DEFAULT_MAX_PIXELS
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise ConfigError(f"{MAX_PIXELS_ENV}={raw!r}: expected a positive number of pixels")
    return value


@contextmanager
def _pil_guard_off() -> Iterator[None]:
    """Pillow's decompression-bomb check off while racam's own applies (see module docstring)."""
    with _GUARD:
        old = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None
        try:
            yield
        finally:
            Image.MAX_IMAGE_PIXELS = old


def size_problem(size: tuple[int, int]) -> str | None:
    """Why an image of ``size=(width, height)`` is refused (over :func:`max_pixels`), or None."""
    limit = max_pixels()
    w, h = size
    if w * h <= limit:
        return None
    return (f"image is {w}x{h} (width x height, {w * h:,} pixels), over racam's limit of "
            f"{limit:,} pixels; if the file is what it claims to be, set {MAX_PIXELS_ENV} to a "
            "larger pixel count")


def _oriented(size: tuple[int, int], orientation: int | None) -> tuple[int, int]:
    """``size`` as displayed: EXIF orientations 5 to 8 swap width and height."""
    return (size[1], size[0]) if orientation in (5, 6, 7, 8) else size


def _header(p: Path, what: str) -> Image.Image:
    if not p.is_file():
        raise ImageReadError(p, f"{what} file not found")
    try:
        img = Image.open(p)
    except _READ_ERRORS as exc:
        raise ImageReadError(p, f"cannot read {what} file ({exc})") from None
    problem = size_problem(img.size)
    if problem:
        img.close()
        raise ImageReadError(p, problem)
    return img


def open_image(path: PathLike, what: str = "image") -> Image.Image:
    """Decode an image file as Pillow gives it, EXIF orientation applied, within the size limit;
    any failure is an :class:`ImageReadError` naming the file (``what``: "image" or "mask")."""
    p = Path(path)
    with _pil_guard_off():
        img = _header(p, what)
        try:
            img.load()
            ImageOps.exif_transpose(img, in_place=True)
        except _READ_ERRORS as exc:
            raise ImageReadError(p, f"cannot read {what} file ({exc})") from None
    return img


def pixel_digest(img: Image.Image) -> str:
    """SHA-256 of an image's mode, size and decoded pixels: equal for two files that show the
    same picture (whatever their names, formats or metadata)."""
    return hashlib.sha256(f"{img.mode}{img.size}".encode() + img.tobytes()).hexdigest()


def image_size(path: PathLike) -> tuple[int, int]:
    """``(width, height)`` of an image file as displayed (EXIF orientation applied), from its
    header only. (A PNG whose EXIF chunk follows its pixels, which Pillow never writes, is
    taken at its stored size here; :func:`open_image` would turn it.)"""
    p = Path(path)
    with _pil_guard_off():
        with _header(p, "image") as img:
            if img.format == "PNG" and "exif" not in img.info:
                return img.size  # PngImageFile.getexif would decode every pixel
            try:
                orientation = img.getexif().get(0x0112)
            except _READ_ERRORS as exc:
                raise ImageReadError(p, f"cannot read image file ({exc})") from None
            return _oriented(img.size, orientation)


def readable(path: PathLike) -> str | None:
    """Why ``path`` cannot be an image (no file, not an image Pillow knows, over the size
    limit), from its header only; None when it opens."""
    try:
        with _pil_guard_off():
            _header(Path(path), "image").close()
    except ImageReadError as exc:
        return exc.reason
    return None


def read_image(path: PathLike, channels: int = 1) -> Image.Image:
    """Decode an image file (:func:`open_image`) as a PIL image with its true values.

    8-bit images of any mode come back in mode ``L`` (``channels=1``) or ``RGB`` (3). Images of
    more than 8 bits come back in mode ``F`` (one channel) scaled to ``[0, 1]``
    (:func:`high_depth_to_unit`). ``info[CHANNELS_INFO]`` records ``channels``, so
    :func:`racam.data.io.image_to_tensor` gives ``channels`` channels for either. A file that
    cannot be read, converted or scaled is a :class:`DataError` naming it.
    """
    if channels not in _MODES:
        raise ConfigError(f"channels must be 1 or 3, got {channels}")
    img = open_image(path, "image")
    if img.mode in HIGH_DEPTH_MODES:
        out = high_depth_to_unit(img, path)
    elif img.mode == _MODES[channels]:
        out = img
    else:
        try:
            out = img.convert(_MODES[channels])
        except ValueError as exc:
            raise ImageReadError(path, f"cannot convert image mode {img.mode} to "
                                 f"{_MODES[channels]} ({exc})") from None
    out.info[CHANNELS_INFO] = channels
    return out


def _float_divisor(arr: np.ndarray, path: PathLike) -> float:
    if arr.size == 0:
        return 1.0
    finite = np.isfinite(arr)
    lo, hi = (float(arr[finite].min()), float(arr[finite].max())) if finite.any() else (0, 0)
    divisor = next((r for r in FLOAT_RANGES if hi <= r), None)
    if not finite.all() or lo < 0 or divisor is None:
        raise ImageReadError(path, f"float image with values outside [0, 1], [0, 255] and "
                             f"[0, {UINT16_MAX}] (min {lo:g}, max {hi:g}"
                             f"{', NaN or infinite values' if not finite.all() else ''}); "
                             "scale it to [0, 1] or save it as 8- or 16-bit")
    return divisor


def high_depth_to_unit(img: Image.Image, path: PathLike) -> Image.Image:
    """A mode ``F`` copy of a single-channel image of more than 8 bits, scaled to ``[0, 1]``
    (module docstring: 16-bit by 65535, float by the smallest of 1, 255, 65535 that holds it)."""
    arr = np.asarray(img)
    if img.mode == "F":
        arr = arr.astype(np.float32)
        divisor = _float_divisor(arr, path)
        unit = arr if divisor == 1.0 else (arr.astype(np.float64) / divisor).astype(np.float32)
    else:
        wide = arr.astype(np.int64)
        if wide.size and (wide.min() < 0 or wide.max() > UINT16_MAX):
            raise ImageReadError(path, f"32-bit integer image with values outside "
                                 f"0..{UINT16_MAX} (min {wide.min()}, max {wide.max()}); save "
                                 "it as 8- or 16-bit")
        unit = (wide.astype(np.float64) / UINT16_MAX).astype(np.float32)
    return Image.fromarray(np.ascontiguousarray(unit), mode="F")
