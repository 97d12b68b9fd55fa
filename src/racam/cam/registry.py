"""Build a heat-map method by name: ``build_cam("layercam+fgbp", model, delta=50)``."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from racam.cam.ablationcam import AblationCAM
from racam.cam.base import BaseCAM, GradientCAM
from racam.cam.fullgrad import FullGrad
from racam.cam.gradcam import GradCAM
from racam.cam.gradcam_pp import GradCAMPlusPlus
from racam.cam.layercam import LayerCAM
from racam.cam.layers import LayerSpec
from racam.cam.racam import RACAM
from racam.cam.scorecam import ScoreCAM
from racam.cam.xgradcam import XGradCAM
from racam.errors import ConfigError

CLASSES: dict[str, type[BaseCAM]] = {
    "gradcam": GradCAM,
    "gradcam++": GradCAMPlusPlus,
    "xgradcam": XGradCAM,
    "ablationcam": AblationCAM,
    "scorecam": ScoreCAM,
    "layercam": LayerCAM,
    "fullgrad": FullGrad,
    "racam": RACAM,
}

#: Every accepted method name: the eight methods, and "<name>+fgbp" for the gradient baselines.
METHODS: list[str] = list(CLASSES) + [
    f"{n}+fgbp" for n, c in CLASSES.items() if issubclass(c, GradientCAM) and c is not RACAM]


def build_cam(name: str, model: nn.Module, target_layers: Sequence[LayerSpec] | LayerSpec | None
              = None, **kwargs: object) -> BaseCAM:
    """The method ``name`` (see :data:`METHODS`) on ``model``.

    ``delta`` sets RA-CAM's delta, or the FGBP delta of a ``+fgbp`` method (default 50); other
    keyword arguments go to the class (``fusion``, ``batch_size``, ``channels_last``, ...).
    """
    key = name.strip().lower()
    base, plus, suffix = key.partition("+fgbp")
    if key not in METHODS or suffix:
        raise ConfigError(f"unknown heat-map method {name!r}; choose one of {', '.join(METHODS)}")
    cls = CLASSES[base]
    kw = dict(kwargs)
    delta = kw.pop("delta", None)
    if plus:
        kw["fgbp_delta"] = 50.0 if delta is None else delta
    elif cls is RACAM and delta is not None:
        kw["delta"] = delta
    elif delta is not None:
        raise ConfigError(f"{name}: delta only applies to racam and '+fgbp' methods")
    try:
        return cls(model, target_layers, **kw)  # type: ignore[arg-type]
    except TypeError as exc:
        raise ConfigError(f"{name}: {exc}") from exc
