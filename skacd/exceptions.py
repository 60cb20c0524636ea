"""Warnings and errors raised by skacd."""

from sklearn.exceptions import NotFittedError

__all__ = [
    "CalibrationWarning",
    "DeviceWarning",
    "ImageLoadError",
    "ImageLoadWarning",
    "NotFittedError",
    "PreprocessingMismatchError",
    "WeightsUnavailableError",
]


class CalibrationWarning(UserWarning):
    """Too few known-real images to set a threshold at the requested FPR.

    Raised by :func:`skacd.calibration.conformal_threshold` (and the detectors
    that call it) when ``(n + 1) * target_fpr < 1``: with that few calibration
    images no threshold can guarantee the target false-positive rate, so the
    threshold is ``+inf`` and every image is called real. The message names
    the minimum number of images.
    """


class DeviceWarning(UserWarning):
    """A requested torch device is unavailable and skacd fell back to another one.

    Raised, for instance, when an estimator fitted on a GPU is unpickled or
    loaded on a machine without CUDA: it is moved to the CPU instead.
    """


class ImageLoadError(ValueError):
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


class ImageLoadWarning(UserWarning):
    """Images were skipped because they could not be loaded (``on_error="skip"``)."""


class PreprocessingMismatchError(ValueError):
    """A detector's featurizer would preprocess images unlike at fit time.

    Raised by :func:`skacd.load` and by a fitted featurizer's ``transform``
    when the preprocessing recorded at fit time (image size, mean, std,
    interpolation, resize or crop mode) differs from what the featurizer
    builds now, for example with other weights, another ``weights_tag`` or
    another encoder library version. The message shows both.
    """


class WeightsUnavailableError(OSError):
    """Pretrained encoder weights are neither on disk nor downloadable now.

    The message names the model and weights tag and shows how to pass a local
    checkpoint file instead.
    """
