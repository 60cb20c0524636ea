"""Frozen image encoders as scikit-learn transformers: images in, embeddings out."""

from . import _encoder, _images
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

# Limits on untrusted input and on memory, read each time they are used: set
# them here, e.g. ``skacd.featurizers.MAX_IMAGE_PIXELS = 100_000_000``.

#: The largest image file read, in bytes (256 MiB). Larger files, FIFOs,
#: devices and sockets are errors for that image (skipped with
#: ``on_error="skip"``) and are never read.
MAX_IMAGE_FILE_BYTES = _images.MAX_IMAGE_FILE_BYTES

#: The most pixels (width x height, from the file's header, before decoding)
#: of an image file: 64 million, below Pillow's own decompression-bomb limit.
MAX_IMAGE_PIXELS = _images.MAX_IMAGE_PIXELS

#: The memory that loaded encoders kept for reuse may take, in bytes (4 GiB):
#: the least recently used are dropped beyond it (never the one in use), and a
#: featurizer with ``verbose >= 1`` says when it reloads one.
ENCODER_CACHE_BYTES = _encoder.ENCODER_CACHE_BYTES

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
