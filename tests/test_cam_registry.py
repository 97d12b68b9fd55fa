"""The method registry is built from the classes, and a new method is one file: the worked
example of ``docs/adding-a-method.md`` (Eigen-CAM) is defined at test time from that page and
checked everywhere the registry is read."""

from __future__ import annotations

import re
import types
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import tiny_vgg

from racam.cam import STAGES, BaseCAM, GradCAM, build_cam, registry
from racam.errors import ConfigError

DOC = Path(__file__).resolve().parents[1] / "docs" / "adding-a-method.md"


@pytest.fixture
def scratch_registry() -> Iterator[None]:
    """Classes defined in the test are registered for the test only, dropped afterwards."""
    with registry.CLASSES.scratch():
        yield


def _doc_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)


@pytest.fixture
def eigencam(scratch_registry: None) -> type[BaseCAM]:
    """The file of the worked example, run as the module ``racam.cam.eigencam``."""
    module = types.ModuleType("racam.cam.eigencam")
    exec(compile(_doc_blocks()[0], "racam/cam/eigencam.py", "exec"), module.__dict__)
    return module.EigenCAM


def test_builtin_methods_declare_what_the_pipeline_used_to_hard_code() -> None:
    spec = registry.get_method
    assert {n for n in registry.method_names(variants=False)} == {
        "gradcam", "gradcam++", "xgradcam", "ablationcam", "scorecam", "layercam", "fullgrad",
        "racam"}
    for n in ("gradcam", "gradcam++", "xgradcam", "ablationcam", "scorecam"):
        assert spec(n).default_layers == ("S5",) and not spec(n).multi_layer
    for n in ("layercam", "racam"):
        assert spec(n).default_layers == STAGES and spec(n).multi_layer
    assert spec("fullgrad").default_layers == ()
    assert [n for n in registry.method_names() if spec(n).uses_delta] == [
        "racam", "fullgrad+fgbp", "gradcam+fgbp", "gradcam+++fgbp", "layercam+fgbp",
        "xgradcam+fgbp"]
    assert not spec("scorecam").uses_gradients and not spec("ablationcam").uses_gradients
    assert spec("LayerCAM+FGBP").display_name == "LayerCAM+FGBP"
    assert registry.cam_options("gradcam", delta=50, fusion="max") == {}
    assert registry.cam_options("racam", delta=30, fusion="mean") == {"delta": 30,
                                                                       "fusion": "mean"}
    assert registry.cam_options("fullgrad+fgbp", delta=30, fusion="mean") == {"delta": 30}


def test_report_names_are_the_classes_display_names() -> None:
    from racam.report.names import DISPLAY

    assert {k: DISPLAY[k] for k in ("gradcam", "gradcam++", "xgradcam", "ablationcam",
                                    "scorecam", "layercam", "fullgrad", "racam",
                                    "layercam+fgbp", "fullgrad+fgbp", "gradcam+fgbp", "unet",
                                    "deeplabv3", "deeplabv3plus")} == {
        "gradcam": "Grad-CAM", "gradcam++": "Grad-CAM++", "xgradcam": "XGrad-CAM",
        "ablationcam": "Ablation-CAM", "scorecam": "Score-CAM", "layercam": "LayerCAM",
        "fullgrad": "FullGrad", "racam": "RA-CAM", "layercam+fgbp": "LayerCAM+FGBP",
        "fullgrad+fgbp": "FullGrad+FGBP", "gradcam+fgbp": "Grad-CAM+FGBP", "unet": "UNet",
        "deeplabv3": "DeepLabV3", "deeplabv3plus": "DeepLabV3+"}
    assert DISPLAY.get("nosuch", "nosuch") == "nosuch"


def test_a_taken_name_is_refused(scratch_registry: None) -> None:
    with pytest.raises(ConfigError, match="taken"):
        type("Other", (GradCAM,), {"name": "gradcam"})
    with pytest.raises(ConfigError, match="fgbp"):
        type("Bad", (GradCAM,), {"name": "mine+fgbp"})
    type("Mine", (GradCAM,), {"name": "mine", "__module__": __name__})
    assert "mine" in registry.METHODS and "mine+fgbp" in registry.METHODS


def test_the_worked_example_is_one_file_and_one_line(eigencam: type[BaseCAM]) -> None:
    from racam.cam.registry import method_key

    blocks = _doc_blocks()
    assert blocks[1].strip() == "from racam.cam.eigencam import EigenCAM as EigenCAM"
    names = registry.method_names()
    assert "eigencam" in names and "eigencam+fgbp" not in names  # no gradients, no variant
    assert "eigencam" in registry.METHODS
    spec = registry.get_method("EigenCAM")
    assert spec.cls is eigencam and spec.default_layers == ("S5",) and not spec.uses_delta
    assert registry.display_name("eigencam") == "Eigen-CAM"
    assert method_key("eigencam", 50) == "eigencam"
    with pytest.raises(ConfigError, match="delta"):
        build_cam("eigencam", tiny_vgg(), delta=50)

    model = tiny_vgg()
    x = torch.rand(2, 3, 64, 32, generator=torch.Generator().manual_seed(0))
    cam = build_cam("eigencam", model)
    maps = cam(x, 1)
    assert cam.target_layer_names == ["features.29"]  # S5 of the VGG16 layout
    assert maps.shape == (2, 64, 32) and maps.min() == 0 and maps.max() == 1


def test_the_worked_example_matches_grad_cams_projection(eigencam: type[BaseCAM]) -> None:
    svd = pytest.importorskip("pytorch_grad_cam.utils.svd_on_activations")
    a = torch.randn(3, 8, 5, 4, generator=torch.Generator().manual_seed(0))
    ours = eigencam._projection(a).numpy()
    theirs = svd.get_2d_projection(a.numpy())
    for o, t in zip(ours, theirs):  # a singular vector's sign is arbitrary
        sign = np.sign((o * t).sum())
        np.testing.assert_allclose(o, sign * t, atol=1e-5)


def test_the_cli_help_lists_a_method_defined_later(eigencam: type[BaseCAM]) -> None:
    from typer.testing import CliRunner

    from racam.cli import app

    for command in ("cam", "evaluate"):
        out = CliRunner().invoke(app, [command, "--help"], terminal_width=200).output
        assert "eigencam" in out and "layercam+fgbp" in out and "{methods}" not in out


def test_weighting_and_fgbp_head_go_only_where_they_apply() -> None:
    co = registry.cam_options
    both = {"weighting": "channel", "fgbp_head": "unit"}
    assert registry.get_method("racam").options == ("weighting",)
    assert co("racam", delta=30, **both) == {"delta": 30, **both}
    assert co("layercam+fgbp", delta=30, **both) == {"delta": 30, "fgbp_head": "unit"}
    assert co("fullgrad+fgbp", **both) == {"fgbp_head": "unit"}
    for plain in ("layercam", "gradcam", "scorecam", "fullgrad"):
        assert co(plain, **both) == {}, plain
    assert [n for n in registry.method_names() if registry.get_method(n).uses_fgbp] == [
        n for n in registry.method_names() if registry.get_method(n).uses_delta]


def test_fgbp_head_reaches_the_backward_pass_of_a_plugin() -> None:
    """``build_cam("layercam+fgbp", fgbp_head=...)`` equals plain LayerCAM run inside
    ``fgbp(model, head=...)``, and the two head scopes give different maps on a VGG16."""
    from racam.cam import LayerCAM, fgbp

    model = tiny_vgg(seed=4)
    x = torch.rand(2, 3, 64, 32, generator=torch.Generator().manual_seed(0))
    maps = {}
    for head in ("sample", "unit"):
        with fgbp(model, delta=70.0, head=head):
            want = LayerCAM(model, ["S4", "S5"])(x, 1)
        cam = build_cam("layercam+fgbp", model, ["S4", "S5"], delta=70.0, fgbp_head=head)
        assert cam.fgbp_head == head
        maps[head] = cam(x, 1)
        torch.testing.assert_close(maps[head], want, atol=1e-6, rtol=0)
    assert float((maps["sample"] - maps["unit"]).abs().max()) > 1e-3
    racam = build_cam("racam", model, ["S5"], delta=70.0, fgbp_head="unit", weighting="channel")
    assert (racam.fgbp_head, racam.weighting) == ("unit", "channel")
