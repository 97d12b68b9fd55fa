"""racam: weakly-supervised surface-defect segmentation with Region-Aware CAM.

Pipeline stages, one sub-package each:

- :mod:`racam.data`         datasets (KolektorSDD, KolektorSDD2, user folders)
- :mod:`racam.models`       classifier backbones (VGG16-LeakyReLU, narrow VGG16, EfficientNet-Lite0)
- :mod:`racam.classifier`   classifier training and prediction
- :mod:`racam.cam`          heat maps: RA-CAM, FGBP and the seven baselines
- :mod:`racam.pseudo`       Otsu thresholding and pseudo-label generation
- :mod:`racam.segmentation` segmentation networks trained on pseudo-labels or true masks
- :mod:`racam.evaluation`   IoU, mIoU, precision, recall, F1, counts pooled over folds
- :mod:`racam.report`       tables, figures, Markdown/HTML reports (from computed results)
- :mod:`racam.stages`       the run's stages (classifier, heat maps, pseudo-labels,
                            segmentation, evaluation): keys, compute, load, typed results
- :mod:`racam.engine`       :class:`~racam.engine.Engine`, whose verbs are the CLI commands
                            (``racam run``, ``train-classifier``, ...)
- :mod:`racam.pipeline`     ``racam reproduce`` (the paper's tables and figures)

Shared by the stages: :mod:`racam.config` (the run config, checked when loaded),
:mod:`racam.compat` (old config keys and run folders, in one table),
:mod:`racam.training` (seeding, loaders, samplers, resuming), :mod:`racam.checkpoint`
(checkpoint files), :mod:`racam.errors`, :mod:`racam.io`.
"""

__version__ = "0.1.0"
