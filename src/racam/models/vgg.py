"""VGG16 classifiers with LeakyReLU, at paper width or narrowed for CPUs.

The layout is torchvision's ``vgg16`` (13 conv layers in 5 stages, adaptive 7x7 average pool,
three fully-connected layers) with every ``ReLU`` replaced by ``LeakyReLU`` and a 2-class head,
as in the paper. ``width`` divides every channel count, giving a "narrow VGG16" with the same
stages for CPU runs.
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models import VGG16_Weights, vgg16

# torchvision's configuration "D" (VGG16): channel counts, "M" = max-pool.
VGG16_CFG: list[int | str] = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M",
                              512, 512, 512, "M", 512, 512, 512, "M"]

#: Names (``named_modules`` paths) of the last activation of each conv stage, before its
#: max-pool: the stage outputs S1..S5 used by LayerCAM, RA-CAM and Figure 1.
VGG16_STAGES: dict[str, str] = {
    "S1": "features.3",
    "S2": "features.8",
    "S3": "features.15",
    "S4": "features.22",
    "S5": "features.29",
}

#: The same stage outputs for the BatchNorm variant (torchvision's ``vgg16_bn`` indices).
VGG16_BN_STAGES: dict[str, str] = {
    "S1": "features.5",
    "S2": "features.12",
    "S3": "features.22",
    "S4": "features.32",
    "S5": "features.42",
}


def _features(width: int, in_channels: int, negative_slope: float,
              batch_norm: bool = False) -> nn.Sequential:
    layers: list[nn.Module] = []
    c_in = in_channels
    for v in VGG16_CFG:
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            c_out = max(1, int(v) // width)
            layers.append(nn.Conv2d(c_in, c_out, kernel_size=3, padding=1))
            if batch_norm:
                layers.append(nn.BatchNorm2d(c_out))
            layers.append(nn.LeakyReLU(negative_slope))
            c_in = c_out
    return nn.Sequential(*layers)


class VGG16LeakyReLU(nn.Module):
    """VGG16 with LeakyReLU activations and a ``num_classes`` head.

    Args:
        num_classes: output logits (2: defect-free, defective).
        width: channel divisor (1 = torchvision's VGG16; 4 = a quarter of the channels).
        in_channels: 3 for RGB; 1 for grayscale (ImageNet weights then sum the first conv's
            RGB filters).
        negative_slope: LeakyReLU slope.
        hidden: size of the two hidden fully-connected layers (default ``4096 // width``).
        dropout: dropout of the fully-connected layers.
        batch_norm: a BatchNorm after every conv (torchvision's ``vgg16_bn`` layout), which
            makes training from scratch (CPU scale, no ImageNet weights) far more reliable.
    """

    def __init__(self, num_classes: int = 2, width: int = 1, in_channels: int = 3,
                 negative_slope: float = 0.01, hidden: int | None = None,
                 dropout: float = 0.5, batch_norm: bool = False) -> None:
        super().__init__()
        hidden = hidden or max(16, 4096 // width)
        self.batch_norm = batch_norm
        self.stages = dict(VGG16_BN_STAGES if batch_norm else VGG16_STAGES)
        self.features = _features(width, in_channels, negative_slope, batch_norm)
        c_last = max(1, 512 // width)
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(c_last * 49, hidden), nn.LeakyReLU(negative_slope), nn.Dropout(dropout),
            nn.Linear(hidden, hidden), nn.LeakyReLU(negative_slope), nn.Dropout(dropout),
            nn.Linear(hidden, num_classes),
        )
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="leaky_relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        x = self.avgpool(x)
        return self.classifier(torch.flatten(x, 1))


def load_imagenet_vgg16(model: VGG16LeakyReLU, state_dict: dict[str, torch.Tensor] | None = None,
                        progress: bool = True) -> VGG16LeakyReLU:
    """Copy torchvision's ImageNet VGG16 weights into ``model`` (width 1 only).

    ``state_dict`` may be given (e.g. loaded from a local file); otherwise torchvision downloads
    ``VGG16_Weights.IMAGENET1K_V1``. The last classifier layer is left as initialised (2-class
    head); for a grayscale model the first conv's RGB filters are summed.
    """
    if state_dict is None:
        state_dict = vgg16(weights=VGG16_Weights.IMAGENET1K_V1, progress=progress).state_dict()
    own = model.state_dict()
    for k, v in state_dict.items():
        if k not in own or k.startswith("classifier.6"):
            continue
        if k == "features.0.weight" and own[k].shape[1] == 1 and v.shape[1] == 3:
            v = v.sum(dim=1, keepdim=True)
        if own[k].shape != v.shape:
            raise ValueError(f"ImageNet weight {k} has shape {tuple(v.shape)}, "
                             f"model expects {tuple(own[k].shape)} (use width=1)")
        own[k] = v
    model.load_state_dict(own)
    return model
