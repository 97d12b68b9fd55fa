"""Learning-rate schedule of segmentation training (``segmentation.schedule``; the optimiser
itself comes from :func:`racam.training.optimizer_and_scaler`). The schedules live in
:mod:`racam.schedule`, shared with classifier training; this module keeps their old import path.
"""

from __future__ import annotations

from racam.schedule import lr_factor, set_lr

__all__ = ["lr_factor", "set_lr"]
