"""Segmentation of images far larger than the network input, in overlapping tiles, with
memory bounded by the image itself.

The image is resized (bilinear, as training images were) by the run's *scale*, the network
input size over the training images' median size (:func:`racam.deploy.run_dir.
training_scale`, recorded in ``bundle.json``), so that defects look the size the network
learned; padded by edge replication to a multiple of :data:`ALIGN` (and at least one tile);
cut into tiles (the network input size; at least :data:`MIN_TILE` square where the network
takes any size) whose origins are multiples of :data:`ALIGN` (the encoder's stride: every
tile sees the same pooling grid as the whole image) and that overlap by at least
``2 * TILE_MARGIN``; each tile's probabilities are kept in its part nearest its centre (cut
at the middle of each overlap), so every kept pixel lies at least :data:`TILE_MARGIN` network
pixels from a tile edge. The probability map at the run's scale is then resized bilinear to
the original size band by band (:func:`upsample_threshold`) and cut by the mask rule, so no
full-size float map exists. ``tiled=False`` runs the network once on the whole resized image
instead (the reference the tiles are tested against). Where the encoder's receptive field
reaches past the margin (every real encoder), tiles and whole image differ a little
(docs/results.md, "Deployment").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from torch import Tensor

__all__ = ["ALIGN", "BAND_ROWS", "MIN_TILE", "TILE_ABOVE", "TILE_MARGIN", "Tiling", "axis_tiles",
           "plan_tiles", "segment_scaled", "tile_size",
           "upsample_threshold"]

#: Tile origins and padded sizes are multiples of this (the encoders' output stride, 32).
ALIGN = 32
#: Network pixels each kept pixel lies at least from a tile edge.
TILE_MARGIN = 32
#: An image is tiled when, at the run's scale, it is more than this many times the network
#: input's width or height; smaller ones are resized to the input size (as before tiles).
TILE_ABOVE = 2.0
#: Smallest tile side for networks that take any input size (the tile is the network input
#: size otherwise): a 512 x 512 tile keeps 448 x 448 of its pixels, a 128 x 320 one 64 x 256.
MIN_TILE = 512
#: Output rows resized at a time.
BAND_ROWS = 128


@dataclass(frozen=True)
class Tiling:
    """How one image is segmented: its size at the run's scale ``(w, h)``, the padded canvas
    ``(w, h)``, the tile size ``(w, h)`` and the tile origins and kept spans
    ``(origin, start, end)`` per axis."""

    tile: tuple[int, int]
    scaled: tuple[int, int]
    canvas: tuple[int, int]
    xs: list[tuple[int, int, int]]
    ys: list[tuple[int, int, int]]


def _ceil(v: int, a: int) -> int:
    return -(-v // a) * a


def axis_tiles(length: int, tile: int, margin: int = TILE_MARGIN,
               align: int = ALIGN) -> list[tuple[int, int, int]]:
    """``(origin, start, end)`` of each tile along an axis of ``length`` (a multiple of
    ``align``, at least ``tile``): tiles of ``tile`` at origins that are multiples of
    ``align``, consecutive ones overlapping by at least ``2 * margin``; ``[start, end)`` is the
    part a tile keeps (the spans partition ``[0, length)``)."""
    step = max(align, (tile - 2 * margin) // align * align)
    origins = list(range(0, max(1, length - tile), step))
    if origins[-1] + tile < length:
        origins.append(length - tile)
    cuts = [0] + [(a + b + tile) // 2 for a, b in zip(origins, origins[1:])] + [length]
    return [(o, cuts[i], cuts[i + 1]) for i, o in enumerate(origins)]


def plan_tiles(size: tuple[int, int], scale: tuple[float, float],
               tile: tuple[int, int]) -> Tiling:
    """The :class:`Tiling` of an image of ``size`` ``(w, h)`` at ``scale`` with network input
    ``tile`` ``(w, h)``."""
    sw, sh = max(1, round(size[0] * scale[0])), max(1, round(size[1] * scale[1]))
    cw, ch = max(tile[0], _ceil(sw, ALIGN)), max(tile[1], _ceil(sh, ALIGN))
    return Tiling(tile, (sw, sh), (cw, ch), axis_tiles(cw, tile[0]), axis_tiles(ch, tile[1]))


def tile_size(input_size: tuple[int, int], dynamic: bool) -> tuple[int, int]:
    """Tiles of the network input size, or, for a network that takes any size (``dynamic``),
    at least :data:`MIN_TILE` on each side (rounded up to :data:`ALIGN`): fewer, larger tiles
    spend less of their area on margins."""
    if not dynamic:
        return input_size
    return (max(input_size[0], _ceil(MIN_TILE, ALIGN)), max(input_size[1], _ceil(MIN_TILE, ALIGN)))


def _unit(arr: np.ndarray) -> np.ndarray:
    """``(H, W[, C])`` uint8 or float [0, 1] -> float32 ``(C, H, W)`` (as image_to_tensor)."""
    if arr.dtype == np.uint8:
        out = arr.astype(np.float32) / np.float32(255.0)
    else:
        out = np.clip(arr.astype(np.float32), 0.0, 1.0)
    return out[None] if out.ndim == 2 else out.transpose(2, 0, 1)


def segment_scaled(image: Image.Image, tiling: Tiling, channels: int,
                   segment: Callable[[Tensor], Tensor], *, tiled: bool = True,
                   batch: int = 1, mean: float = 0.0, std: float = 1.0,
                   channel: int = 1) -> np.ndarray:
    """Defect probabilities ``(h, w)`` float32 of ``image`` at the run's scale
    (``tiling.scaled``): the segmentation logits of ``segment`` (``(B, C, H, W)`` ->
    ``(B, 2, H, W)``), softmax channel ``channel``, over tiles (module docstring) or, with
    ``tiled=False``, the whole padded canvas at once."""
    sw, sh = tiling.scaled
    tile = tiling.tile
    scaled = np.asarray(image.resize((sw, sh), Image.Resampling.BILINEAR))
    pad = [(0, tiling.canvas[1] - sh), (0, tiling.canvas[0] - sw)] + [(0, 0)] * (scaled.ndim - 2)
    canvas = np.pad(scaled, pad, mode="edge")
    del scaled
    prob = np.empty((sh, sw), dtype=np.float32)

    def run(xs: list[np.ndarray]) -> np.ndarray:
        x = torch.from_numpy(np.stack(xs))
        if channels == 3 and x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        if mean != 0.0 or std != 1.0:
            x = (x - mean) / std
        return segment(x).softmax(1)[:, channel].numpy()

    if not tiled:
        prob[:] = run([_unit(canvas)])[0][:sh, :sw]
        return prob
    jobs = [(x, y) for y in tiling.ys for x in tiling.xs]
    for k in range(0, len(jobs), batch):
        part = jobs[k:k + batch]
        out = run([_unit(canvas[y[0]:y[0] + tile[1], x[0]:x[0] + tile[0]]) for x, y in part])
        for (x, y), p in zip(part, out):
            (ox, x0, x1), (oy, y0, y1) = x, y
            x1, y1 = min(x1, sw), min(y1, sh)
            if x0 < x1 and y0 < y1:
                prob[y0:y1, x0:x1] = p[y0 - oy:y1 - oy, x0 - ox:x1 - ox]
    return prob


def _source(out: int, inp: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bilinear (``align_corners=False``) source indices and weights of ``out`` positions
    from ``inp`` ones: ``(i0, i1, w1)``, as ``torch.nn.functional.interpolate``."""
    src = np.maximum((np.arange(out, dtype=np.float64) + 0.5) * (inp / out) - 0.5, 0.0)
    i0 = np.minimum(src.astype(np.int64), inp - 1)
    i1 = np.minimum(i0 + 1, inp - 1)
    return i0, i1, (src - i0).astype(np.float32)


def upsample_threshold(prob: np.ndarray, size: tuple[int, int], threshold: float,
                       rows: int = BAND_ROWS) -> np.ndarray:
    """Bool mask ``(H, W)`` at ``size`` ``(W, H)``: ``prob`` resized bilinear, clamped to
    ``[0, 1]``, ``> threshold``; computed ``rows`` output rows at a time."""
    width, height = size
    ph, pw = prob.shape
    yi0, yi1, yw = _source(height, ph)
    xi0, xi1, xw = _source(width, pw)
    mask = np.empty((height, width), dtype=bool)
    for r0 in range(0, height, rows):
        r1 = min(height, r0 + rows)
        w = yw[r0:r1, None]
        band = prob[yi0[r0:r1]] * (1 - w) + prob[yi1[r0:r1]] * w
        band = band[:, xi0] * (1 - xw) + band[:, xi1] * xw
        mask[r0:r1] = np.clip(band, 0.0, 1.0) > threshold
    return mask
