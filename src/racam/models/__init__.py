"""Classifier backbones (VGG16 with LeakyReLU, narrow VGG16, EfficientNet-Lite) and the
segmentation networks' entries, each kind a registry by name (``racam list``)."""

from racam.models.networks import NETWORKS, Network
from racam.models.registry import (
                                   BACKBONES,
                                   LITE0_STAGES,
                                   ClassifierArgs,
                                   build_classifier,
                                   classifier_target_layers,
                                   effective_width,
                                   lite0_weights_path,
                                   load_state_dict_file,
                                   register_backbone,
)
from racam.models.vgg import VGG16_STAGES, VGG16LeakyReLU, load_imagenet_vgg16

__all__ = ["BACKBONES", "LITE0_STAGES", "NETWORKS", "VGG16_STAGES", "ClassifierArgs", "Network",
           "VGG16LeakyReLU", "build_classifier", "classifier_target_layers", "effective_width",
           "lite0_weights_path", "load_imagenet_vgg16", "load_state_dict_file",
           "register_backbone"]
