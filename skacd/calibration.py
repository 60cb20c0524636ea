"""Operating points set on known-real images: conformal thresholds and p-values.

A detector's default threshold (probability 0.5) says nothing about how many
*of your* real photos it will flag. Given a fitted detector and a set of
images known to be real, the functions and the classifier here set the
threshold so that at most a target share of new real images from the same
distribution is called fake, with a finite-sample guarantee (split
conformal prediction), and give every new image a conformal p-value
``p_real``. No generated image is needed.

- :func:`conformal_threshold` and :func:`conformal_p_values` work on scores,
- :class:`ConformalThresholdClassifier` wraps a fitted detector (a
  :class:`~sklearn.pipeline.Pipeline` from images, or any binary
  classifier) and predicts with the calibrated threshold,
- :func:`calibration_fingerprint` identifies the images a threshold was
  calibrated on.
"""

import hashlib
import math
import os
import warnings
from fractions import Fraction
from numbers import Real

import numpy as np
from sklearn.exceptions import NotFittedError

from ._compat import (
    BaseThresholdClassifier,
    HasMethods,
    Interval,
    StrOptions,
    _fit_context,
    _get_response_values_binary,
    _safe_indexing,
    check_is_fitted,
    validate_params,
)
from .exceptions import CalibrationWarning, ImageLoadWarning

__all__ = [
    "ConformalThresholdClassifier",
    "calibration_fingerprint",
    "conformal_p_values",
    "conformal_threshold",
    "min_calibration_samples",
]


def _exact(target_fpr):
    """``target_fpr`` as the decimal fraction it was written as (0.05 -> 1/20)."""
    return Fraction(repr(float(target_fpr)))


def min_calibration_samples(target_fpr):
    """The fewest calibration images for which a threshold at ``target_fpr`` exists.

    The conformal threshold needs ``(n + 1) * target_fpr >= 1``, that is
    ``n >= ceil(1 / target_fpr) - 1``: 19 images for 5%, 99 for 1%.

    Parameters
    ----------
    target_fpr : float in (0, 1)
        The target false-positive rate.

    Returns
    -------
    n_min : int
        The minimum number of known-real calibration images.

    Examples
    --------
    >>> from skacd.calibration import min_calibration_samples
    >>> min_calibration_samples(0.05), min_calibration_samples(0.01)
    (19, 99)
    """
    return math.ceil(1 / _exact(target_fpr)) - 1


def _as_scores(scores, name):
    """1-D float64 scores; NaN is refused, +-inf (e.g. a shifted score) kept."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim == 2 and scores.shape[1] == 1:
        scores = scores[:, 0]
    if scores.ndim != 1:
        raise ValueError(
            f"{name} must be 1-D (one score per image); got {scores.shape}."
        )
    if np.isnan(scores).any():
        raise ValueError(
            f"{name} holds NaN at position(s) "
            f"{np.flatnonzero(np.isnan(scores))[:10].tolist()}."
        )
    return scores


@validate_params(
    {
        "calibration_scores": ["array-like"],
        "target_fpr": [Interval(Real, 0, 1, closed="neither")],
    },
    prefer_skip_nested_validation=True,
)
def conformal_threshold(calibration_scores, target_fpr=0.05):
    """The threshold that calls at most ``target_fpr`` of new real images fake.

    With ``n`` calibration scores of known-real images sorted as
    :math:`s_{(1)} \\le \\dots \\le s_{(n)}` (larger meaning more likely
    fake) and :math:`m = \\lfloor (n + 1)\\,\\alpha \\rfloor` for
    :math:`\\alpha` = ``target_fpr``, the threshold is
    :math:`t = s_{(n + 1 - m)}`, the :math:`\\lceil (n + 1)(1 - \\alpha)
    \\rceil`-th smallest score; an image is called fake when its score is
    *strictly* above ``t``.

    Guarantee (split conformal prediction): if the calibration images and a
    new real image are exchangeable (drawn alike from the same distribution)
    and scored by a detector that was not fitted on any of them, then

    .. math:: P(\\text{score of the new real image} > t) \\le
              \\frac{m}{n + 1} \\le \\alpha ,

    over the draw of both the calibration set and the new image, for every
    ``n``; with no tied scores it is also at least
    :math:`\\alpha - 1/(n + 1)`.

    Parameters
    ----------
    calibration_scores : array-like of shape (n_samples,)
        Scores of known-real images, larger meaning more likely fake, from a
        detector that never saw these images in training.
    target_fpr : float in (0, 1), default=0.05
        The largest acceptable share of real images called fake.

    Returns
    -------
    threshold : float
        Call an image fake when its score is ``> threshold``. ``+inf`` when
        there are fewer than :func:`min_calibration_samples` images.

    Warns
    -----
    CalibrationWarning
        When ``(n + 1) * target_fpr < 1``: too few images for the target;
        the message names the minimum.

    See Also
    --------
    conformal_p_values : The per-image p-values that go with it.
    ConformalThresholdClassifier : A detector that predicts with it.

    Notes
    -----
    The guarantee is *marginal*: averaged over calibration sets. For one
    fixed calibration set the false-positive rate on new real images is a
    random variable with distribution :math:`\\mathrm{Beta}(m, n + 1 - m)`
    (without ties), of mean :math:`m/(n+1)` and standard deviation about
    :math:`\\sqrt{\\alpha(1-\\alpha)/n}`: about 0.7 points for 1,000 images at
    5%, 2.2 points for 100. It holds only for real images like the
    calibration images: photos from another camera, compression or subject
    mix may be flagged more often.

    References
    ----------
    .. [1] V. Vovk, A. Gammerman and G. Shafer, *Algorithmic Learning in a
       Random World*, Springer, 2005.
    .. [2] A. N. Angelopoulos and S. Bates, A gentle introduction to
       conformal prediction and distribution-free uncertainty
       quantification, arXiv:2107.07511.

    Examples
    --------
    >>> import numpy as np
    >>> from skacd.calibration import conformal_threshold
    >>> scores = np.arange(1, 100) / 100  # 99 real images: 0.01, ..., 0.99
    >>> t = conformal_threshold(scores, target_fpr=0.05)
    >>> t  # the 95th of 99: 5 of 100 ranks lie above it
    0.95
    >>> float(np.mean(scores > t))
    0.04...
    """
    scores = _as_scores(calibration_scores, "calibration_scores")
    n = scores.size
    m = math.floor((n + 1) * _exact(target_fpr))
    if m < 1:
        n_min = min_calibration_samples(target_fpr)
        warnings.warn(
            f"{n} known-real calibration image(s) are too few for target_fpr="
            f"{target_fpr:g}: at least {n_min} are needed (the conformal threshold "
            "needs (n + 1) * target_fpr >= 1). The threshold is +inf, so every "
            f"image is called real. Add real images or raise target_fpr to at "
            f"least {1 / (n + 1):.3g}.",
            CalibrationWarning,
            stacklevel=3,  # past validate_params' wrapper: the caller
        )
        return float("inf")
    return float(np.sort(scores)[n - m])


def conformal_p_values(calibration_scores, scores):
    """Conformal p-values: how real each image looks, against known reals.

    ``p_real = (1 + #{calibration scores >= score}) / (n + 1)``: the share
    of the calibration images (counting the new image itself) that score at
    least as fake as it. Small values mean "unlike the real images"; an
    image is flagged by :func:`conformal_threshold` at ``target_fpr``
    exactly when ``p_real <= target_fpr``.

    For a new real image exchangeable with the calibration images,
    ``P(p_real <= a) <= a`` for every ``a`` in [0, 1] (and p_real is
    uniform on ``{1/(n+1), ..., 1}`` without ties).

    Parameters
    ----------
    calibration_scores : array-like of shape (n_calibration,)
        Scores of known-real images, larger meaning more likely fake.
    scores : array-like of shape (n_samples,)
        Scores of the images to test, from the same detector.

    Returns
    -------
    p_real : ndarray of shape (n_samples,)
        One p-value per image, in ``[1/(n+1), 1]``.

    See Also
    --------
    conformal_threshold : The threshold at one target FPR.

    Examples
    --------
    >>> from skacd.calibration import conformal_p_values
    >>> conformal_p_values([0.1, 0.2, 0.3, 0.4], [0.05, 0.25, 0.9])
    array([1. , 0.6, 0.2])
    """
    calibration = np.sort(_as_scores(calibration_scores, "calibration_scores"))
    scores = _as_scores(scores, "scores")
    n = calibration.size
    at_least = n - np.searchsorted(calibration, scores, side="left")
    return (1.0 + at_least) / (n + 1.0)


def _item_digest(item):
    """SHA-256 of one image (file bytes, PIL pixels or array) or feature row."""
    if isinstance(item, (str, os.PathLike)):
        h = hashlib.sha256(b"file:")
        with open(item, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
        return h.digest()
    if hasattr(item, "tobytes") and hasattr(item, "mode") and hasattr(item, "size"):
        header = f"PIL:{item.mode}:{item.size}:".encode()  # a PIL image
        return hashlib.sha256(header + item.tobytes()).digest()
    array = np.ascontiguousarray(item)
    header = f"array:{array.dtype.str}:{array.shape}:".encode()
    return hashlib.sha256(header + array.tobytes()).digest()


def calibration_fingerprint(X):
    """A fingerprint of a set of images, independent of their order.

    The SHA-256 of the sorted SHA-256 digests of the items: the bytes of
    each image file, the pixels of each PIL image or array, or each row of a
    feature matrix. Two calls on the same images, in any order, agree; one
    changed, added or removed image changes it. Detectors calibrated by
    :class:`ConformalThresholdClassifier` store it as
    ``calibration_fingerprint_`` so that you can check which images set
    their threshold.

    Parameters
    ----------
    X : sequence of str, os.PathLike, PIL.Image.Image or ndarray, or a 2-D array
        Image files or in-memory images, or a feature matrix (one row per
        image).

    Returns
    -------
    fingerprint : str
        ``"sha256:<64 hex digits>"``.

    Examples
    --------
    >>> import numpy as np
    >>> from skacd.calibration import calibration_fingerprint
    >>> X = np.arange(6.0).reshape(3, 2)
    >>> calibration_fingerprint(X) == calibration_fingerprint(X[::-1])
    True
    >>> calibration_fingerprint(X) == calibration_fingerprint(X[:2])
    False
    """
    array = np.asarray(X) if hasattr(X, "__array__") else None
    if array is not None and array.dtype.kind in "biuf" and array.ndim == 2:
        items = list(array)  # a feature matrix: one item per row
    else:
        from .featurizers._loading import as_items

        items = as_items(X)
    digests = sorted(_item_digest(item) for item in items)
    h = hashlib.sha256(f"skacd-calibration:{len(digests)}:".encode())
    for digest in digests:
        h.update(digest)
    return "sha256:" + h.hexdigest()


def _split_featurizer(estimator):
    """``(featurizer, head)`` of a Pipeline that starts with a featurizer."""
    steps = getattr(estimator, "steps", None)
    if steps and len(steps) > 1 and hasattr(steps[0][1], "featurize"):
        return steps[0][1], estimator[1:]
    return None, estimator


class ConformalThresholdClassifier(BaseThresholdClassifier):
    """A fitted detector whose threshold is set on known-real images only.

    ``fit`` scores images known to be real with the (already fitted)
    detector and sets ``threshold_`` to their conformal quantile
    (:func:`conformal_threshold`), so that for a new real image from the
    same distribution the probability of being called fake is at most
    ``target_fpr``. No generated image is needed. ``predict`` then calls an
    image fake when its score is above ``threshold_``, and :meth:`p_real`
    gives every image its conformal p-value against the calibration images,
    which are kept as sorted scores.

    It is a scikit-learn binary classifier built on the same base as
    :class:`~sklearn.model_selection.FixedThresholdClassifier` and
    :class:`~sklearn.model_selection.TunedThresholdClassifierCV`:
    ``predict_proba`` and ``decision_function`` are the wrapped detector's;
    only the threshold is new. It is the same as
    ``FixedThresholdClassifier(estimator, threshold=np.nextafter(threshold_,
    np.inf), response_method=response_method_)`` (which calls fake at
    ``>=``). With both real and generated images at hand,
    ``TunedThresholdClassifierCV`` optimises a metric instead; and
    :class:`~sklearn.calibration.CalibratedClassifierCV` recalibrates the
    probabilities.

    Parameters
    ----------
    estimator : estimator
        A *fitted* binary detector with ``predict_proba`` or
        ``decision_function``: typically the :class:`~sklearn.pipeline.Pipeline`
        of a featurizer, :class:`~skacd.AttributionSpace` and
        :class:`~skacd.AttributionClassifier`, or a
        :class:`~skacd.OneClassDetector`. It is used as is, never refitted
        (``clone`` gives an unfitted copy, which ``fit`` refuses).
    target_fpr : float in (0, 1), default=0.05
        The largest acceptable share of real images called fake.
    pos_label : int, float, bool, str or None, default=None
        The generated ("fake") class; None means ``classes_[1]``.
    response_method : {"auto", "predict_proba", "decision_function"}, default="auto"
        The score thresholded: ``"auto"`` uses ``predict_proba`` (the
        probability of ``pos_label``) when the detector has it, else
        ``decision_function``, as ``FixedThresholdClassifier`` does.

    Attributes
    ----------
    threshold_ : float
        Images scoring strictly above it are called fake; ``+inf`` (with a
        :class:`~skacd.exceptions.CalibrationWarning`) when there were too
        few calibration images.
    calibration_scores_ : ndarray of shape (`n_calibration_samples_`,)
        The calibration images' scores, sorted, for :meth:`p_real`.
    n_calibration_samples_ : int
        Known-real images the threshold was calibrated on (those that could
        not be loaded are left out, with a warning).
    calibration_fingerprint_ : str
        :func:`calibration_fingerprint` of those images.
    response_method_ : str
        The method that gives the thresholded score.
    classes_ : ndarray of shape (2,)
        The detector's classes.
    n_features_in_ : int
        Number of input features, when the detector has it.

    See Also
    --------
    conformal_threshold : The threshold from scores.
    conformal_p_values : The p-values from scores.
    OneClassDetector : A detector fitted on real images alone.
    sklearn.model_selection.FixedThresholdClassifier : A threshold set by hand.
    sklearn.model_selection.TunedThresholdClassifierCV : A threshold tuned on
        both classes.

    Notes
    -----
    The guarantee needs calibration images the detector was *not* fitted
    on, exchangeable with the real images it will meet; see
    :func:`conformal_threshold`. With fewer than
    :func:`min_calibration_samples` images (19 for 5%) no threshold can
    guarantee the target and a :class:`~skacd.exceptions.CalibrationWarning`
    says so.

    When ``estimator`` is a Pipeline that starts with a featurizer, ``fit``
    follows the featurizer's ``on_error``: ``"raise"`` stops at the first
    image that cannot be loaded (an :class:`~skacd.exceptions.ImageLoadError`
    naming it), ``"skip"`` leaves such images out of the calibration set with
    an :class:`~skacd.exceptions.ImageLoadWarning` listing them.

    See :ref:`operating_point` in the user guide.

    Examples
    --------
    >>> from sklearn.model_selection import train_test_split
    >>> from skacd import AttributionClassifier, ConformalThresholdClassifier
    >>> from skacd.datasets import make_generator_manifolds
    >>> X, y = make_generator_manifolds(n_samples=600, n_features=8, random_state=0)
    >>> X_fit, X_cal, y_fit, y_cal = train_test_split(X, y, random_state=0)
    >>> detector = AttributionClassifier(max_epochs=50, random_state=0)
    >>> detector = detector.fit(X_fit, y_fit)
    >>> calibrated = ConformalThresholdClassifier(detector, target_fpr=0.1)
    >>> calibrated = calibrated.fit(X_cal[y_cal == 0])  # known reals only
    >>> calibrated.n_calibration_samples_ == int((y_cal == 0).sum())
    True
    >>> p = calibrated.p_real(X_cal)
    >>> bool(((p <= 0.1) == (calibrated.predict(X_cal) == 1)).all())
    True
    """

    _parameter_constraints = {
        "estimator": [
            HasMethods(["predict_proba"]),
            HasMethods(["decision_function"]),
        ],
        "target_fpr": [Interval(Real, 0, 1, closed="neither")],
        "pos_label": [Real, str, "boolean", None],
        "response_method": [StrOptions({"auto", "predict_proba", "decision_function"})],
    }

    def __init__(self, estimator, *, target_fpr=0.05, pos_label=None,
                 response_method="auto"):
        super().__init__(estimator=estimator, response_method=response_method)
        self.target_fpr = target_fpr
        self.pos_label = pos_label

    @property
    def classes_(self):
        """The wrapped detector's class labels."""
        return self.estimator.classes_

    def _check_detector_fitted(self):
        try:
            check_is_fitted(self.estimator)
            self.estimator.classes_  # noqa: B018 - a classifier
        except (NotFittedError, AttributeError):
            raise NotFittedError(
                "ConformalThresholdClassifier calibrates an already fitted detector "
                "on known-real images; this "
                f"{type(self.estimator).__name__} is not fitted. Fit it first (it "
                "is never refitted here)."
            ) from None

    def _scores(self, estimator, X):
        scores, _, method = _get_response_values_binary(
            estimator,
            X,
            self._get_response_method(),
            pos_label=self.pos_label,
            return_response_method_used=True,
        )
        return np.asarray(scores, dtype=np.float64), method

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Set the threshold from images known to be real.

        Parameters
        ----------
        X : sequence of images or array-like of shape (n_samples, n_features)
            Known-real images (file paths, PIL images or arrays) for a
            pipeline that starts with a featurizer, or whatever the detector
            takes. They must not be images the detector was fitted on.
        y : array-like of shape (n_samples,), default=None
            None: every row is real. Otherwise only the rows whose label is
            the real (negative) class are used, and the others ignored.

        Returns
        -------
        self : ConformalThresholdClassifier
            The calibrated detector.
        """
        self._check_detector_fitted()
        classes = np.asarray(self.classes_)
        if classes.size != 2:
            raise ValueError(
                f"ConformalThresholdClassifier needs a binary detector; its classes_ "
                f"are {classes.tolist()}."
            )
        pos_label = classes[1] if self.pos_label is None else self.pos_label
        if pos_label not in classes.tolist():
            raise ValueError(
                f"pos_label={self.pos_label!r} is not one of the detector's classes "
                f"{classes.tolist()}."
            )
        featurizer, head = _split_featurizer(self.estimator)
        if featurizer is not None:
            from .featurizers._loading import as_items

            items = as_items(X)
        else:
            items = X
        if y is not None:
            y = np.asarray(y)
            if y.shape[0] != len(items):
                raise ValueError(
                    f"X and y have different lengths: {len(items)} and {y.shape[0]}."
                )
            real = np.flatnonzero(y != pos_label)
            if real.size == 0:
                raise ValueError(
                    f"y holds no real image (every label is pos_label={pos_label!r}); "
                    "calibration needs known-real images."
                )
            items = _safe_indexing(items, real)

        if featurizer is not None:
            result = featurizer.featurize(items)
            failed = sorted(result.errors)
            if failed:
                listed = "\n".join(f"  {result.errors[i]}" for i in failed[:20])
                more = len(failed) - 20
                warning = ImageLoadWarning(
                    f"{len(failed)} calibration image(s) could not be loaded and are "
                    f"left out of the calibration set:\n{listed}"
                    + (f"\n  ... and {more} more" if more > 0 else "")
                )
                warning.errors = [result.errors[i] for i in failed]  # ImageLoadError
                warnings.warn(warning, stacklevel=3)  # the caller of fit
            keep = [i for i in range(len(items)) if i not in result.errors]
            items = [items[i] for i in keep]
            if not items:
                raise ValueError(
                    "None of the calibration images could be loaded; nothing to "
                    "calibrate on."
                )
            scores, method = self._scores(head, result.features[keep])
        else:
            scores, method = self._scores(self.estimator, items)
        scores = _as_scores(scores, "the detector's scores of the calibration images")
        if scores.size == 0:
            raise ValueError("No calibration image: X is empty.")
        self.threshold_ = conformal_threshold(scores, self.target_fpr)
        self.calibration_scores_ = np.sort(scores)
        self.n_calibration_samples_ = int(scores.size)
        self.calibration_fingerprint_ = calibration_fingerprint(items)
        self.response_method_ = method
        for name in ("n_features_in_", "feature_names_in_"):
            if hasattr(self.estimator, name):
                setattr(self, name, getattr(self.estimator, name))
        return self

    def _positive_negative(self):
        classes = np.asarray(self.classes_)
        pos_label = classes[1] if self.pos_label is None else self.pos_label
        positive = int(np.flatnonzero(classes == pos_label)[0])
        return classes[positive], classes[1 - positive]

    def score_response(self, X):
        """The score that is thresholded: larger means more likely fake.

        Parameters
        ----------
        X : sequence of images or array-like
            What the detector takes.

        Returns
        -------
        scores : ndarray of shape (n_samples,)
            ``predict_proba(X)[:, pos]`` or ``decision_function(X)`` (as
            ``response_method_`` says).
        """
        check_is_fitted(self, "threshold_")
        scores, _ = self._scores(self.estimator, X)
        return scores

    def predict(self, X):
        """Call an image fake when its score is above ``threshold_``.

        Parameters
        ----------
        X : sequence of images or array-like
            What the detector takes.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            ``pos_label`` where the score is ``> threshold_``, the other
            class elsewhere.
        """
        scores = self.score_response(X)
        positive, negative = self._positive_negative()
        return np.where(scores > self.threshold_, positive, negative)

    def p_real(self, X):
        """Conformal p-value of each image against the calibration images.

        ``(1 + #{calibration scores >= score}) / (n + 1)``: small means
        unlike the known-real images. ``p_real(X) <= target_fpr`` exactly
        where ``predict`` says fake.

        Parameters
        ----------
        X : sequence of images or array-like
            What the detector takes.

        Returns
        -------
        p_real : ndarray of shape (n_samples,)
            In ``[1 / (n_calibration_samples_ + 1), 1]``.
        """
        return conformal_p_values(self.calibration_scores_, self.score_response(X))

    def _without_featurizer(self):
        """A view of this detector on features: the wrapped pipeline minus its
        featurizer (for callers that featurize themselves, like ``skacd
        predict``)."""
        import copy

        featurizer, head = _split_featurizer(self.estimator)
        view = copy.copy(self)
        view.estimator = head
        return featurizer, view
