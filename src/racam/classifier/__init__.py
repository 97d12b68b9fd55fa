"""Classifier training, prediction and checkpoints."""

from racam.checkpoint import (
           load_checkpoint,
           load_classifier,
           save_checkpoint,
)
from racam.classifier.scoring import predict_proba
from racam.classifier.train import ClassifierResult, train_classifier

__all__ = ["ClassifierResult", "load_checkpoint", "load_classifier", "predict_proba",
           "save_checkpoint", "train_classifier"]
