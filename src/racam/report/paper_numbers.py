"""The paper's published KolektorSDD numbers (PROTOCOL §7), in percent."""

from __future__ import annotations

#: Table I (KSDD): IoU, precision, recall, F1 of each heat-map method.
TABLE_I: dict[str, tuple[float, float, float, float]] = {
    "gradcam": (17.50, 19.27, 65.56, 29.79),
    "gradcam++": (17.22, 18.97, 65.14, 29.38),
    "xgradcam": (17.06, 18.86, 64.10, 29.15),
    "ablationcam": (17.96, 19.97, 64.08, 30.46),
    "scorecam": (17.63, 19.50, 64.76, 29.98),
    "layercam": (16.25, 17.76, 65.61, 27.95),
    "fullgrad": (13.19, 13.58, 82.21, 23.31),
    "racam": (25.20, 30.74, 58.29, 40.25),
}

#: Table IV (KSDD): IoU with and without FGBP.
TABLE_IV: dict[str, float] = {
    "layercam": 16.25, "layercam+fgbp": 18.65, "fullgrad": 13.19, "fullgrad+fgbp": 16.73,
}

#: Table III (KSDD): defect IoU and mIoU of segmentation networks.
TABLE_III: dict[str, tuple[float, float]] = {
    "unet-true": (54.56, 77.28),
    "deeplabv3-true": (53.89, 76.95),
    "deeplabv3plus-true": (55.59, 77.80),
    "deeplabv3-pseudo": (37.86, 68.93),
}

DISPLAY = {
    "gradcam": "Grad-CAM", "gradcam++": "Grad-CAM++", "xgradcam": "XGrad-CAM",
    "ablationcam": "Ablation-CAM", "scorecam": "Score-CAM", "layercam": "LayerCAM",
    "fullgrad": "FullGrad", "racam": "RA-CAM", "layercam+fgbp": "LayerCAM+FGBP",
    "fullgrad+fgbp": "FullGrad+FGBP", "gradcam+fgbp": "Grad-CAM+FGBP",
    "unet": "UNet", "deeplabv3": "DeepLabV3", "deeplabv3plus": "DeepLabV3+",
}
