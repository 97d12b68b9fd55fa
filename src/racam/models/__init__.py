"""Classifier backbones (VGG16 with LeakyReLU, narrow VGG16, EfficientNet-Lite0)."""

from racam.models.registry import (
                                   BACKBONES,
                                   LITE0_STAGES,
                                   build_classifier,
                                   classifier_target_layers,
                                   effective_width,
                                   lite0_weights_path,
                                   load_state_dict_file,
)
from racam.models.vgg import VGG16_STAGES, VGG16LeakyReLU, load_imagenet_vgg16

__all__ = ["BACKBONES", "LITE0_STAGES", "VGG16_STAGES", "VGG16LeakyReLU", "build_classifier",
           "classifier_target_layers", "effective_width", "lite0_weights_path",
           "load_imagenet_vgg16", "load_state_dict_file"]
