"""A PNG writer that takes an image band by band: memory of one band, whatever the image's
size (``racam predict``'s masks and overlays of very large images).

8-bit grey (``L``) or RGB, no interlacing, every row with PNG's *Sub* filter (each byte minus
the byte one pixel to its left), deflated with zlib; any PNG reader decodes it to exactly the
rows given. Written with :func:`racam.io.atomic_write`: the file appears complete or not at
all.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

import numpy as np

from racam.io import atomic_write

__all__ = ["write_png_bands"]

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_COLOUR = {1: 0, 3: 2}  # channels -> PNG colour type (grey, truecolour)


def _chunk(f: BinaryIO, tag: bytes, data: bytes) -> None:
    f.write(struct.pack(">I", len(data)))
    f.write(tag)
    f.write(data)
    f.write(struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF))


def _sub_filtered(band: np.ndarray, channels: int) -> bytes:
    """Rows of ``band`` (uint8 ``(n, W)`` or ``(n, W, 3)``), each prefixed by filter type 1."""
    rows = band.reshape(band.shape[0], -1)
    out = np.empty((rows.shape[0], rows.shape[1] + 1), dtype=np.uint8)
    out[:, 0] = 1
    out[:, 1:channels + 1] = rows[:, :channels]
    np.subtract(rows[:, channels:], rows[:, :-channels], out=out[:, channels + 1:])
    return out.tobytes()


def write_png_bands(path: Path, size: tuple[int, int], channels: int,
                    bands: Iterable[np.ndarray], level: int = 6) -> Path:
    """Atomically write a PNG of ``size`` ``(w, h)`` from ``bands``: uint8 arrays of whole
    rows, top to bottom (``(n, w)`` for ``channels=1``, ``(n, w, 3)`` for 3), ``h`` rows in
    all (else ``ValueError``)."""
    width, height = size

    def write(f: BinaryIO) -> None:
        f.write(_SIGNATURE)
        _chunk(f, b"IHDR", struct.pack(">IIBBBBB", width, height, 8, _COLOUR[channels], 0, 0,
                                       0))
        z = zlib.compressobj(level)
        done = 0
        for band in bands:
            if band.dtype != np.uint8 or band.shape[1] != width:
                raise ValueError(f"band of {band.shape} {band.dtype}, expected width {width}")
            done += band.shape[0]
            data = z.compress(_sub_filtered(band, channels))
            if data:
                _chunk(f, b"IDAT", data)
        if done != height:
            raise ValueError(f"{done} rows written, the PNG has {height}")
        _chunk(f, b"IDAT", z.flush())
        _chunk(f, b"IEND", b"")

    return atomic_write(path, write)
