"""FGBP on tiny hand-computed networks, against guided backprop (grad-cam) and by hand."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from racam.cam import fgbp
from racam.errors import RacamError


class Tiny(nn.Module):
    """y = w2 . act(W1 x) with W1 = identity: dy/dx = act'(x) * (filtered) w2."""

    def __init__(self, act: nn.Module, w2: list[float]) -> None:
        super().__init__()
        self.fc1 = nn.Linear(4, 4, bias=False)
        self.act = act
        self.fc2 = nn.Linear(4, 1, bias=False)
        with torch.no_grad():
            self.fc1.weight.copy_(torch.eye(4))
            self.fc2.weight.copy_(torch.tensor([w2]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


def _input_grad(model: nn.Module, x: list[float], delta: float | None) -> list[float]:
    xi = torch.tensor([x], requires_grad=True)
    if delta is None:
        y = model(xi)
        return torch.autograd.grad(y.sum(), xi)[0][0].tolist()
    with fgbp(model, delta=delta):
        y = model(xi)
        return torch.autograd.grad(y.sum(), xi)[0][0].tolist()


W2 = [4.0, 1.0, 2.0, -1.0]  # positives 1, 2, 4: 50th percentile = 2, 0th = 1


@pytest.mark.parametrize("inplace", [False, True])
def test_relu_filter_by_hand(inplace: bool) -> None:
    model = Tiny(nn.ReLU(inplace=inplace), W2)
    x = [1.0, 1.0, 2.0, 3.0]  # all active: act' = 1
    assert _input_grad(model, x, None) == [4.0, 1.0, 2.0, -1.0]
    assert _input_grad(model, x, 0.0) == [4.0, 1.0, 2.0, 0.0]  # guided backprop
    assert _input_grad(model, x, 50.0) == [4.0, 0.0, 2.0, 0.0]  # keep g >= 2
    assert _input_grad(model, x, 100.0) == [4.0, 0.0, 0.0, 0.0]
    assert _input_grad(model, [1.0, 1.0, -2.0, 3.0], 50.0) == [4.0, 0.0, 0.0, 0.0]  # relu'
    assert model.act.inplace is inplace
    assert not model.act._forward_hooks and not model._forward_pre_hooks


def test_leaky_relu_negative_slope_and_relu6() -> None:
    leaky = Tiny(nn.LeakyReLU(0.1), W2)
    got = _input_grad(leaky, [-1.0, 1.0, 2.0, 3.0], 50.0)  # act' = 0.1 on the first entry
    np.testing.assert_allclose(got, [0.4, 0.0, 2.0, 0.0], rtol=1e-6)
    np.testing.assert_allclose(_input_grad(leaky, [-1.0, -1.0, 2.0, 3.0], 0.0),
                               [0.4, 0.1, 2.0, 0.0], rtol=1e-6)
    six = Tiny(nn.ReLU6(), W2)
    assert _input_grad(six, [1.0, 7.0, 2.0, 3.0], 0.0) == [4.0, 0.0, 2.0, 0.0]  # 7 > 6: flat


class Maps(nn.Module):
    """Logit = sum(w * act(x)) over a (1, 2, 2, 2) map: per-channel filtering by hand."""

    def __init__(self) -> None:
        super().__init__()
        self.act = nn.ReLU()
        self.register_buffer("w", torch.tensor([[[[4.0, 1.0], [2.0, -1.0]],
                                                 [[-1.0, -2.0], [-3.0, -4.0]]]]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.act(x) * self.w).flatten(1).sum(1, keepdim=True)


def test_per_channel_maps_and_map_without_positive_gradient() -> None:
    model = Maps()
    x = torch.ones(1, 2, 2, 2, requires_grad=True)
    with fgbp(model, delta=50.0):
        g = torch.autograd.grad(model(x).sum(), x)[0]
    expected = torch.tensor([[[[4.0, 0.0], [2.0, 0.0]], [[0.0, 0.0], [0.0, 0.0]]]])
    assert torch.equal(g, expected)


def _relu_cnn() -> nn.Module:
    torch.manual_seed(3)
    return nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 8, 3, padding=1),
        nn.ReLU(inplace=True), nn.MaxPool2d(2), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(32, 16), nn.ReLU(), nn.Linear(16, 3),
    ).eval()


def test_delta_zero_equals_guided_backprop_of_grad_cam() -> None:
    from pytorch_grad_cam import GuidedBackpropReLUModel

    model = _relu_cnn()
    x = torch.rand(1, 3, 16, 12)
    theirs = GuidedBackpropReLUModel(copy.deepcopy(model), device="cpu")(x.clone(), 2)
    xi = x.clone().requires_grad_()
    with fgbp(model, delta=0.0):
        ours = torch.autograd.grad(model(xi)[0, 2], xi)[0][0].permute(1, 2, 0).numpy()
    assert np.abs(theirs).max() > 0
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-7)
    # with delta = 50 strictly fewer input pixels receive gradient than with guided backprop
    with fgbp(model, delta=50.0):
        xi = x.clone().requires_grad_()
        filtered = torch.autograd.grad(model(xi)[0, 2], xi)[0]
    assert 0 < int((filtered != 0).sum()) < int((ours != 0).sum())


class Functional(nn.Module):
    def __init__(self, with_module: bool) -> None:
        super().__init__()
        self.fc = nn.Linear(3, 3)
        self.act = nn.ReLU() if with_module else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.act(self.fc(x)))


def test_functional_activation_is_an_error_not_a_silent_pass() -> None:
    with pytest.raises(RacamError, match="no nn.ReLU"):
        with fgbp(Functional(with_module=False)):
            pass
    model = Functional(with_module=True)
    with fgbp(model):
        with pytest.raises(RacamError, match="relu"):
            model(torch.ones(2, 3))
        with torch.no_grad():  # no gradient can flow: allowed
            model(torch.ones(2, 3))
    assert torch._C._len_torch_function_stack() == 0
    assert not model._forward_hooks and not model._forward_pre_hooks


def test_nested_fgbp_is_refused() -> None:
    model = Tiny(nn.ReLU(), W2)
    with fgbp(model):
        with pytest.raises(RacamError, match="already active"):
            with fgbp(model):
                pass
    with fgbp(model):  # usable again after exit
        pass


@pytest.mark.parametrize("delta", [0.0, 50.0, 100.0])
def test_head_scope_by_hand(delta: float) -> None:
    """A (B, N) activation: head="sample" filters over the N units of a sample (today's rule),
    head="unit" makes every unit its own map, so each positive gradient passes (any delta)."""
    model = Tiny(nn.ReLU(), W2)
    x = [1.0, 1.0, 2.0, 3.0]
    sample = {0.0: [4.0, 1.0, 2.0, 0.0], 50.0: [4.0, 0.0, 2.0, 0.0], 100.0: [4.0, 0.0, 0.0, 0.0]}
    xi = torch.tensor([x], requires_grad=True)
    with fgbp(model, delta=delta, head="unit"):
        unit = torch.autograd.grad(model(xi).sum(), xi)[0][0].tolist()
    assert unit == [4.0, 1.0, 2.0, 0.0]
    with fgbp(model, delta=delta, head="sample"):
        got = torch.autograd.grad(model(xi).sum(), xi)[0][0].tolist()
    assert got == sample[delta] == _input_grad(model, x, delta)  # "sample" is the default


class ConvHead(nn.Module):
    """conv -> ReLU -> flatten -> linear -> ReLU -> linear: FGBP per channel in the conv part,
    per the head scope in the fully connected part."""

    def __init__(self) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(11)
        self.conv = nn.Conv2d(1, 2, 3, padding=1)
        self.act1 = nn.ReLU()
        self.fc1 = nn.Linear(2 * 4 * 4, 6)
        self.act2 = nn.ReLU()
        self.fc2 = nn.Linear(6, 1)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act2(self.fc1(self.act1(self.conv(x)).flatten(1))))


def _keep_top(g: torch.Tensor, delta: float) -> torch.Tensor:
    """1[g >= t] g on one map (a 1-D tensor), t = torch.quantile of its positive values."""
    pos = g[g > 0]
    if not pos.numel():
        return torch.zeros_like(g)
    t = torch.quantile(pos.double(), delta / 100).to(g.dtype)
    return torch.where(g >= t, g, torch.zeros_like(g))


@pytest.mark.parametrize("head", ["sample", "unit"])
def test_head_scope_in_a_conv_net_by_hand(head: str) -> None:
    model = ConvHead().eval()
    x = torch.randn(3, 1, 4, 4, generator=torch.Generator().manual_seed(2))
    delta = 50.0
    with torch.no_grad():  # explicit chain rule
        z1 = model.conv(x)
        h1 = z1.clamp_min(0).flatten(1)
        z2 = model.fc1(h1)
        v = model.fc2.weight[0].expand(3, 6)                         # dy/d act2 output
        if head == "sample":
            f2 = torch.stack([_keep_top(v[b], delta) for b in range(3)])
        else:
            f2 = v.clamp_min(0)                                      # one-value maps
        gz2 = (z2 > 0).float() * f2
        gh1 = (gz2 @ model.fc1.weight).view(3, 2, 4, 4)             # dy/d act1 output
        f1 = torch.stack([torch.stack([_keep_top(gh1[b, c].flatten(), delta).view(4, 4)
                                       for c in range(2)]) for b in range(3)])
        gz1 = (z1 > 0).float() * f1
        want = torch.nn.grad.conv2d_input(x.shape, model.conv.weight, gz1, padding=1)
    xi = x.clone().requires_grad_()
    with fgbp(model, delta=delta, head=head):
        got = torch.autograd.grad(model(xi).sum(), xi)[0]
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    assert float(want.abs().max()) > 0


def test_head_scopes_differ_and_bad_head_is_refused() -> None:
    from racam.errors import ConfigError

    model = ConvHead().eval()
    x = torch.randn(2, 1, 4, 4, generator=torch.Generator().manual_seed(4))
    out = {}
    for head in ("sample", "unit"):
        xi = x.clone().requires_grad_()
        with fgbp(model, delta=60.0, head=head):
            out[head] = torch.autograd.grad(model(xi).sum(), xi)[0]
    assert not torch.allclose(out["sample"], out["unit"])
    with pytest.raises(ConfigError, match="head"):
        with fgbp(model, head="channel"):
            pass
