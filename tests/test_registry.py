"""One registry idiom (racam.registry) for heat-map methods, classifier backbones, segmentation
networks and datasets: what each lists, the one-line error for an unknown name (exit 2 from the
CLI), an entry registered here is built by the factory and shown by ``racam list``, config
checks and CLI help."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
from helpers import TINY_CFG, racam
from torch import nn
from typer.testing import CliRunner

from racam import catalog
from racam.cam import build_cam
from racam.cam import registry as cam_registry
from racam.cli import app
from racam.config import load_config
from racam.data.registry import DATASETS
from racam.errors import ConfigError
from racam.models.networks import NETWORKS, Network
from racam.models.registry import BACKBONES, ClassifierArgs, build_classifier, register_backbone
from racam.registry import NamesView, Registry
from racam.segmentation.networks import ARCHS, build_segmentation

# ---------------------------------------------------------------- the generic registry


def test_registry_adds_gets_lists_and_refuses_a_taken_name() -> None:
    reg: Registry[int] = Registry("colour", normalise=lambda n: n.strip().lower())
    assert reg.add("red", 1) == 1 and reg.add("blue", 2) == 2
    assert reg.names() == ["red", "blue"] and list(reg) == ["red", "blue"] and len(reg) == 2
    assert reg.get(" Red ") == 1 and "BLUE" in reg and "green" not in reg
    assert reg.find("green") is None
    with pytest.raises(ConfigError) as err:
        reg.get("green")
    assert str(err.value) == "unknown colour 'green'; choose one of red, blue"
    with pytest.raises(ConfigError, match="colour name 'red' is already registered"):
        reg.add("red", 3)
    with pytest.raises(ConfigError, match="not a valid registry name"):
        reg.add("Green", 3)  # would never be found: names are looked up lower-case
    assert reg.get("red") == 1


def test_a_function_defined_again_is_accepted_another_is_refused() -> None:
    reg: Registry[object] = Registry("builder")

    def make() -> int:
        return 1
    first = make
    reg.register("make")(first)

    def make() -> int:  # the same definition run again (a module reloaded)
        return 2
    reg.register("make")(make)
    assert reg.get("make") is make

    def other() -> int:
        return 3
    with pytest.raises(ConfigError, match=r"builder name 'make' is already registered: taken "
                                          r"by test_registry\..*make"):
        reg.add("make", other)


def test_scratch_drops_what_was_added_and_views_are_live() -> None:
    reg: Registry[int] = Registry("number")
    reg.add("one", 1)
    view = reg.view()
    assert isinstance(view, NamesView) and list(view) == ["one"]
    with reg.scratch():
        reg.add("two", 2)
        assert list(view) == ["one", "two"] and "two" in view and view[1] == "two"
    assert reg.names() == ["one"] and len(view) == 1


# ---------------------------------------------------------------- the four registries


def test_each_registry_lists_what_is_registered() -> None:
    assert BACKBONES.names() == ["vgg16", "vgg16_narrow", "efficientnet_lite0",
                                 "efficientnet_lite1", "efficientnet_lite2"]
    assert NETWORKS.names() == ["deeplabv3", "deeplabv3plus", "unet"] == list(ARCHS)
    assert DATASETS.names()[:3] == ["ksdd", "ksdd2", "folder"]
    assert cam_registry.CLASSES.names() == ["ablationcam", "fullgrad", "gradcam", "gradcam++",
                                            "layercam", "racam", "scorecam", "xgradcam"]
    assert catalog.names("methods") == cam_registry.method_names()
    assert "layercam+fgbp" in catalog.names("methods")
    for kind, reg in (("backbones", BACKBONES), ("networks", NETWORKS),
                      ("datasets", DATASETS)):
        assert catalog.names(kind) == reg.names()
        assert [r.name for r in catalog.listing(kind)] == reg.names()
        assert all(r.summary for r in catalog.listing(kind)), kind
    racam_row = next(r for r in catalog.listing("methods") if r.name == "racam")
    assert racam_row.summary.startswith("RA-CAM: layers S1-S5 fused, gradients under FGBP")


@pytest.mark.parametrize(("lookup", "message"), [
    (lambda: build_classifier("resnet9"),
     "unknown classifier backbone 'resnet9'; choose one of vgg16, vgg16_narrow, "
     "efficientnet_lite0, efficientnet_lite1, efficientnet_lite2"),
    (lambda: build_segmentation("fcn"),
     "unknown segmentation arch 'fcn'; choose one of deeplabv3, deeplabv3plus, unet"),
    (lambda: DATASETS.get("mnist"), "unknown dataset 'mnist'; choose one of ksdd, ksdd2, folder"),
    (lambda: cam_registry.get_method("eigen"), "unknown heat-map method 'eigen'; choose one of "
     "ablationcam, fullgrad, gradcam, gradcam++, layercam, racam, scorecam, xgradcam, "
     "fullgrad+fgbp, gradcam+fgbp, gradcam+++fgbp, layercam+fgbp, xgradcam+fgbp"),
    (lambda: catalog.listing("models"),
     "unknown racam list kind 'models'; choose one of methods, backbones, networks, datasets"),
])
def test_an_unknown_name_is_one_line_naming_it_and_the_choices(lookup, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        lookup()
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


@pytest.mark.parametrize(("key", "value", "message"), [
    ("classifier.backbone", "resnet9", "error: classifier.backbone: unknown backbone 'resnet9'; "
     "choose one of vgg16, vgg16_narrow, efficientnet_lite0, efficientnet_lite1, "
     "efficientnet_lite2"),
    ("segmentation.arch", "fcn", "error: segmentation.arch: unknown arch 'fcn'; choose one of "
     "deeplabv3, deeplabv3plus, unet"),
    ("data.dataset", "mnist", "error: data.dataset: unknown dataset 'mnist'; choose one of ksdd, "
     "ksdd2, folder"),
])
def test_the_cli_refuses_an_unknown_name_in_one_line_exit_2(tmp_path, key: str, value: str,
                                                              message: str) -> None:
    out = tmp_path / "out"
    code, _, err = racam("run", TINY_CFG, "--quiet", "--out", str(out), "--set", f"{key}={value}")
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith(message), err
    assert not out.exists()
    code, _, err = racam("list", "models")
    assert code == 2 and err.strip().splitlines() == [
        "error: unknown racam list kind 'models'; choose one of methods, backbones, networks, "
        "datasets"]


# ---------------------------------------------------------------- entries registered here


class TinyNet(nn.Module):
    """Two conv stages and a linear head; ``stages`` names the heat maps' stage layers."""

    stages = {"S4": "body.1", "S5": "body.3"}

    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(in_channels, 4, 3, padding=1), nn.ReLU(),
                                  nn.Conv2d(4, 8, 3, padding=1), nn.ReLU())
        self.head = nn.Linear(8, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x).mean(dim=(2, 3)))


@pytest.fixture
def tiny_backbone() -> Iterator[list[ClassifierArgs]]:
    seen: list[ClassifierArgs] = []
    with BACKBONES.scratch():
        @register_backbone("tinynet", "two conv stages (a test entry)", uses_width=True)
        def tinynet(args: ClassifierArgs) -> nn.Module:
            seen.append(args)
            return TinyNet(args.in_channels, args.num_classes)
        yield seen
    assert "tinynet" not in BACKBONES


def test_a_backbone_registered_here_is_built_checked_and_listed(tiny_backbone) -> None:
    from racam.models.registry import effective_width

    torch.manual_seed(0)
    model = build_classifier("tinynet", num_classes=2, in_channels=3, width=2)
    assert isinstance(model, TinyNet)
    assert tiny_backbone == [ClassifierArgs(num_classes=2, in_channels=3, width=2)]
    assert all(not getattr(m, "inplace", False) for m in model.modules())  # hooks need that
    assert effective_width("tinynet", 2) == 2 and effective_width("efficientnet_lite0", 2) == 1
    x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    maps = build_cam("gradcam", model)(x, 1)  # default layer S5 from the model's stages
    assert maps.shape == (2, 16, 16) and float(maps.max()) == 1.0
    with pytest.raises(ConfigError, match="batch_norm applies to the vgg16, vgg16_narrow "
                                          "backbones, not 'tinynet'"):
        build_classifier("tinynet", batch_norm=True)
    cfg = load_config(TINY_CFG, {"classifier.backbone": "tinynet", "classifier.batch_norm": False})
    assert cfg.classifier.backbone == "tinynet"
    assert "tinynet" in catalog.names("backbones")
    out = CliRunner().invoke(app, ["list", "backbones"]).output
    assert "  tinynet             two conv stages (a test entry)" in out.splitlines()
    help_text = CliRunner().invoke(app, ["cam", "--help"], env={"COLUMNS": "300"}).output
    assert "tinynet" in help_text and "{backbones}" not in help_text


def test_a_network_registered_here_is_built_checked_and_listed() -> None:
    with NETWORKS.scratch():
        NETWORKS.add("fpn", Network("fpn", "fpn", "FPN (a test entry)"))
        torch.manual_seed(0)
        model = build_segmentation("fpn", "resnet18", in_channels=1).eval()
        assert type(model).__name__ == "FPN"
        with torch.no_grad():
            assert model(torch.rand(1, 1, 64, 64)).shape == (1, 2, 64, 64)
        with pytest.raises(ConfigError, match="output_stride applies to deeplabv3, "
                                              "deeplabv3plus, not 'fpn'"):
            build_segmentation("fpn", output_stride=8)
        cfg = load_config(TINY_CFG, {"segmentation.arch": "fpn",
                                   "reproduce.supervised_archs": ["fpn", "unet"]})
        assert cfg.segmentation.arch == "fpn" and "fpn" in ARCHS
        out = CliRunner().invoke(app, ["list", "networks"]).output
        assert out.splitlines()[-1] == "  fpn            FPN (a test entry)"
        help_text = CliRunner().invoke(app, ["train-seg", "--help"],
                                       env={"COLUMNS": "300"}).output
        assert "deeplabv3, deeplabv3plus, unet, fpn" in help_text
    assert "fpn" not in ARCHS


def test_a_method_and_a_dataset_registered_here_are_listed() -> None:
    from racam.cam import GradCAM
    from racam.data.spec import DatasetSpec

    class MineSpec(DatasetSpec):
        name = "mine"
        description = "a dataset made up here"

    with cam_registry.CLASSES.scratch(), DATASETS.scratch():
        type("MineCAM", (GradCAM,), {"name": "minecam", "display_name": "Mine-CAM",
                                     "__module__": __name__})
        DATASETS.add("mine", MineSpec())
        methods = CliRunner().invoke(app, ["list", "methods"]).output.splitlines()
        assert "  minecam         Mine-CAM: layer S5, gradients" in methods
        assert "  minecam+fgbp    Mine-CAM+FGBP: layer S5, gradients under FGBP (delta)" in methods
        data = CliRunner().invoke(app, ["list", "datasets"]).output.splitlines()
        assert data[-1] == "  mine    a dataset made up here"
        cfg = load_config(TINY_CFG, {"data.dataset": "mine", "cam.method": "minecam+fgbp",
                                   "data.plan": "off"})
        assert (cfg.data.dataset, cfg.cam.method) == ("mine", "minecam+fgbp")
    assert "minecam" not in cam_registry.METHODS and "mine" not in DATASETS


# ---------------------------------------------------------------- racam list


def test_racam_list_prints_every_registry() -> None:
    out = CliRunner().invoke(app, ["list"]).output
    heads = [ln for ln in out.splitlines() if ln and not ln.startswith(" ")]
    assert heads == ["methods:", "backbones:", "networks:", "datasets:"]
    listed = {ln.split()[0] for ln in out.splitlines() if ln.startswith("  ")}
    assert listed == {*cam_registry.method_names(), *BACKBONES.names(), *NETWORKS.names(),
                      *DATASETS.names()}
    one = CliRunner().invoke(app, ["list", "methods"])
    assert one.exit_code == 0
    assert [ln.split()[0] for ln in one.output.splitlines()] == cam_registry.method_names()
    assert "  layercam+fgbp   LayerCAM+FGBP: layers S1-S5 fused, gradients under FGBP (delta)" \
        in one.output.splitlines()
    data = CliRunner().invoke(app, ["data", "info", "--help"], env={"COLUMNS": "300"}).output
    assert "ksdd, ksdd2, folder" in data and "{datasets}" not in data
