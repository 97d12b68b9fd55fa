"""Exact per-map percentile of the positive values, and the FGBP / RA-CAM gradient filter.

Definition (numpy's and ``torch.quantile``'s "linear" interpolation, applied to the positive
entries of one map only): let ``v_0 <= ... <= v_{n-1}`` be the ``n`` positive values of the
map, ``p = q/100 * (n - 1)``, ``j = floor(p)``, ``f = p - j``. Then

    t = v_j + f * (v_{j+1} - v_j)        (t = v_j when f = 0)

and ``t = +inf`` when the map has no positive value (so the filter passes nothing). ``q = 0``
gives the smallest positive value (the filter keeps every positive entry: guided
backpropagation); ``q = 100`` the largest.

The computation is exact for maps of any size (no 2^24 limit, no sampling): maps are processed
in chunks of rows; within a chunk every row is brought to one common rank ``K`` by sending some
of its non-positive entries to ``-inf`` and the others to ``+inf``, so that a single batched
``torch.kthvalue`` (linear-time selection) finds ``v_j`` of every row at once; ``v_{j+1}`` is
the smallest value above ``v_j`` (or ``v_j`` itself when tied).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from racam.errors import ConfigError

#: Elements per chunk (8 MiB of float32): small enough to stay in cache, large enough to batch.
CHUNK_ELEMENTS = 1 << 21


def _check_q(q: float) -> float:
    q = float(q)
    if not 0.0 <= q <= 100.0 or math.isnan(q):
        raise ConfigError(f"percentile delta must lie in [0, 100], got {q}")
    return q


def _rows_percentile(rows: Tensor, q: float) -> Tensor:
    """Percentile of the positive values of each row of a contiguous 2-D tensor ``(R, L)``."""
    pos = rows > 0
    n = pos.sum(dim=1)
    p = (q * (n - 1).clamp_min(0).to(torch.float64)) / 100.0
    j = p.floor().to(torch.long)
    frac = p - j.to(torch.float64)
    K = int(j.max())
    # Row r needs m_r = K - j_r entries below its positives: the first m_r non-positive entries
    # (by position) go to -inf, the other non-positive entries to +inf. m_r <= L - n_r holds
    # because j is non-decreasing in n with slope <= 1 (see module docstring).
    neg = ~pos
    m = (K - j).to(torch.int32)
    low = neg & (neg.cumsum(dim=1, dtype=torch.int32) <= m[:, None])
    v = rows.masked_fill(neg, math.inf).masked_fill_(low, -math.inf)
    v_lo = v.kthvalue(K + 1, dim=1).values
    t = v_lo
    need_hi = frac > 0
    if bool(need_hi.any()):
        above = torch.where(v > v_lo[:, None], v, math.inf).amin(dim=1)
        ties = (pos & (rows <= v_lo[:, None])).sum(dim=1)  # positives <= v_j
        v_hi = torch.where(ties >= j + 2, v_lo, above)
        interp = torch.lerp(v_lo, torch.where(need_hi, v_hi, v_lo), frac.to(rows.dtype))
        t = torch.where(need_hi, interp, v_lo)
    return torch.where(n > 0, t, torch.full_like(t, math.inf))


def positive_percentile(x: Tensor, q: float, map_dims: int) -> Tensor:
    """q-th percentile of the positive values of every map of ``x`` (exact, any map size).

    The maps are the last ``map_dims`` dimensions of ``x``; one threshold is returned per index
    of the leading dimensions (shape ``x.shape[:-map_dims]``), ``+inf`` for a map without a
    positive value. ``x`` may have any memory layout (e.g. channels-last).
    """
    q = _check_q(q)
    if not 1 <= map_dims <= x.dim():
        raise ConfigError(f"map_dims must be in [1, {x.dim()}], got {map_dims}")
    lead = x.shape[: x.dim() - map_dims]
    length = math.prod(x.shape[x.dim() - map_dims:])
    if length == 0:
        raise ConfigError("cannot take a percentile of empty maps")
    xr = x.reshape(-1, *x.shape[x.dim() - map_dims:]) if len(lead) <= 1 else None
    out = torch.empty(math.prod(lead), dtype=x.dtype, device=x.device)
    step = max(1, CHUNK_ELEMENTS // length)
    if xr is not None:
        for s in range(0, xr.shape[0], step):
            out[s:s + step] = _rows_percentile(xr[s:s + step].reshape(-1, length), q)
        return out.reshape(lead)
    # Two or more leading dims (e.g. (B, C) maps of a channels-last tensor): chunk the last
    # leading dim inside each index of the others, so no full-size copy is ever made.
    inner = lead[-1]
    outer = x.reshape(-1, *x.shape[len(lead) - 1:]) if len(lead) > 2 else x
    o = out.view(-1, inner)
    for b in range(outer.shape[0]):
        for s in range(0, inner, step):
            o[b, s:s + step] = _rows_percentile(outer[b, s:s + step].reshape(-1, length), q)
    return out.reshape(lead)


def map_dims_for(x: Tensor, scope: str = "channel") -> int:
    """How many trailing dims form one map for the FGBP / RA-CAM rule.

    ``(B, C, ...)`` tensors with ``scope="channel"``: one map per sample and channel (the spatial
    dims). ``scope="sample"``: one map per sample (channels and space together). ``(B, N)``
    tensors (fully-connected activations): one map per sample (the N values). A 1-D tensor is
    one map.
    """
    if scope not in ("channel", "sample"):
        raise ConfigError(f"percentile scope must be 'channel' or 'sample', got {scope!r}")
    if x.dim() <= 1:
        return x.dim() or 1
    if x.dim() == 2 or scope == "sample":
        return x.dim() - 1
    return x.dim() - 2


def percentile_filter(g: Tensor, q: float, scope: str = "channel") -> Tensor:
    """``1[g >= t] * g`` with ``t`` the q-th percentile of the positive values of each map.

    Maps as in :func:`map_dims_for`. A map without positive values becomes all zeros; with
    ``q = 0`` this keeps exactly the positive entries (``relu(g)``).
    """
    if g.dim() == 0:
        return g.clamp_min(0)
    md = map_dims_for(g, scope)
    t = positive_percentile(g, q, md)
    t = t.reshape(*t.shape, *([1] * md))
    return torch.where(g >= t, g, torch.zeros((), dtype=g.dtype, device=g.device))
