"""Checks of a run that need more than the config file: whether the networks take the input size.

Run when a :class:`~racam.engine.Engine` is created, before any file is written, so a
``data.size`` too small for the classifier (``Output size is too small`` after training) or not
fitting the segmentation network is a one-line :class:`~racam.errors.ConfigError` naming the key.
"""

from __future__ import annotations

from racam.config import RunConfig
from racam.errors import ConfigError, DataError
from racam.models.input_size import input_problem, on_meta, smallest_square


def check_input_sizes(cfg: RunConfig) -> None:
    """Raise :class:`ConfigError` when ``data.size`` (or ``segmentation.crop``) does not fit the
    classifier backbone or the segmentation network of ``cfg``."""
    from racam.models.registry import build_classifier
    from racam.segmentation.networks import build_segmentation, check_input_size

    c, d = cfg.classifier, cfg.data
    clf = on_meta(lambda: build_classifier(c.backbone, in_channels=d.channels, width=c.width,
                                           batch_norm=c.batch_norm))
    problem = input_problem(clf, d.channels, d.size)
    if problem is not None:
        side = smallest_square(clf, d.channels)
        need = f"; it needs at least {side}x{side}" if side else ""
        raise ConfigError(f"data.size: {d.size[0]}x{d.size[1]} (width x height) is too small for "
                          f"the classifier backbone {c.backbone}{need} ({problem})")
    s = cfg.segmentation
    stride = s.output_stride if s.arch.startswith("deeplab") else None
    seg = on_meta(lambda: build_segmentation(s.arch, s.encoder, d.channels, None, 2, stride))
    for key, (width, height) in (("data.size", d.size), ("segmentation.crop", s.crop)) \
            if s.crop else (("data.size", d.size),):
        try:  # smp networks do not all run on the meta device: their own size rule only
            check_input_size(seg, height, width, key)
        except DataError as exc:
            raise ConfigError(str(exc)) from None
