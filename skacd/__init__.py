"""skacd: detect AI-generated images with single-class attribution modeling.

A scikit-learn-compatible implementation of arXiv 2603.00717: a frozen image
encoder, an autoencoder fitted on one class only (the *attribution space*),
and a light classifier on the attribution residuals.
"""

# The public names are imported on first access (PEP 562), so that
# ``import skacd`` and the command line (``skacd --help``) do not pay for torch
# and scikit-learn; ``from skacd import X`` and ``skacd.X`` work as usual.

import importlib

from ._version import __version__

# public name -> submodule that defines it
_LAZY = {
    "AttributionSpace": "attribution",
    "AttributionClassifier": "classifier",
    "CLIPFeaturizer": "featurizers",
    "ConformalThresholdClassifier": "calibration",
    "OneClassDetector": "one_class",
    "TimmFeaturizer": "featurizers",
    "BlockSelector": "fusion",
    "make_detector": "fusion",
    "load": "io",
    "save": "io",
    "show_versions": "_show_versions",
    # the base error and warning, and the errors users catch most
    "SkacdError": "exceptions",
    "SkacdWarning": "exceptions",
    "DetectorFileError": "exceptions",
    "ImageLoadError": "exceptions",
}

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


def __getattr__(name):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__) | set(_LAZY))
