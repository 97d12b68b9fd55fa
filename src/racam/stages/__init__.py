"""The stages of a run, one module each, run by :class:`racam.engine.Engine`.

- :mod:`~racam.stages.classifier`     train and score the classifier (restarts, candidates)
- :mod:`~racam.stages.heatmaps`       heat maps on the classifier and their quality
- :mod:`~racam.stages.pseudo_labels`  pseudo-label masks of the training images
- :mod:`~racam.stages.segmentation`   segmentation networks, self-training, re-scoring
- :mod:`~racam.stages.evaluate`       a run's pooled numbers (``results.json``)

Each stage knows its key, computes, loads a stored result and returns a typed result
(:mod:`~racam.stages.results`). Shared plumbing: :mod:`~racam.stages.context` (config, run
folder, device, fold data, keys), :mod:`~racam.stages.cache`, :mod:`~racam.stages.elapsed`
(timing), :mod:`~racam.stages.folds`, :mod:`~racam.stages.identity` (input digests),
:mod:`~racam.stages.preflight` (input sizes).
"""
