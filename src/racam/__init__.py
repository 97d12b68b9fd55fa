"""racam: weakly-supervised surface-defect segmentation with Region-Aware CAM.

Pipeline stages, one sub-package each:

- :mod:`racam.data`         datasets (KolektorSDD, KolektorSDD2, user folders)
- :mod:`racam.models`       classifier backbones (VGG16-LeakyReLU, narrow VGG16, EfficientNet-Lite0)
- :mod:`racam.classifier`   classifier training and checkpoints
- :mod:`racam.cam`          heat maps: RA-CAM, FGBP and the seven baselines
- :mod:`racam.pseudo`       Otsu thresholding and pseudo-label generation
- :mod:`racam.segmentation` segmentation networks trained on pseudo-labels or true masks
- :mod:`racam.evaluation`   IoU, mIoU, precision, recall, F1
- :mod:`racam.report`       tables, figures, Markdown/HTML reports
- :mod:`racam.pipeline`     configs and the end-to-end ``racam run`` / ``racam reproduce``
"""

__version__ = "0.1.0"
