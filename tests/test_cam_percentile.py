"""Per-map percentile of positive values: against torch.quantile, exact on a > 2^24 map."""

from __future__ import annotations

import math

import pytest
import torch

import racam.cam.percentile as P
from racam.cam.percentile import map_dims_for, percentile_filter, positive_percentile
from racam.errors import ConfigError


def _oracle(x: torch.Tensor, q: float, map_dims: int) -> torch.Tensor:
    """torch.quantile (linear interpolation) of each map's positive values, in float64."""
    lead = x.shape[: x.dim() - map_dims]
    rows = x.reshape(-1, math.prod(x.shape[x.dim() - map_dims:]))
    out = []
    for r in rows:
        pos = r[r > 0].double()
        out.append(torch.quantile(pos, q / 100) if pos.numel() else torch.tensor(math.inf))
    return torch.stack(out).reshape(lead).to(x.dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("length", [1, 7, 40, 255, 256, 700, 3000])
def test_matches_quantile_on_small_maps(dtype: torch.dtype, length: int) -> None:
    # Lengths on both sides of RADIX_MIN exercise both algorithms.
    g = torch.Generator().manual_seed(length)
    for trial, q in enumerate([0.0, 100.0, 50.0, 37.3, 99.9, 0.001, 12.5]):
        x = torch.randn(5, length, generator=g, dtype=dtype)
        if trial % 2:
            x = x.round()  # many ties and exact zeros
        if trial == 3:
            x = x * 1e-30  # tiny magnitudes
        x[1] = -x[1].abs()  # a map without positive value
        t = positive_percentile(x, q, 1)
        ref = _oracle(x, q, 1)
        assert torch.equal(torch.isinf(t), torch.isinf(ref))
        fin = torch.isfinite(ref)
        torch.testing.assert_close(t[fin], ref[fin], rtol=1e-6, atol=0)


def test_channels_last_and_pieces_agree_with_quantile(monkeypatch: pytest.MonkeyPatch) -> None:
    x = torch.randn(3, 4, 30, 20)
    ref = _oracle(x, 63.0, 2)
    for radix_min, piece in [(1 << 8, 1 << 22), (1 << 8, 500), (1 << 20, 500)]:
        monkeypatch.setattr(P, "RADIX_MIN", radix_min)
        monkeypatch.setattr(P, "PIECE", piece)  # several pieces per map / per band
        for t in (x, x.contiguous(memory_format=torch.channels_last)):
            torch.testing.assert_close(positive_percentile(t, 63.0, 2), ref, rtol=1e-6, atol=0)
        long_row = torch.randn(2, 1700)
        torch.testing.assert_close(positive_percentile(long_row, 50.0, 1),
                                   _oracle(long_row, 50.0, 1), rtol=1e-6, atol=0)


def test_half_precision_is_exact() -> None:
    x = torch.randn(3, 600).to(torch.bfloat16)
    t = positive_percentile(x, 30.0, 1)
    assert t.dtype == torch.bfloat16
    torch.testing.assert_close(t.float(), _oracle(x.float(), 30.0, 1).to(torch.bfloat16).float())


def test_map_larger_than_2_pow_24_is_exact() -> None:
    # 4100 x 4100 = 16.81M > 2^24 values: -M .. N-1-M in scrambled order, all exact in float32.
    side = 4100
    n = side * side
    m = n // 2
    x = torch.arange(-m, n - m, dtype=torch.float32).view(side, side).t().contiguous()
    x = x.view(1, 1, side, side)
    npos = n - m - 1  # positive values 1 .. npos
    for q in (37.0, 50.0, 0.0):
        p = q * (npos - 1) / 100
        expected = 1 + p  # v_j = j + 1, so v_j + f (v_{j+1} - v_j) = 1 + p
        t = positive_percentile(x, q, 2)
        assert t.shape == (1, 1)
        assert abs(float(t) - expected) <= 0.25  # float32 spacing at 3e6 is 0.25
        kept = int((percentile_filter(x, q) > 0).sum())
        assert kept == npos - math.ceil(float(t)) + 1


def test_filter_by_hand() -> None:
    # one map: positives 1, 2, 4, 8 -> 50th percentile = 2 + 0.5 * (4 - 2) = 3
    g = torch.tensor([[[[1.0, -3.0], [2.0, 4.0], [8.0, 0.0]]]])
    torch.testing.assert_close(percentile_filter(g, 50.0),
                               torch.tensor([[[[0.0, 0.0], [0.0, 4.0], [8.0, 0.0]]]]))
    # delta = 0 keeps every positive value (guided backpropagation)
    torch.testing.assert_close(percentile_filter(g, 0.0), g.clamp_min(0))
    # per channel: the second channel has no positive value and passes nothing
    g2 = torch.stack([g[0, 0], -g[0, 0].abs()])[None]
    out = percentile_filter(g2, 50.0)
    assert torch.equal(out[0, 1], torch.zeros_like(out[0, 1]))
    # (B, N) activations: one map per sample over the vector
    fc = torch.tensor([[1.0, 2.0, 3.0, -1.0], [5.0, -5.0, 0.5, 0.25]])
    torch.testing.assert_close(percentile_filter(fc, 50.0),
                               torch.tensor([[0.0, 2.0, 3.0, 0.0], [5.0, 0.0, 0.5, 0.0]]))
    # scope="sample": one threshold over all channels of a sample
    two = torch.tensor([[[[1.0, 2.0]], [[3.0, 4.0]]]])  # positives 1..4 -> t = 2.5
    torch.testing.assert_close(percentile_filter(two, 50.0, scope="sample"),
                               torch.tensor([[[[0.0, 0.0]], [[3.0, 4.0]]]]))
    assert map_dims_for(two, "channel") == 2 and map_dims_for(two, "sample") == 3


def test_bad_arguments() -> None:
    with pytest.raises(ConfigError, match="delta"):
        percentile_filter(torch.ones(1, 1, 2, 2), 101.0)
    with pytest.raises(ConfigError, match="scope"):
        percentile_filter(torch.ones(1, 1, 2, 2), 50.0, scope="pixel")
    with pytest.raises(ConfigError, match="float"):
        positive_percentile(torch.ones(2, 3, dtype=torch.long), 50.0, 1)
