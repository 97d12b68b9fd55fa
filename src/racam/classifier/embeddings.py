"""Image embeddings from a classifier: a layer's activations, global-average-pooled and
L2-normalised (what ``segmentation.train_masks_choice: typical`` clusters,
:mod:`racam.pseudo.typical`)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from racam.training import make_loader

__all__ = ["pooled_features"]


@torch.inference_mode()
def pooled_features(model: nn.Module, dataset: Dataset, layer: str, *, batch_size: int,
                    device: torch.device) -> np.ndarray:
    """``(N, C)`` float64: the output of ``model``'s module ``layer`` (a ``named_modules``
    path; ``(B, C, H, W)``) on each image of ``dataset`` (dataset order, eval mode), averaged
    over ``H, W`` and scaled to unit L2 norm (a zero vector stays zero)."""
    module = dict(model.named_modules())[layer]
    pooled: list[torch.Tensor] = []

    def hook(_: nn.Module, __: object, out: torch.Tensor) -> None:
        pooled.append(out.float().mean(dim=(2, 3)).cpu())  # before any in-place op after it

    was_training = model.training
    model.eval()
    handle = module.register_forward_hook(hook)
    try:
        for batch in make_loader(dataset, batch_size, None, None, 0, device):
            model(batch.images.to(device))
    finally:
        handle.remove()
        model.train(was_training)
    if not pooled:
        return np.zeros((0, 0))
    x = torch.cat(pooled).double().numpy()
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.asarray(x / np.where(norms > 0, norms, 1.0))
