"""Where FGBP's head scope matters: only on a ReLU-family activation of a fully connected
layer's output. VGG16 has two (its hidden head layers), EfficientNet-Lite0 none (one linear
layer after pooling), so on Lite0 both scopes give the same RA-CAM maps and ``racam
reproduce`` does not compute the second one."""

from __future__ import annotations

import torch
from torch import nn

from racam.cam import build_cam
from racam.cam.fgbp import head_activations
from racam.models import build_classifier, classifier_target_layers


def maps_by_head(model: nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    layers = list(classifier_target_layers(model).values())[-2:]
    return {h: build_cam("racam", model, layers, delta=70.0, fgbp_head=h)(x, 1)
            for h in ("sample", "unit")}


def hidden_linear_layers(model: nn.Module) -> int:
    """Linear layers that feed another layer (every linear layer but the last)."""
    return sum(isinstance(m, nn.Linear) for m in model.modules()) - 1


def test_vgg16_head_scopes_differ_and_its_hidden_head_layers_are_counted() -> None:
    torch.manual_seed(0)
    model = build_classifier("vgg16_narrow", width=8, in_channels=1).eval()
    x = torch.rand(2, 1, 64, 64, generator=torch.Generator().manual_seed(1))
    assert head_activations(model, x) == hidden_linear_layers(model) == 2
    maps = maps_by_head(model, x)
    assert float((maps["sample"] - maps["unit"]).abs().max()) > 1e-3


def test_lite0_has_no_head_activation_and_both_scopes_give_the_same_maps() -> None:
    torch.manual_seed(0)
    model = build_classifier("efficientnet_lite0", in_channels=1).eval()
    x = torch.rand(2, 1, 96, 64, generator=torch.Generator().manual_seed(1))
    assert hidden_linear_layers(model) == 0 and head_activations(model, x) == 0
    maps = maps_by_head(model, x)
    assert float(maps["sample"].abs().max()) > 0
    torch.testing.assert_close(maps["sample"], maps["unit"], atol=0, rtol=0)


def test_reproduction_skips_the_unit_scope_on_lite0_and_says_why() -> None:
    """:meth:`Reproduction.head_scopes` from the config's classifier architecture: Lite0 gets no
    second scope and a note; the narrow VGG16 keeps ``unit``."""
    from types import SimpleNamespace

    from racam.config import load_config
    from racam.paper.reproduce import Reproduction

    got = {}
    for backbone in ("efficientnet_lite0", "vgg16_narrow"):
        stub = SimpleNamespace(cfg=load_config("demo", {"classifier.backbone": backbone,
                                                        "classifier.width": 8}), notes={})
        got[backbone] = (Reproduction.head_scopes(stub, "sample"), stub.notes)
    scopes, notes = got["efficientnet_lite0"]
    assert scopes == [] and "`fgbp_head` unit not computed" in notes["fgbp_head"]
    assert got["vgg16_narrow"] == (["unit"], {})
