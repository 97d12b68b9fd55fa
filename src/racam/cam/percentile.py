"""Exact per-map percentile of the positive values, and the FGBP / RA-CAM gradient filter.

Definition (numpy's and ``torch.quantile``'s "linear" interpolation, applied to the positive
entries of one map only): let ``v_0 <= ... <= v_{n-1}`` be the ``n`` positive values of the
map, ``p = q * (n - 1) / 100``, ``j = floor(p)``, ``f = p - j``. Then

    t = v_j + f * (v_{j+1} - v_j)        (t = v_j when f = 0)

and ``t = +inf`` when the map has no positive value (so the filter passes nothing). ``q = 0``
gives the smallest positive value (the filter keeps every positive entry: guided
backpropagation); ``q = 100`` the largest.

Algorithms (both exact, batched over maps, no sort of whole maps, no 2^24 limit, few large
tensor operations rather than many small ones):

- maps of at least :data:`RADIX_MIN` values: a two-pass radix select on the floats' bit
  patterns (non-negative IEEE floats order like their bit patterns read as integers). Pass 1
  builds, per map, a histogram of the leading bits (sign, exponent, a few mantissa bits) with
  ``torch.bincount``; its cumulative sum locates the bins holding ranks ``j`` and ``j + 1``.
  Pass 2 gathers only the values of those bins (a few percent of a map) and sorts them to read
  ``v_j`` and ``v_{j+1}``. The data is read in pieces of about :data:`PIECE` elements (a long
  map in several pieces; a channels-last tensor in bands across its channels), so no full-size
  copy is made. float16 / bfloat16 are processed in float32 (exact).
- shorter maps: one ``torch.kthvalue`` per chunk of maps (see :func:`_kth_rows`).

It runs with torch's intra-op threads as set (``torch.set_num_threads``).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from racam.errors import ConfigError

#: Elements per piece (16 MiB of float32).
PIECE = 1 << 22
#: Maps at least this long use the radix select; shorter ones ``kthvalue``.
RADIX_MIN = 1 << 8

_BITS = {torch.float32: (torch.int32, 32), torch.float64: (torch.int64, 64)}


def check_percentile(q: float) -> float:
    """``q`` as a float, or a :class:`ConfigError` unless 0 <= q <= 100."""
    q = float(q)
    if math.isnan(q) or not 0.0 <= q <= 100.0:
        raise ConfigError(f"percentile delta must lie in [0, 100], got {q}")
    return q


def _ranks(npos: Tensor, q: float) -> tuple[Tensor, Tensor]:
    """``(j, f)``: integer and fractional part of ``q * (n - 1) / 100`` per map."""
    p = (q * (npos - 1).clamp_min(0).to(torch.float64)) / 100.0
    j = p.floor().to(torch.long)
    return j, p - j.to(torch.float64)


def _finish(v_lo: Tensor, v_hi: Tensor, frac: Tensor, npos: Tensor) -> Tensor:
    t = torch.where(frac > 0, torch.lerp(v_lo, v_hi, frac.to(v_lo.dtype)), v_lo)
    return torch.where(npos > 0, t, torch.full_like(t, math.inf))


def _kth_rows(rows: Tensor, q: float) -> Tensor:
    """Percentile of the positive values of each row of ``rows`` (R, L), for short rows.

    Within a chunk of rows, row r gets ``K - j_r`` of its non-positive entries (the first ones
    by position) set to -inf and the others to +inf, so that ``v_j`` of every row sits at the
    same rank ``K = max j_r`` and one ``torch.kthvalue`` finds them all (``K - j_r`` never
    exceeds the row's count of non-positive entries, since j grows by at most 1 per positive).
    ``v_{j+1}`` is ``v_j`` when tied, else the smallest value above ``v_j``.
    """
    n_rows, length = rows.shape
    out = torch.empty(n_rows, dtype=rows.dtype, device=rows.device)
    step = max(1, PIECE // length)
    for s in range(0, n_rows, step):
        r = rows[s:s + step].contiguous()
        pos = r > 0
        n = pos.sum(dim=1)
        j, frac = _ranks(n, q)
        k = int(j.max())
        neg = ~pos
        low = neg & (neg.cumsum(dim=1, dtype=torch.int32) <= (k - j).to(torch.int32)[:, None])
        v = r.masked_fill(neg, math.inf).masked_fill_(low, -math.inf)
        v_lo = v.kthvalue(k + 1, dim=1).values
        v_hi = v_lo
        if bool((frac > 0).any()):
            above = torch.where(v > v_lo[:, None], v, math.inf).amin(dim=1)
            ties = (pos & (r <= v_lo[:, None])).sum(dim=1)  # positives <= v_j
            v_hi = torch.where(ties >= j + 2, v_lo, above)
        out[s:s + step] = _finish(v_lo, v_hi, frac, n)
    return out


def _radix(blk: Tensor, q: float) -> Tensor:
    """Percentile of the positive values of each map ``(s, c)`` of ``blk`` (S, P, C), the map
    being ``blk[s, :, c]`` (C = 1: maps are rows). ``blk`` must be contiguous."""
    n_s, length, n_c = blk.shape
    n_maps, dev = n_s * n_c, blk.device
    work = blk.dtype if blk.dtype in _BITS else torch.float32
    idt, nbits = _BITS[work]
    key_bits = min(14, max(10, length.bit_length() - 3))  # ~8-32 bins per power of two
    shift = nbits - key_bits
    # key = ceil(bits / 2^shift) + 1: 0 = negative (or NaN), 1 = zero, k >= 2 = positive values
    # with bits in ((k - 2) 2^shift, (k - 1) 2^shift].
    inf_bits = int(torch.tensor(math.inf, dtype=work).view(idt).item())
    nb = (inf_bits >> shift) + 3

    def pieces():  # (piece (n, w), map index (n, 1) or (1, C), first map, number of maps)
        if n_c == 1:
            rows = blk.view(n_s, length)
            if length >= PIECE:
                for r in range(n_s):
                    for c in range(0, length, PIECE):
                        yield rows[r:r + 1, c:c + PIECE], zero_col, r, 1
            else:
                step = max(1, PIECE // length)
                for r in range(0, n_s, step):
                    m = min(step, n_s - r)
                    yield rows[r:r + m], row_idx[:m], r, m
        else:
            step = max(1, PIECE // n_c)
            for s in range(n_s):
                for p0 in range(0, length, step):
                    yield blk[s, p0:p0 + step], col_idx, s * n_c, n_c

    zero_col = torch.zeros(1, 1, dtype=torch.long, device=dev)
    row_idx = torch.arange(min(n_s, max(1, PIECE // length)), device=dev)[:, None]
    col_idx = torch.arange(n_c, device=dev)[None, :]

    hist = torch.zeros(n_maps, nb, dtype=torch.long, device=dev)
    for p, midx, m0, m in pieces():
        k = p.to(work).view(idt) + ((1 << shift) - 1)
        k = k.bitwise_right_shift_(shift).clamp_(-1, nb - 2)  # NaN may exceed +inf's key
        k += (midx * nb + 1).to(idt)
        hist[m0:m0 + m] += torch.bincount(k.view(-1), minlength=m * nb).view(m, nb)
    npos = hist[:, 2:].sum(dim=1)
    j, frac = _ranks(npos, q)
    jh = torch.where(frac > 0, j + 1, j)
    cum = hist[:, 2:].cumsum(dim=1)  # positives in bins 2 .. b
    b_lo = torch.searchsorted(cum, j[:, None], right=True)[:, 0].clamp_max(nb - 3)
    b_hi = torch.searchsorted(cum, jh[:, None], right=True)[:, 0].clamp_max(nb - 3)
    before = torch.where(b_lo > 0, cum.gather(1, (b_lo - 1).clamp_min(0)[:, None])[:, 0], 0)
    # bin index b (counted from bin 2) holds bits in (b 2^shift, (b + 1) 2^shift]
    lo = ((b_lo << shift) + 1).to(idt).view(work)
    hi = ((b_hi + 1) << shift).clamp_max(inf_bits).to(idt).view(work)

    cand_maps, cand_vals = [], []
    for p, midx, m0, _m in pieces():
        p = p.to(work)
        ri, ci = ((p >= lo[m0 + midx]) & (p <= hi[m0 + midx])).nonzero(as_tuple=True)
        cand_vals.append(p[ri, ci])
        cand_maps.append(m0 + (ri if n_c == 1 else ci))
    vals = torch.cat(cand_vals)
    maps_c = torch.cat(cand_maps)
    vals, order = vals.sort(stable=True)
    maps_c, order = maps_c[order].sort(stable=True)
    vals = vals[order]
    if vals.numel() == 0:
        vals = torch.full((1,), math.inf, dtype=work, device=dev)
    count = torch.bincount(maps_c, minlength=n_maps)
    start = count.cumsum(0) - count
    last = vals.numel() - 1
    v_lo = vals[(start + j - before).clamp(0, last)]
    v_hi = vals[(start + jh - before).clamp(0, last)]
    return _finish(v_lo, v_hi, frac, npos).to(blk.dtype)


def positive_percentile(x: Tensor, q: float, map_dims: int) -> Tensor:
    """q-th percentile of the positive values of every map of ``x`` (exact, any map size).

    The maps are the last ``map_dims`` dimensions of ``x``; one threshold is returned per index
    of the leading dimensions (shape ``x.shape[:-map_dims]``), ``+inf`` for a map without a
    positive value. ``x`` may be contiguous or channels-last.
    """
    q = check_percentile(q)
    if not x.is_floating_point():
        raise ConfigError(f"positive_percentile needs a float tensor, got {x.dtype}")
    if x.dim() == 0 or not 1 <= map_dims <= x.dim():
        raise ConfigError(f"map_dims must be in [1, {x.dim()}], got {map_dims}")
    lead = tuple(x.shape[: x.dim() - map_dims])
    length = math.prod(x.shape[x.dim() - map_dims:])
    n_maps = math.prod(lead)
    if length == 0:
        raise ConfigError("cannot take a percentile of empty maps")
    if n_maps == 0:
        return x.new_empty(lead)
    if x.is_contiguous():
        blk = x.view(n_maps, length, 1)
    elif len(lead) == 2 and x.dim() >= 3 and x.movedim(1, -1).is_contiguous():
        blk = x.movedim(1, -1).view(lead[0], length, lead[1])  # channels-last: no copy
    else:
        blk = x.reshape(n_maps, length, 1).contiguous()
    if length < RADIX_MIN:
        if blk.shape[2] > 1:
            return _kth_rows(x.reshape(n_maps, length), q).reshape(lead)
        return _kth_rows(blk.view(n_maps, length), q).reshape(lead)
    t = _radix(blk, q)
    return t.reshape(lead)


#: Allowed map scopes of ``(B, C, ...)`` activations (:func:`map_dims_for`).
SCOPES: tuple[str, ...] = ("channel", "sample")
#: Allowed map scopes of ``(B, N)`` activations, the fully connected head (:func:`map_dims_for`).
HEAD_SCOPES: tuple[str, ...] = ("sample", "unit")


def check_scope(scope: str, head: str = "sample") -> None:
    """``ConfigError`` unless ``scope`` is in :data:`SCOPES` and ``head`` in :data:`HEAD_SCOPES`."""
    if scope not in SCOPES:
        raise ConfigError(f"percentile scope must be 'channel' or 'sample', got {scope!r}")
    if head not in HEAD_SCOPES:
        raise ConfigError(f"head scope must be 'sample' or 'unit', got {head!r}")


def map_dims_for(x: Tensor, scope: str = "channel", head: str = "sample") -> int:
    """How many trailing dims form one map for the FGBP / RA-CAM rule.

    ``(B, C, ...)`` tensors with ``scope="channel"``: one map per sample and channel (the spatial
    dims). ``scope="sample"``: one map per sample (channels and space together). ``(B, N)``
    tensors (fully-connected activations) with ``head="sample"``: one map per sample (the N
    values); with ``head="unit"``: one map per sample and unit (a single value: 0 trailing
    dims, see :func:`percentile_filter`). A 1-D tensor is one map.
    """
    check_scope(scope, head)
    if x.dim() <= 1:
        return 1
    if x.dim() == 2:
        return 1 if head == "sample" else 0
    if scope == "sample":
        return x.dim() - 1
    return x.dim() - 2


def percentile_filter(g: Tensor, q: float, scope: str = "channel", head: str = "sample"
                      ) -> Tensor:
    """``1[g >= t] * g`` with ``t`` the q-th percentile of the positive values of each map.

    Maps as in :func:`map_dims_for`. A map without positive values becomes all zeros; with
    ``q = 0`` this keeps exactly the positive entries (``relu(g)``). A one-value map (a unit of
    a ``(B, N)`` tensor with ``head="unit"``) keeps its value when it is positive, whatever
    ``q``: its only positive value is its own percentile.
    """
    if g.dim() == 0:
        return g.clamp_min(0)
    md = map_dims_for(g, scope, head)
    if md == 0:  # one map per entry
        return percentile_filter(g[..., None], q, "channel")[..., 0]  # (B, N, 1): N maps
    t = positive_percentile(g, q, md)
    t = t.reshape(*t.shape, *([1] * md))
    return g * (g >= t)
