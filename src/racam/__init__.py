"""racam: weakly-supervised surface-defect segmentation with Region-Aware CAM.

Pipeline stages, one sub-package each:

- :mod:`racam.data`         datasets (KolektorSDD, KolektorSDD2, user folders)
- :mod:`racam.models`       classifier backbones (VGG16-LeakyReLU, narrow VGG16, EfficientNet-Lite)
                            and the segmentation networks' entries, by name
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
- :mod:`racam.paper`        the paper's tables and figures: ``racam reproduce`` and its report
- :mod:`racam.plan`         a folder run's plan from a fingerprint of its images
- :mod:`racam.deploy`       ``racam export`` (a self-describing bundle) and ``racam predict``
                            (one :class:`~racam.deploy.inference.Inferencer`); imports no stage
- :mod:`racam.interop`      masks to and from labelling tools (COCO, LabelMe)

Shared by the stages: :mod:`racam.config` (the run config, checked when loaded),
:mod:`racam.compat` (old config keys and run folders, in one table),
:mod:`racam.training` (seeding, loaders, samplers, resuming), :mod:`racam.checkpoint`
(checkpoint files), :mod:`racam.errors`, :mod:`racam.io`, :mod:`racam.registry` (the one
registry idiom of methods, backbones, networks and datasets; :mod:`racam.catalog` lists them).
"""

__version__ = "0.1.0"
