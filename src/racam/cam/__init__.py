"""Heat maps: RA-CAM, FGBP and the seven baselines (paper Sections III-A, III-B).

All methods share one call style (see :mod:`racam.cam.base`)::

    cam = RACAM(model, target_layers=["S1", "S2", "S3", "S4", "S5"], delta=50, fusion="max")
    maps = cam(images, targets=1)        # (B, H, W) in [0, 1] on images.device
    with fgbp(model, delta=50):          # FGBP as a plug-in for any gradient method
        maps = LayerCAM(model)(images)
"""

from racam.cam.ablationcam import AblationCAM
from racam.cam.base import BaseCAM, GradientCAM
from racam.cam.fgbp import fgbp
from racam.cam.fullgrad import FullGrad
from racam.cam.gradcam import GradCAM
from racam.cam.gradcam_pp import GradCAMPlusPlus
from racam.cam.layercam import LayerCAM
from racam.cam.layers import (
                              default_target_layers,
                              resolve_layers,
                              stage_layers,
                              vgg16_stage_layers,
)
from racam.cam.maps import normalize_maps
from racam.cam.percentile import percentile_filter, positive_percentile
from racam.cam.racam import RACAM
from racam.cam.registry import METHODS, build_cam
from racam.cam.scorecam import ScoreCAM
from racam.cam.xgradcam import XGradCAM

__all__ = [
    "AblationCAM", "BaseCAM", "FullGrad", "GradCAM", "GradCAMPlusPlus", "GradientCAM",
    "LayerCAM", "METHODS", "RACAM", "ScoreCAM", "XGradCAM", "build_cam", "default_target_layers",
    "fgbp", "normalize_maps", "percentile_filter", "positive_percentile", "resolve_layers",
    "stage_layers", "vgg16_stage_layers",
]
