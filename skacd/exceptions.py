"""Warnings and errors raised by skacd.

Every error skacd defines derives from :class:`SkacdError` and every warning
from :class:`SkacdWarning` (a :class:`UserWarning`), so that one ``except``
clause or warnings filter covers them all. The errors keep their standard
base class too (:class:`ImageLoadError` is a :class:`ValueError`,
:class:`WeightsUnavailableError` an :class:`OSError`, ...), so code catching
those keeps working.

This module imports nothing heavy (``NotFittedError``, scikit-learn's, is
imported on first access), so the command line can use it while it parses.
"""

__all__ = [
    "CacheWarning",
    "CalibrationWarning",
    "DetectorFileError",
    "DeviceWarning",
    "ImageLoadError",
    "ImageLoadWarning",
    "NotFittedError",  # noqa: F822 - scikit-learn's, imported on first access
    "PreprocessingMismatchError",
    "SkacdError",
    "SkacdWarning",
    "UsageError",
    "WeightsUnavailableError",
]


def __getattr__(name):
    if name == "NotFittedError":
        from sklearn.exceptions import NotFittedError

        return NotFittedError
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class SkacdError(Exception):
    """The base class of every error skacd defines.

    Examples
    --------
    >>> from skacd.exceptions import DetectorFileError, SkacdError
    >>> issubclass(DetectorFileError, SkacdError)
    True
    """


class SkacdWarning(UserWarning):
    """The base class of every warning skacd emits.

    A :class:`UserWarning`, so filters on ``UserWarning`` still apply.

    Examples
    --------
    >>> import warnings
    >>> from skacd.exceptions import SkacdWarning
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore", SkacdWarning)  # every skacd warning
    """


class CacheWarning(SkacdWarning):
    """The feature cache could not read or write an entry, or removed a bad one.

    Raised once per problem and :class:`~skacd.cache.FeatureCache` instance:
    features are still computed and returned, the cache only stops helping.
    """


class CalibrationWarning(SkacdWarning):
    """Too few known-real images to set a threshold at the requested FPR.

    Raised by :func:`skacd.calibration.conformal_threshold` (and the detectors
    that call it) when ``(n + 1) * target_fpr < 1``: with that few calibration
    images no threshold can guarantee the target false-positive rate, so the
    threshold is ``+inf`` and every image is called real. The message names
    the minimum number of images.
    """


class DetectorFileError(SkacdError, ValueError):
    """A file is not a valid skacd detector file, or one this skacd cannot read.

    Raised by :func:`skacd.load` for files that are not zip archives, pickles
    and ``torch.save`` files (never unpickled), files from a newer format
    version, manifests naming classes outside the allow-list, and damaged
    files. The message names the file.
    """


class DeviceWarning(SkacdWarning):
    """A requested torch device is unavailable and skacd fell back to another one.

    Raised, for instance, when an estimator fitted on a GPU is unpickled or
    loaded on a machine without CUDA: it is moved to the CPU instead.
    """


class ImageLoadError(SkacdError, ValueError):
    """An image could not be read or decoded.

    The message always names the offending file (or the position of the
    in-memory image) and the reason.

    Parameters
    ----------
    source : str
        The file path, or a description such as ``"item 3 (PIL.Image)"``.
    reason : str
        What went wrong.
    """

    def __init__(self, source, reason):
        self.source = str(source)
        self.reason = str(reason)
        super().__init__(f"Cannot load image {self.source!r}: {self.reason}")

    def __reduce__(self):
        return (type(self), (self.source, self.reason))


class ImageLoadWarning(SkacdWarning):
    """Images were skipped because they could not be loaded (``on_error="skip"``)."""


class PreprocessingMismatchError(SkacdError, ValueError):
    """A detector's featurizer would preprocess images unlike at fit time.

    Raised by :func:`skacd.load` and by a fitted featurizer's ``transform``
    when the preprocessing recorded at fit time (image size, mean, std,
    interpolation, resize or crop mode) differs from what the featurizer
    builds now, for example with other weights, another ``weights_tag`` or
    another encoder library version. The message shows both.
    """


class WeightsUnavailableError(SkacdError, OSError):
    """Pretrained encoder weights are neither on disk nor downloadable now.

    The message names the model and weights tag and shows how to pass a local
    checkpoint file instead.
    """


class UsageError(SkacdError):
    """A command-line value that makes no sense: ``skacd`` exits with status 2.

    Raised by the subcommands of :mod:`skacd.cli` for what argparse cannot
    check alone (an output file in a missing folder, options that do not go
    together); the message says which value and why.
    """
