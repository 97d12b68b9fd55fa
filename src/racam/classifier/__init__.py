"""Classifier training, prediction and checkpoints."""

from racam.checkpoint import (
           load_checkpoint,
           load_classifier,
           save_checkpoint,
)
from racam.classifier.train import ClassifierResult, predict_proba, train_classifier

__all__ = ["ClassifierResult", "load_checkpoint", "load_classifier", "predict_proba",
           "save_checkpoint", "train_classifier"]
