"""Frozen image encoders as scikit-learn transformers: images in, embeddings out."""

from ._base import BaseFeaturizer, FeaturizeResult
from ._images import (
    GaussianBlur,
    JPEGCompression,
    RandomCropResize,
    Resize,
    load_image,
)
from ._open_clip import CLIPFeaturizer
from ._spec import from_spec, to_spec
from ._timm import TimmFeaturizer

__all__ = [
    "BaseFeaturizer",
    "CLIPFeaturizer",
    "FeaturizeResult",
    "GaussianBlur",
    "JPEGCompression",
    "RandomCropResize",
    "Resize",
    "TimmFeaturizer",
    "from_spec",
    "load_image",
    "to_spec",
]
