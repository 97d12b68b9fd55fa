"""Heat maps: RA-CAM, FGBP and the seven baselines (paper Sections III-A, III-B).

All methods share one call style (see :mod:`racam.cam.base`)::

    cam = RACAM(model, target_layers=["S1", "S2", "S3", "S4", "S5"], delta=50, fusion="max")
    maps = cam(images, targets=1)        # (B, H, W) in [0, 1] on images.device
    with fgbp(model, delta=50):          # FGBP as a plug-in for any gradient method
        maps = LayerCAM(model)(images)

Importing a method's module registers it (:mod:`racam.cam.registry`); a new method is its own
module plus one import line below (``docs/adding-a-method.md``).
"""

from racam.cam.base import BaseCAM as BaseCAM
from racam.cam.base import GradientCAM as GradientCAM
from racam.cam.fgbp import fgbp as fgbp
from racam.cam.layers import STAGES as STAGES
from racam.cam.layers import default_target_layers as default_target_layers
from racam.cam.layers import resolve_layers as resolve_layers
from racam.cam.layers import stage_layers as stage_layers
from racam.cam.layers import vgg16_stage_layers as vgg16_stage_layers
from racam.cam.maps import normalize_maps as normalize_maps
from racam.cam.percentile import percentile_filter as percentile_filter
from racam.cam.percentile import positive_percentile as positive_percentile
from racam.cam.registry import METHODS as METHODS
from racam.cam.registry import build_cam as build_cam
from racam.cam.registry import method_names as method_names

# isort: split
# The methods (one line each; importing the module registers the class).
from racam.cam.ablationcam import AblationCAM as AblationCAM
from racam.cam.fullgrad import FullGrad as FullGrad
from racam.cam.gradcam import GradCAM as GradCAM
from racam.cam.gradcam_pp import GradCAMPlusPlus as GradCAMPlusPlus
from racam.cam.layercam import LayerCAM as LayerCAM
from racam.cam.racam import RACAM as RACAM
from racam.cam.scorecam import ScoreCAM as ScoreCAM
from racam.cam.xgradcam import XGradCAM as XGradCAM
