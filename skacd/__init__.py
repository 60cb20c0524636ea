"""skacd: detect AI-generated images with single-class attribution modeling.

A scikit-learn-compatible implementation of arXiv 2603.00717: a frozen image
encoder, an autoencoder fitted on one class only (the *attribution space*),
and a light classifier on the attribution residuals.
"""

from .attribution import AttributionSpace
from .calibration import ConformalThresholdClassifier
from .classifier import AttributionClassifier
from .featurizers import CLIPFeaturizer, TimmFeaturizer
from .fusion import BlockSelector, make_detector
from .io import load, save
from .one_class import OneClassDetector

__version__ = "0.1.0.dev0"

__all__ = [
    "AttributionSpace",
    "AttributionClassifier",
    "CLIPFeaturizer",
    "ConformalThresholdClassifier",
    "OneClassDetector",
    "TimmFeaturizer",
    "BlockSelector",
    "make_detector",
    "load",
    "save",
    "__version__",
]
