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


def _by_hand_channel(net: TinyNet, x: torch.Tensor, cls: int, delta: float
                     ) -> tuple[torch.Tensor, ...]:
    """Eq. 7 read channel-wise: R_k = mean_ij 1[g >= t] g, M = ReLU(sum_k R_k A_k)."""
    with torch.no_grad():
        z1 = net.conv1(x)
        a1 = F.leaky_relu(z1, 0.1)
        z2 = torch.einsum("kj,bjhw->bkhw", net.conv2.weight[:, :, 0, 0], a1) \
            + net.conv2.bias[None, :, None, None]
        a2 = z2.clamp_min(0)
        v = net.head.weight[cls].view(1, 2, 4, 4).expand_as(a2)
        g2 = (z2 > 0).float() * _filt(v, delta)
        g1 = torch.einsum("kj,bkhw->bjhw", net.conv2.weight[:, :, 0, 0], g2)
        maps = []
        for g, a in ((g1, a1), (v, a2)):
            w = _filt(g, delta)
            r = torch.stack([torch.stack([w[b, k].sum() / w[b, k].numel()
                                          for k in range(w.shape[1])])
                             for b in range(w.shape[0])])             # (B, C), one loop each
            m = sum(r[:, k, None, None] * a[:, k] for k in range(a.shape[1])).clamp_min(0)
            maps.append(_norm(F.interpolate(m[:, None], size=(8, 8), mode="bilinear",
                                            align_corners=False)[:, 0]))
        return maps[0], maps[1], _norm(torch.maximum(maps[0], maps[1]))


def test_racam_channel_weighting_equals_hand_computation() -> None:
    net = TinyNet().eval()
    x = torch.randn(3, 1, 8, 8, generator=torch.Generator().manual_seed(5))
    for delta in (50.0, 0.0):
        l1, l2, fused = _by_hand_channel(net, x, 1, delta)
        cam = build_cam("racam", net, ["act1", "act2"], delta=delta, fusion="max",
                        weighting="channel")
        out = cam(x, targets=1)
        torch.testing.assert_close(cam.layer_maps[0], l1, atol=1e-5, rtol=0)
        torch.testing.assert_close(cam.layer_maps[1], l2, atol=1e-5, rtol=0)
        torch.testing.assert_close(out, fused, atol=1e-5, rtol=0)
    # the two readings give different maps; the default is the element-wise one
    elem = RACAM(net, ["act1", "act2"], delta=50.0)(x, 1)
    torch.testing.assert_close(elem, _by_hand(net, x, 1, 50.0)[2], atol=1e-5, rtol=0)
    assert float((elem - RACAM(net, ["act1", "act2"], delta=50.0,
                               weighting="channel")(x, 1)).abs().max()) > 0.05


def test_racam_channel_weighting_on_captured_vgg_activations() -> None:
    """On a VGG16 the channel reading equals the formula applied to activations and gradients
    captured with plain hooks under ``fgbp`` (no RA-CAM code involved)."""
    from helpers import tiny_vgg

    from racam.cam import fgbp
    from racam.cam.layers import vgg16_stage_layers

    net = tiny_vgg(seed=2)
    x = torch.rand(2, 3, 64, 32, generator=torch.Generator().manual_seed(1))
    stages = vgg16_stage_layers(net)
    layers = {"S3": stages[2], "S5": stages[4]}
    names = ["S3", "S5"]
    acts: dict[str, torch.Tensor] = {}
    def keep(name: str):
        def hook(module: nn.Module, args: object, out: torch.Tensor) -> None:
            out.retain_grad()
            acts[name] = out
        return hook

    hooks = [layers[n].register_forward_hook(keep(n)) for n in names]
    try:
        xi = x.clone().requires_grad_()
        with fgbp(net, delta=40.0):
            net(xi)[:, 1].sum().backward()
    finally:
        for h in hooks:
            h.remove()
    expected = []
    for n in names:
        a, g = acts[n].detach(), acts[n].grad
        w = _filt(g, 40.0)
        m = (w.mean(dim=(2, 3))[:, :, None, None] * a).sum(1).clamp_min(0)
        expected.append(_norm(F.interpolate(m[:, None], size=(64, 32), mode="bilinear",
                                            align_corners=False)[:, 0]))
    assert all(float(e.amax()) == 1.0 for e in expected)  # not a constant (all-zero) map
    cam = RACAM(net, [layers[n] for n in names], delta=40.0, weighting="channel", fusion="mean")
    out = cam(x, 1)
    for got, want in zip(cam.layer_maps, expected):
        torch.testing.assert_close(got, want, atol=1e-5, rtol=0)
    torch.testing.assert_close(out, _norm((expected[0] + expected[1]) / 2), atol=1e-5, rtol=0)


def test_racam_rejects_an_unknown_weighting() -> None:
    import pytest

    from racam.errors import ConfigError

    with pytest.raises(ConfigError, match="weighting"):
        RACAM(TinyNet(), ["act1"], weighting="pixel")
