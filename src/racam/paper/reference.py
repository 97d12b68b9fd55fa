"""The paper's published KolektorSDD numbers (PROTOCOL §7), in percent.

Display names of methods and networks: :mod:`racam.report.names`.
"""

from __future__ import annotations

#: The paper's own method: the reference of every bootstrap comparison of Table I.
REFERENCE = "racam"

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

#: Table III (KSDD): defect IoU and mIoU of segmentation networks, by ``<arch>-<source>``.
TABLE_III: dict[str, tuple[float, float]] = {
    "unet-true": (54.56, 77.28),
    "deeplabv3-true": (53.89, 76.95),
    "deeplabv3plus-true": (55.59, 77.80),
    "deeplabv3-pseudo": (37.86, 68.93),
}

#: The fully supervised networks of the paper's Table III.
SUPERVISED_ARCHS = ("unet", "deeplabv3", "deeplabv3plus")


def weak_share_text() -> str:
    """The paper's weakly supervised defect IoU as a share of its best fully supervised one:
    ``"37.86 / 55.59 = 68.1%"``."""
    weak = TABLE_III["deeplabv3-pseudo"][0]
    best = max(v[0] for k, v in TABLE_III.items() if k.endswith("-true"))
    return f"{weak:.2f} / {best:.2f} = {100 * weak / best:.1f}%"
