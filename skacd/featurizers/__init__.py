"""Frozen image encoders as scikit-learn transformers: images in, embeddings out."""

from ._base import ENCODER_CACHE_BYTES, BaseFeaturizer, FeaturizeResult
from ._images import (
    MAX_IMAGE_FILE_BYTES,
    MAX_IMAGE_PIXELS,
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
    "ENCODER_CACHE_BYTES",
    "FeaturizeResult",
    "GaussianBlur",
    "JPEGCompression",
    "MAX_IMAGE_FILE_BYTES",
    "MAX_IMAGE_PIXELS",
    "RandomCropResize",
    "Resize",
    "TimmFeaturizer",
    "from_spec",
    "load_image",
    "to_spec",
]
