"""Frozen image encoders as scikit-learn transformers: images in, embeddings out."""

from ._base import BaseFeaturizer, FeaturizeResult
from ._images import GaussianBlur, JPEGCompression, load_image
from ._open_clip import CLIPFeaturizer
from ._timm import TimmFeaturizer

__all__ = [
    "BaseFeaturizer",
    "CLIPFeaturizer",
    "FeaturizeResult",
    "GaussianBlur",
    "JPEGCompression",
    "TimmFeaturizer",
    "load_image",
]
