"""The good images as a prior on the pseudo-labels: a defect is what no good image holds.

For every patch of an image, the distance to its nearest patch among the good training images,
in the classifier's own features (PatchCore's nearest-neighbour score, Roth et al. 2022,
"Towards total recall in industrial anomaly detection", here on the run's classifier instead of
a separate backbone). Two of the classifier's stages are taken at the finer one's stride, each
feature averaged over its 3 x 3 neighbours (PatchCore's local aggregation), and concatenated.
The memory bank is a seeded random subset of the good patches (PatchCore keeps 1-10 % by a
coreset; a random subset is cheaper and needs no extra choice).

``cam.good_prior: true`` multiplies the pseudo-labels' heat map by this distance map (each
scaled to [0, 1] per image): what the classifier points at **and** no good image resembles.
It needs image labels only (which images are good).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import Dataset

from racam.cam.maps import normalize_maps, resize_maps
from racam.pseudo.heatmaps import CamFn

#: good patches kept in the bank (a seeded random subset)
BANK_SIZE = 100_000
#: query rows per distance block (bounds the (rows x bank) distance matrix: 2048 x 100k floats)
BLOCK = 2048


def patch_layers(model: nn.Module) -> tuple[str, str]:
    """The classifier stages whose features describe a patch: the stage at stride 8 and the one
    at stride 16 (:func:`racam.models.classifier_target_layers` names them S3 and S4)."""
    from racam.models import classifier_target_layers

    stages = classifier_target_layers(model)
    return stages["S3"], stages["S4"]


@torch.inference_mode()
def patch_features(model: nn.Module, images: Tensor, layers: Sequence[str]) -> Tensor:
    """``(B, C, h, w)``: ``layers``' outputs at the first one's size, each averaged over 3 x 3
    neighbours, concatenated along channels."""
    modules = dict(model.named_modules())
    out: list[Tensor] = []
    hooks = [modules[n].register_forward_hook(lambda _m, _i, o: out.append(o.float()))
             for n in layers]
    try:
        model(images)
    finally:
        for h in hooks:
            h.remove()
    size = out[0].shape[-2:]
    return torch.cat([F.avg_pool2d(F.interpolate(f, size=size, mode="bilinear",
                                                 align_corners=False),
                                   3, stride=1, padding=1, count_include_pad=False)
                      for f in out], dim=1)


class GoodPatches:
    """The bank of a model's good patches and each image patch's distance to it. The bank is
    built on first use (a stage that reuses stored masks never needs it)."""

    def __init__(self, model: nn.Module, dataset: Dataset, good: Sequence[int], *,
                 batch_size: int = 4, device: torch.device | str = "cpu",
                 size: int = BANK_SIZE, seed: int = 0) -> None:
        if not len(good):
            raise ValueError("good_prior: the fold has no good training image")
        self.model, self.layers, self.device = model, patch_layers(model), torch.device(device)
        self.dataset, self.good, self.batch_size = dataset, list(good), batch_size
        self.size, self.seed = size, seed
        self._bank: Tensor | None = None

    @property
    def bank(self) -> Tensor:
        """``(N, C)``: a seeded random subset of at most ``size`` good patches."""
        if self._bank is None:
            good, bs = self.good, self.batch_size
            rows = []
            for s in range(0, len(good), bs):
                x = torch.stack([self.dataset[i].image for i in good[s:s + bs]])
                f = patch_features(self.model, x.to(self.device), self.layers)
                rows.append(f.permute(0, 2, 3, 1).reshape(-1, f.shape[1]))
            bank = torch.cat(rows)
            keep = torch.randperm(len(bank), generator=torch.Generator().manual_seed(self.seed))
            self._bank = bank[keep[:self.size].to(bank.device)].contiguous()
        return self._bank

    @torch.inference_mode()
    def distance(self, images: Tensor) -> Tensor:
        """``(B, H, W)`` at the images' size: each patch's distance to its nearest good patch
        (bilinear from the feature grid)."""
        f = patch_features(self.model, images.to(self.device), self.layers)
        b, c, h, w = f.shape
        q = f.permute(0, 2, 3, 1).reshape(-1, c)
        d = torch.cat([torch.cdist(q[i:i + BLOCK], self.bank).amin(dim=1)
                       for i in range(0, len(q), BLOCK)]).reshape(b, h, w)
        return resize_maps(d, (images.shape[-2], images.shape[-1]))


def with_good_prior(cam: CamFn, patches: GoodPatches) -> Callable[..., Tensor]:
    """``cam`` times the good-patch distance (each in [0, 1] per image), in [0, 1] again."""
    def prior_cam(images: Tensor, targets: object = 1) -> Tensor:
        maps = normalize_maps(cam(images, targets=targets).detach().float())
        dist = resize_maps(patches.distance(images).to(maps.device),
                           (maps.shape[-2], maps.shape[-1]))
        return normalize_maps(maps * normalize_maps(dist))
    return prior_cam
