"""The heat-map engine's contract: outputs, targets, layers, model left untouched, edge cases."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from helpers import tiny_vgg
from torch import nn

import racam.cam.suffix as suffix_mod
from racam.cam import (
    METHODS,
    RACAM,
    AblationCAM,
    FullGrad,
    GradCAM,
    LayerCAM,
    ScoreCAM,
    build_cam,
    normalize_maps,
    stage_layers,
    vgg16_stage_layers,
)
from racam.errors import ConfigError, RacamError
from racam.models.vgg import VGG16_STAGES, VGG16LeakyReLU

SIZE = (64, 32)


def _vgg(seed: int = 0) -> VGG16LeakyReLU:
    return tiny_vgg(seed)


@pytest.fixture(scope="module")
def vgg() -> VGG16LeakyReLU:
    return _vgg()


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return torch.rand(3, 3, *SIZE, generator=torch.Generator().manual_seed(2))


@pytest.mark.parametrize("name", METHODS)
def test_every_method_returns_unit_maps(name: str, vgg: nn.Module, images: torch.Tensor) -> None:
    cam = build_cam(name, vgg)
    maps = cam(images, targets=1)
    assert maps.shape == (3, *SIZE) and maps.dtype == torch.float32
    assert maps.device == images.device
    assert torch.isfinite(maps).all() and maps.min() == 0 and maps.max() == 1
    multi = name.split("+")[0] in ("layercam", "racam")
    if name.startswith("fullgrad"):
        assert len(cam.layer_maps) == 1 + 13  # input term + 13 conv biases
    else:
        assert len(cam.layer_maps) == (5 if multi else 1)
    for m in cam.layer_maps:
        assert m.shape == (3, *SIZE)


def _snapshot(model: nn.Module) -> dict:
    return {
        "modules": [(n, id(m), type(m)) for n, m in model.named_modules()],
        "training": [m.training for m in model.modules()],
        "inplace": [getattr(m, "inplace", None) for m in model.modules()],
        "requires_grad": [p.requires_grad for p in model.parameters()],
        "grad": [None if p.grad is None else p.grad.clone() for p in model.parameters()],
        "state": {k: v.clone() for k, v in model.state_dict().items()},
        "hooks": [len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
                  for m in model.modules()],
    }


def test_model_is_left_exactly_as_it_was(images: torch.Tensor) -> None:
    model = _vgg()
    model.train()                        # dropout active: CAMs must still be deterministic
    model.features[1].inplace = True     # an in-place activation before S1
    model.classifier[0].weight.requires_grad_(False)
    model.features[0].weight.grad = torch.full_like(model.features[0].weight, 3.0)
    before = _snapshot(model)
    eval_copy = copy.deepcopy(model).eval()
    for name in METHODS:
        got = build_cam(name, model)(images, 0)
        ref = build_cam(name, eval_copy)(images, 0)
        torch.testing.assert_close(got, ref, atol=1e-5, rtol=0)
    after = _snapshot(model)
    for key in ("modules", "training", "inplace", "requires_grad", "hooks"):
        assert after[key] == before[key], key
    for a, b in zip(after["grad"], before["grad"]):
        assert (a is None and b is None) or torch.equal(a, b)
    for k in before["state"]:
        assert torch.equal(after["state"][k], before["state"][k])
    assert torch._C._len_torch_function_stack() == 0 and torch.is_grad_enabled()


def test_targets(vgg: nn.Module, images: torch.Tensor) -> None:
    cam = GradCAM(vgg)
    with torch.no_grad():
        argmax = vgg(images).argmax(dim=1).tolist()
    torch.testing.assert_close(cam(images), cam(images, argmax))
    torch.testing.assert_close(cam(images, 1), cam(images, [1, 1, 1]))
    torch.testing.assert_close(cam(images, torch.tensor([0, 1, 0])), cam(images, [0, 1, 0]))
    with pytest.raises(RacamError, match="3 images"):
        cam(images, [0, 1])
    with pytest.raises(RacamError, match="class index"):
        cam(images, 2)
    with pytest.raises(RacamError, match="shape"):
        cam(images[0])


def test_constant_maps_give_zeros_not_nan(images: torch.Tensor) -> None:
    model = _vgg()
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, nn.Conv2d):
                mod.weight.zero_()
                mod.bias.zero_()
    for name in METHODS:
        maps = build_cam(name, model)(images, 1)
        assert torch.equal(maps, torch.zeros_like(maps)), name
    assert torch.equal(normalize_maps(torch.full((2, 3, 4), 7.0)), torch.zeros(2, 3, 4))


def test_layers_by_module_path_and_alias(vgg: nn.Module, images: torch.Tensor) -> None:
    by_alias = LayerCAM(vgg, ["S2", "S4"])
    assert by_alias.target_layer_names == [VGG16_STAGES["S2"], VGG16_STAGES["S4"]]
    by_module = LayerCAM(vgg, [vgg.features[8], vgg.features[22]])
    torch.testing.assert_close(by_alias(images, 1), by_module(images, 1))
    assert vgg16_stage_layers(vgg) == [dict(vgg.named_modules())[p] for p in VGG16_STAGES.values()]
    assert stage_layers(vgg) == list(VGG16_STAGES.values())  # generic finder agrees
    from torchvision.models import vgg16
    tv = vgg16(weights=None)
    assert stage_layers(tv, torch.zeros(1, 3, 64, 64)) == list(VGG16_STAGES.values())
    with pytest.raises(ConfigError, match="no layer 'features.99'"):
        GradCAM(vgg, ["features.99"])
    with pytest.raises(ConfigError, match="repeat"):
        GradCAM(vgg, ["S5", "features.29"])
    with pytest.raises(ConfigError, match="not a module"):
        GradCAM(vgg, [nn.ReLU()])


class ConvNet(nn.Module):
    """conv -> (in-place) ReLU twice, a skip connection around the second block."""

    def __init__(self, inplace: bool) -> None:
        super().__init__()
        torch.manual_seed(5)
        self.conv1 = nn.Conv2d(3, 6, 3, padding=1)
        self.relu1 = nn.ReLU(inplace=inplace)
        self.conv2 = nn.Conv2d(6, 6, 3, padding=1)
        self.relu2 = nn.ReLU(inplace=inplace)
        self.head = nn.Linear(6, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.relu1(self.conv1(x))
        b = self.relu2(self.conv2(a)) + a
        return self.head(b.mean(dim=(2, 3)))


def test_target_output_modified_in_place_is_handled(images: torch.Tensor) -> None:
    x = images[:, :, :16, :16]
    ref_net, net = ConvNet(inplace=False).eval(), ConvNet(inplace=True).eval()
    for cls, layers in ((GradCAM, ["conv1"]), (LayerCAM, ["conv1", "conv2"]),
                        (RACAM, ["conv1", "conv2"])):
        torch.testing.assert_close(cls(net, layers)(x, 1), cls(ref_net, layers)(x, 1))
    torch.testing.assert_close(FullGrad(net)(x, 2), FullGrad(ref_net)(x, 2))


def test_ablation_suffix_equals_full_model_fallback(monkeypatch: pytest.MonkeyPatch,
                                                    vgg: nn.Module,
                                                    images: torch.Tensor) -> None:
    net = ConvNet(inplace=False).eval()
    x = images[:, :, :16, :16]
    for model, layer in ((vgg, "S5"), (vgg, "S3"), (net, "relu1")):  # relu1 feeds a skip
        traced = AblationCAM(model, [layer], batch_size=5)
        got = traced(x if model is net else images, 1)
        assert traced.last_traced
        with monkeypatch.context() as mp:
            mp.setattr(suffix_mod, "trace_suffix", lambda *a: None)
            fallback = AblationCAM(model, [layer], batch_size=64)
            ref = fallback(x if model is net else images, 1)
            assert not fallback.last_traced
        # Batches of 5 and 64 ablated copies run different oneDNN kernels: float32 sums are
        # reassociated (measured up to 1.7e-5 on maps normalised to [0, 1]).
        torch.testing.assert_close(got, ref, atol=1e-4, rtol=0)


def test_ablation_weights_keep_sign_for_negative_logits(images: torch.Tensor) -> None:
    vgg, cls = _vgg(), 1
    with torch.no_grad():
        vgg.classifier[6].bias[cls] -= 1.0
        logits = vgg(images)
    assert bool((logits[:, cls] < 0).all()), "test needs negative target logits"
    s5 = vgg.features[29]
    acts = {}
    h = s5.register_forward_hook(lambda m, a, o: acts.setdefault("a", o))
    with torch.no_grad():
        vgg(images)
    h.remove()
    a = acts["a"]
    y = logits[:, cls]
    weights = torch.zeros(a.shape[:2])
    for k in range(a.shape[1]):  # ablate channel k by hand
        def zero_k(m: nn.Module, args: object, out: torch.Tensor, k: int = k) -> torch.Tensor:
            out = out.clone()
            out[:, k] = 0
            return out
        h = s5.register_forward_hook(zero_k)
        with torch.no_grad():
            yk = vgg(images)[:, cls]
        h.remove()
        weights[:, k] = (y - yk) / y.abs()
    raw = (weights[:, :, None, None] * a).sum(1).clamp_min(0)
    expected = normalize_maps(F.interpolate(raw[:, None], size=SIZE, mode="bilinear",
                                            align_corners=False)[:, 0])
    got = AblationCAM(vgg)(images, cls)
    # the batched ablation sums in another order than this loop: 1.4e-5 apart on an AVX2 CPU
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=0)
    # dividing by y instead (grad-cam's rule) flips every weight and gives another map
    flipped = (-weights[:, :, None, None] * a).sum(1).clamp_min(0)
    flipped = normalize_maps(F.interpolate(flipped[:, None], size=SIZE, mode="bilinear",
                                           align_corners=False)[:, 0])
    assert float((flipped - got).abs().max()) > 0.5


def test_scorecam_batch_size_does_not_change_maps(vgg: nn.Module, images: torch.Tensor) -> None:
    torch.testing.assert_close(ScoreCAM(vgg, batch_size=1)(images, 1),
                               ScoreCAM(vgg, batch_size=64)(images, 1), atol=1e-6, rtol=0)


def test_registry_and_argument_errors(vgg: nn.Module) -> None:
    assert set(METHODS) >= {"gradcam", "gradcam++", "xgradcam", "ablationcam", "scorecam",
                            "layercam", "fullgrad", "racam", "layercam+fgbp", "fullgrad+fgbp"}
    assert "scorecam+fgbp" not in METHODS and "racam+fgbp" not in METHODS
    assert build_cam("LayerCAM+FGBP", vgg, delta=30).fgbp_delta == 30
    assert build_cam("racam", vgg, delta=20).delta == 20
    for bad, kw in (("gradcam-pp", {}), ("scorecam+fgbp", {}), ("gradcam", {"delta": 5}),
                    ("racam", {"fusion": "median"}), ("racam", {"delta": 150}),
                    ("gradcam", {"no_such_option": 1})):
        with pytest.raises(ConfigError):
            build_cam(bad, vgg, **kw)
    with pytest.raises(ConfigError, match="target_layers"):
        FullGrad(vgg, ["S5"])


class Shared(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)
        self.act = nn.ReLU()
        self.head = nn.Linear(3, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.act(self.conv(self.act(x))).mean(dim=(2, 3)))


class Functional(Shared):
    """Same layers as :class:`Shared`, plus a functional ``F.relu`` that no hook can see."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(F.relu(self.act(self.conv(x))).mean(dim=(2, 3)))


def test_model_errors(images: torch.Tensor) -> None:
    x = images[:, :, :8, :8]
    with pytest.raises(RacamError, match="more than once"):
        GradCAM(Shared(), ["act"])(x)
    unused = Shared()
    unused.spare = nn.Conv2d(3, 3, 1)  # never called by forward
    with pytest.raises(RacamError, match="did not run"):
        GradCAM(unused, ["spare"])(x)
    with pytest.raises(RacamError, match="relu"):  # FGBP cannot filter F.relu: no silent pass
        RACAM(Functional(), ["conv"])(x)
    assert GradCAM(Functional(), ["conv"])(x).shape == (3, 8, 8)  # fine without FGBP


@pytest.mark.parametrize("name", METHODS)
def test_each_images_map_does_not_depend_on_its_batch(name: str, vgg: nn.Module,
                                                       images: torch.Tensor) -> None:
    """The maps of a batch of 3 equal the maps of each image alone: racam.pseudo.tta splits
    enlarged batches into passes of fewer images and relies on this. A batch statistic would
    move maps in [0, 1] by far more than 1e-3; float rounding of the convolutions at another
    batch size moved XGrad-CAM's (sum(g A) / sum(A) on near-zero channels) by 5e-4."""
    cam = build_cam(name, vgg)
    whole = cam(images, targets=1)
    alone = torch.cat([cam(images[i:i + 1], targets=1) for i in range(len(images))])
    torch.testing.assert_close(whole, alone, rtol=0, atol=1e-3)
