"""RA-CAM computed by hand on a tiny network equals the engine's output."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from racam.cam import RACAM, LayerCAM, build_cam


class TinyNet(nn.Module):
    """conv (stride 2) -> LeakyReLU -> 1x1 conv -> ReLU -> linear over the flattened map."""

    def __init__(self) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(7)
        self.conv1 = nn.Conv2d(1, 3, 3, stride=2, padding=1)
        self.act1 = nn.LeakyReLU(0.1)
        self.conv2 = nn.Conv2d(3, 2, 1)
        self.act2 = nn.ReLU()
        self.head = nn.Linear(2 * 4 * 4, 2)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.act2(self.conv2(self.act1(self.conv1(x)))).flatten(1))


def _filt(g: torch.Tensor, delta: float) -> torch.Tensor:
    """1[g >= t] g per (sample, channel) map, t = torch.quantile of the map's positive values."""
    out = torch.zeros_like(g)
    for b in range(g.shape[0]):
        for c in range(g.shape[1]):
            m = g[b, c]
            pos = m[m > 0]
            if pos.numel():
                t = torch.quantile(pos.double(), delta / 100).float()
                out[b, c] = torch.where(m >= t, m, 0.0)
    return out


def _norm(m: torch.Tensor) -> torch.Tensor:
    lo = m.amin(dim=(1, 2), keepdim=True)
    hi = m.amax(dim=(1, 2), keepdim=True)
    return (m - lo) / (hi - lo)


def _by_hand(net: TinyNet, x: torch.Tensor, cls: int, delta: float) -> tuple[torch.Tensor, ...]:
    with torch.no_grad():
        z1 = net.conv1(x)
        a1 = F.leaky_relu(z1, 0.1)                                  # target layer 1 (B,3,4,4)
        z2 = torch.einsum("kj,bjhw->bkhw", net.conv2.weight[:, :, 0, 0], a1) \
            + net.conv2.bias[None, :, None, None]
        a2 = z2.clamp_min(0)                                        # target layer 2 (B,2,4,4)
        v = net.head.weight[cls].view(1, 2, 4, 4).expand_as(a2)     # dy/da2 (pre-filter)
        # FGBP through act2: relu'(z2) * 1[v >= t] v, then back through the 1x1 conv
        g2 = (z2 > 0).float() * _filt(v, delta)
        g1 = torch.einsum("kj,bkhw->bjhw", net.conv2.weight[:, :, 0, 0], g2)  # dy/da1
        m1 = (_filt(g1, delta) * a1).sum(1).clamp_min(0)            # Eqs. 6-7
        m2 = (_filt(v, delta) * a2).sum(1).clamp_min(0)
        up = [_norm(F.interpolate(m[:, None], size=(8, 8), mode="bilinear",
                                  align_corners=False)[:, 0]) for m in (m1, m2)]
        return up[0], up[1], _norm(torch.maximum(up[0], up[1]))


def test_racam_equals_hand_computation() -> None:
    net = TinyNet().eval()
    x = torch.randn(3, 1, 8, 8, generator=torch.Generator().manual_seed(3))
    for delta in (50.0, 20.0):
        l1, l2, fused = _by_hand(net, x, 1, delta)
        cam = RACAM(net, ["act1", "act2"], delta=delta, fusion="max")
        out = cam(x, targets=1)
        torch.testing.assert_close(cam.layer_maps[0], l1, atol=1e-5, rtol=0)
        torch.testing.assert_close(cam.layer_maps[1], l2, atol=1e-5, rtol=0)
        torch.testing.assert_close(out, fused, atol=1e-5, rtol=0)
    # the filter matters: RA-CAM differs from LayerCAM on the same layers
    lc = LayerCAM(net, ["act1", "act2"])(x, 1)
    assert float((lc - out).abs().max()) > 0.05


def test_racam_mean_fusion_and_registry() -> None:
    net = TinyNet().eval()
    x = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(4))
    l1, l2, _ = _by_hand(net, x, 0, 50.0)
    cam = build_cam("racam", net, ["act1", "act2"], delta=50, fusion="mean")
    torch.testing.assert_close(cam(x, [0, 0]), _norm((l1 + l2) / 2), atol=1e-5, rtol=0)
