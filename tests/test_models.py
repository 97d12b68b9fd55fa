"""Classifier builders: shapes, CAM stage layers, ImageNet weight loading from local files."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage import data as skdata
from torch import nn
from torch.nn import functional as F

from racam.errors import CheckpointError, ConfigError
from racam.models import (
    BACKBONES,
    build_classifier,
    classifier_target_layers,
    lite0_weights_path,
)
from racam.models.registry import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    fold_normalisation_vgg,
    lite0_timm_state_dict,
    load_state_dict_file,
)


def _stage_outputs(model: nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    layers = classifier_target_layers(model)
    modules = dict(model.named_modules())
    out: dict[str, torch.Tensor] = {}
    handles = [modules[path].register_forward_hook(
        lambda m, i, o, name=name: out.__setitem__(name, o)) for name, path in layers.items()]
    with torch.no_grad():
        model(x)
    for h in handles:
        h.remove()
    return out


@pytest.mark.parametrize("backbone,width,reductions", [
    ("vgg16_narrow", 16, [1, 2, 4, 8, 16]),
    ("efficientnet_lite0", 1, [2, 4, 8, 16, 32]),
])
@pytest.mark.parametrize("in_channels", [1, 3])
def test_shapes_and_stage_layers(backbone: str, width: int, reductions: list[int],
                                 in_channels: int) -> None:
    model = build_classifier(backbone, in_channels=in_channels, width=width).eval()
    x = torch.rand(2, in_channels, 128, 64)
    assert model(x).shape == (2, 2)
    stages = _stage_outputs(model, x)
    assert list(stages) == ["S1", "S2", "S3", "S4", "S5"]
    for (name, feat), r in zip(stages.items(), reductions):
        assert feat.shape[-2:] == (128 // r, 64 // r), name
    if backbone == "vgg16_narrow":
        # last LeakyReLU before each max-pool
        modules = dict(model.named_modules())
        for path in classifier_target_layers(model).values():
            assert isinstance(modules[path], nn.LeakyReLU)
            assert isinstance(modules[_next_index(path)], nn.MaxPool2d)
        assert stages["S5"].shape[1] == 512 // width
    else:
        assert stages["S5"].shape[1] == 1280
        assert stages["S5"].min() >= 0 and stages["S5"].max() <= 6  # after ReLU6
    assert not any(getattr(m, "inplace", False) for m in model.modules())


def _next_index(path: str) -> str:
    head, idx = path.rsplit(".", 1)
    return f"{head}.{int(idx) + 1}"


def test_bad_arguments() -> None:
    with pytest.raises(ConfigError, match="unknown classifier backbone"):
        build_classifier("resnet9")
    with pytest.raises(ConfigError, match="width"):
        build_classifier("vgg16_narrow", width=4, weights="imagenet")
    with pytest.raises(ConfigError, match="in_channels"):
        build_classifier("vgg16_narrow", in_channels=2)
    with pytest.raises(ConfigError, match="no known CAM stage"):
        classifier_target_layers(nn.Linear(2, 2))
    assert set(BACKBONES) == {"vgg16", "vgg16_narrow", "efficientnet_lite0", "efficientnet_lite1",
                              "efficientnet_lite2"}


def test_missing_or_corrupt_weights_file(tmp_path) -> None:
    missing = tmp_path / "nope.pth"
    with pytest.raises(CheckpointError, match="nope.pth"):
        build_classifier("efficientnet_lite0", weights=str(missing))
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"this is not a torch file")
    with pytest.raises(CheckpointError, match="bad.pth"):
        build_classifier("efficientnet_lite0", weights=str(bad))


def _imagenet_input(img: np.ndarray, gray: bool = False) -> torch.Tensor:
    x = torch.from_numpy(img).permute(2, 0, 1).float().div(255)[None]
    x = F.interpolate(x, size=(224, 224), mode="bilinear", antialias=True, align_corners=False)
    return x.mean(dim=1, keepdim=True) if gray else x


def test_lite0_imagenet_weights_classify_natural_images() -> None:
    """The package's weights, mapped to timm names, recognise scikit-image's sample photos."""
    model = build_classifier("efficientnet_lite0", num_classes=1000, in_channels=3,
                             weights="imagenet").eval()
    with torch.no_grad():
        cat = model(_imagenet_input(skdata.chelsea())).argmax().item()
        coffee = model(_imagenet_input(skdata.coffee())).argmax().item()
    assert 281 <= cat <= 285  # tabby, tiger cat, Persian, Siamese, Egyptian cat
    assert coffee in {504, 967, 968}  # coffee mug, espresso, cup


def test_lite0_grayscale_equals_replicated_rgb() -> None:
    rgb = build_classifier("efficientnet_lite0", num_classes=1000, in_channels=3,
                           weights="imagenet").eval()
    gray = build_classifier("efficientnet_lite0", num_classes=1000, in_channels=1,
                            weights=str(lite0_weights_path())).eval()
    x = _imagenet_input(skdata.chelsea(), gray=True)
    with torch.no_grad():
        torch.testing.assert_close(gray(x), rgb(x.repeat(1, 3, 1, 1)), atol=1e-3, rtol=1e-4)
    two = build_classifier("efficientnet_lite0", weights="imagenet")
    assert two.classifier.weight.shape == (2, 1280)
    assert torch.equal(two.conv_head.weight, gray.conv_head.weight)


def test_lite0_key_mapping_is_complete() -> None:
    sd = lite0_timm_state_dict(load_state_dict_file(lite0_weights_path()))
    import timm

    ref = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    ref.load_state_dict(sd)  # strict: every key mapped, every shape right


def test_vgg_fold_of_imagenet_normalisation() -> None:
    """conv(W', x) + b' equals conv(W, (x - mean) / std) + b away from the padded border."""
    torch.manual_seed(1)
    w, b = torch.randn(4, 3, 3, 3), torch.randn(4)
    sd = fold_normalisation_vgg({"features.0.weight": w, "features.0.bias": b})
    x = torch.rand(1, 3, 12, 10)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    ref = F.conv2d((x - mean) / std, w, b, padding=1)
    got = F.conv2d(x, sd["features.0.weight"], sd["features.0.bias"], padding=1)
    torch.testing.assert_close(got[..., 1:-1, 1:-1], ref[..., 1:-1, 1:-1], atol=1e-4, rtol=1e-5)


def test_vgg16_loads_torchvision_layout_file(tmp_path) -> None:
    """Full-size VGG16 (138M parameters, once): a local torchvision state dict is loaded."""
    from torchvision.models import vgg16

    tv = vgg16()  # random weights, torchvision layout
    path = tmp_path / "vgg16.pth"
    torch.save(tv.state_dict(), path)
    model = build_classifier("vgg16", in_channels=1, width=4, weights=str(path))
    assert model.features[0].weight.shape == (64, 1, 3, 3)  # width ignored for "vgg16"
    assert model.classifier[6].weight.shape == (2, 4096)
    own = model.state_dict()
    for key, value in tv.state_dict().items():
        if key.startswith(("features.0.", "classifier.6.")):
            continue
        assert torch.equal(own[key], value), key
    x = torch.rand(1, 1, 16, 16)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    with torch.no_grad():
        ref = tv.features[0]((x.repeat(1, 3, 1, 1) - mean) / std)
        got = model.features[0](x)
    torch.testing.assert_close(got[..., 1:-1, 1:-1], ref[..., 1:-1, 1:-1], atol=1e-4,
                               rtol=1e-4)


def test_vgg16_batchnorm_stages_are_last_activations_before_pools() -> None:
    """The BatchNorm variant (CPU scale) names its own S1..S5; CAM helpers follow them."""
    from racam.cam import vgg16_stage_layers
    from racam.models import build_classifier, classifier_target_layers

    model = build_classifier("vgg16_narrow", width=16, batch_norm=True)
    mods = dict(model.named_modules())
    stages = classifier_target_layers(model)
    assert list(stages) == ["S1", "S2", "S3", "S4", "S5"]
    for path in stages.values():
        idx = int(path.split(".")[1])
        assert isinstance(mods[path], torch.nn.LeakyReLU)
        assert isinstance(mods[f"features.{idx - 1}"], torch.nn.BatchNorm2d)
        assert isinstance(mods[f"features.{idx + 1}"], torch.nn.MaxPool2d)
    assert vgg16_stage_layers(model) == [mods[p] for p in stages.values()]
