"""Otsu's threshold, torch-native and batched, matching ``skimage.filters.threshold_otsu``.

For one map with minimum ``lo``, maximum ``hi`` (docs/protocol.md, "From map to mask"), exactly as
``threshold_otsu(map, nbins=256)`` does it:

- bin edges ``e_i = i * ((hi - lo) / 256) + lo`` for ``i = 0..255`` and ``e_256 = hi``, computed
  in the map's dtype as ``numpy.linspace`` does; pixel ``x`` falls in bin ``i`` when
  ``e_i <= x < e_{i+1}`` (the last bin also holds ``hi``), as in ``numpy.histogram``;
- bin centres ``c_i = (e_i + e_{i+1}) / 2``; with counts ``n_i``, for each split ``k``:
  ``w0 = sum_{i<=k} n_i``, ``w1 = sum_{i>k} n_i``, ``m0``, ``m1`` the class means of the
  centres, and the between-class variance ``w0 * w1 * (m0 - m1)^2``;
- the threshold is ``c_k`` of the first ``k`` maximising it; ``mask = map > threshold``.

A constant map returns its own value as threshold, so its mask is empty (never NaN). The
statistics are computed in float64 (float32 on devices without float64), which can only
differ from scikit-image on exact ties of the variance.
"""

from __future__ import annotations

import torch
from torch import Tensor

NBINS = 256


def otsu_threshold(maps: Tensor, nbins: int = NBINS) -> Tensor:
    """Per-map Otsu threshold of ``maps (B, H, W)`` -> ``(B,)`` in the maps' dtype.

    Integer maps are converted to float32 first. Maps in [0, 1] give thresholds in [0, 1].
    """
    if maps.ndim != 3:
        raise ValueError(f"maps must be (B, H, W), got shape {tuple(maps.shape)}")
    if not maps.dtype.is_floating_point:
        maps = maps.float()
    if not torch.isfinite(maps).all():
        raise ValueError("maps hold NaN or infinite values")
    b = maps.shape[0]
    flat = maps.reshape(b, -1).contiguous()
    lo, hi = flat.amin(1), flat.amax(1)
    step = (hi - lo) / nbins
    steps = torch.arange(nbins + 1, dtype=flat.dtype, device=flat.device)
    edges = steps[None] * step[:, None] + lo[:, None]
    edges[:, -1] = hi
    idx = torch.searchsorted(edges[:, 1:-1].contiguous(), flat, right=True)
    acc = torch.float32 if flat.device.type == "mps" else torch.float64
    counts = torch.zeros(b, nbins, dtype=acc, device=flat.device)
    counts.scatter_add_(1, idx, torch.ones_like(flat, dtype=acc))
    centres = (edges[:, :-1] + edges[:, 1:]) / 2
    c = centres.to(acc)
    w0 = counts.cumsum(1)
    w1 = counts.flip(1).cumsum(1).flip(1)
    mass = counts * c
    m0 = mass.cumsum(1) / w0.clamp_min(1)
    m1 = mass.flip(1).cumsum(1).flip(1) / w1.clamp_min(1)
    variance = w0[:, :-1] * w1[:, 1:] * (m0[:, :-1] - m1[:, 1:]) ** 2
    k = variance.argmax(1)
    thr = centres.gather(1, k[:, None])[:, 0]
    return torch.where(hi == lo, lo, thr)


def otsu_mask(maps: Tensor, nbins: int = NBINS) -> Tensor:
    """Bool masks ``maps > otsu_threshold(maps)`` of shape ``(B, H, W)``."""
    thr = otsu_threshold(maps, nbins)
    m = maps if maps.dtype.is_floating_point else maps.float()
    return m > thr[:, None, None]


#: Accepted values of ``cam.pseudo_threshold``.
PSEUDO_THRESHOLDS: tuple[str, ...] = ("otsu", "otsu2", "band")


def pseudo_mask(heat: Tensor, rule: str = "otsu") -> Tensor:
    """Bool pseudo-label mask of one map ``heat (H, W)`` in [0, 1].

    - ``"otsu"``: ``heat > t1`` with ``t1`` the Otsu threshold of the map (the protocol).
    - ``"otsu2"``: ``heat > t2`` with ``t2`` the Otsu threshold of the values above ``t1``
      (Otsu applied again inside the Otsu foreground: the map's confident core). A foreground
      of fewer than two distinct values keeps the ``"otsu"`` mask.
    - ``"band"``: the ``"otsu2"`` mask; :func:`pseudo_ignore` adds the band ``t1 < heat <= t2``
      that training leaves out.
    """
    return pseudo_trimap(heat, rule)[0]


def pseudo_ignore(heat: Tensor, rule: str = "otsu") -> Tensor | None:
    """Bool mask of the pixels training should ignore under ``rule`` (``None`` for none): for
    ``"band"`` the pixels between the two Otsu thresholds, ``t1 < heat <= t2``."""
    return pseudo_trimap(heat, rule)[1]


def pseudo_trimap(heat: Tensor, rule: str = "otsu") -> tuple[Tensor, Tensor | None]:
    """``(defect mask, ignore mask or None)`` of one map ``heat (H, W)`` under ``rule``
    (see :func:`pseudo_mask`)."""
    if rule not in PSEUDO_THRESHOLDS:
        raise ValueError(f"pseudo threshold must be one of {PSEUDO_THRESHOLDS}, got {rule!r}")
    t1 = otsu_threshold(heat[None])[0]
    mask = heat > t1
    if rule == "otsu":
        return mask, None
    inner = heat[mask]
    if inner.numel() < 2 or bool(inner.min() == inner.max()):
        return mask, (torch.zeros_like(mask) if rule == "band" else None)
    t2 = otsu_threshold(inner[None, None, :])[0]
    core = heat > t2
    return core, (mask & ~core if rule == "band" else None)
