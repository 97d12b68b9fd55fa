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
