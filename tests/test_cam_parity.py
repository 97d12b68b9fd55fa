"""Numerical agreement with the grad-cam package (pytorch_grad_cam) on the same model and input.

Model: VGG16LeakyReLU(width=16), eval mode, 128 x 64 inputs, batch 2, random weights with
random biases. Both sides produce final [0, 1] maps; grad-cam resizes with OpenCV and scales
with a 1e-7 epsilon, racam resizes with torch (same bilinear sampling) and scales exactly, so
agreement is to float rounding: the stated tolerance is 1e-4 (absolute, on [0, 1] maps).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import tiny_vgg
from torch import nn

from racam.cam import (
    AblationCAM,
    FullGrad,
    GradCAM,
    GradCAMPlusPlus,
    LayerCAM,
    ScoreCAM,
    XGradCAM,
    fgbp,
)
from racam.models.vgg import VGG16LeakyReLU

pgc = pytest.importorskip("pytorch_grad_cam")
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget  # noqa: E402  # after importorskip

TOL = 1e-4


def _model(slope: float = 0.01) -> VGG16LeakyReLU:
    return tiny_vgg(0, slope, dropout=0.0)


@pytest.fixture(scope="module")
def model() -> VGG16LeakyReLU:
    return _model()


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return torch.rand(2, 3, 128, 64, generator=torch.Generator().manual_seed(1))


def _theirs(cls: type, model: nn.Module, layers: list, x: torch.Tensor, targets: list[int]
            ) -> np.ndarray:
    cam = cls(model=model, target_layers=layers)
    out = cam(input_tensor=x.clone(), targets=[ClassifierOutputTarget(t) for t in targets])
    cam.activations_and_grads.release()
    return out


CASES = [
    (GradCAM, "GradCAM", "features.29"),
    (GradCAMPlusPlus, "GradCAMPlusPlus", "features.29"),
    (XGradCAM, "XGradCAM", "features.29"),
    (LayerCAM, "LayerCAM", "features.29"),
    (LayerCAM, "LayerCAM", "features.15"),
    (ScoreCAM, "ScoreCAM", "features.29"),
]


@pytest.mark.parametrize(("ours", "theirs", "layer"), CASES)
def test_single_layer_methods(ours: type, theirs: str, layer: str, model: nn.Module,
                              images: torch.Tensor) -> None:
    module = dict(model.named_modules())[layer]
    targets = [1, 0]
    ref = _theirs(getattr(pgc, theirs), model, [module], images, targets)
    got = ours(model, [layer])(images, targets)
    assert got.shape == ref.shape == (2, 128, 64)
    assert float(np.abs(ref).max()) > 0.99
    np.testing.assert_allclose(got.numpy(), ref, atol=TOL, rtol=0)


def test_fullgrad(model: nn.Module, images: torch.Tensor) -> None:
    ref = _theirs(pgc.FullGrad, model, [], images, [1, 0])
    got = FullGrad(model)(images, [1, 0])
    np.testing.assert_allclose(got.numpy(), ref, atol=TOL, rtol=0)


def test_ablation_cam_with_positive_logits(images: torch.Tensor) -> None:
    # grad-cam ablates to 0 only when the layer's minimum is 0 (ReLU-like activations; with
    # negative activations it uses min - 1e7 per ablated channel) and divides by y, which flips
    # every weight when y < 0. On a slope-0 net with positive target logits both rules agree.
    relu_net = _model(slope=0.0)
    with torch.no_grad():
        logits = relu_net(images)
    target = int(logits.min(dim=0).values.argmax())
    assert bool((logits[:, target] > 0).all())
    ref = _theirs(pgc.AblationCAM, relu_net, [relu_net.features[29]], images, [target] * 2)
    cam = AblationCAM(relu_net, ["features.29"], batch_size=7)
    got = cam(images, target)
    assert cam.last_traced  # only the network after the layer ran on the ablations
    np.testing.assert_allclose(got.numpy(), ref, atol=TOL, rtol=0)


def test_layercam_fgbp_plugin_matches_grad_cam_inside_fgbp(model: nn.Module,
                                                           images: torch.Tensor) -> None:
    # The FGBP context is a plug-in for third-party code too: grad-cam's LayerCAM run inside
    # fgbp() equals racam's LayerCAM with fgbp_delta.
    module = model.features[22]
    with fgbp(model, delta=50):
        ref = _theirs(pgc.LayerCAM, model, [module], images, [1, 1])
    got = LayerCAM(model, [module], fgbp_delta=50)(images, 1)
    plain = LayerCAM(model, [module])(images, 1)
    np.testing.assert_allclose(got.numpy(), ref, atol=TOL, rtol=0)
    assert float((got - plain).abs().max()) > 0.05  # the filter changes the map
