"""A detector fitted on real images alone, thresholded at a target FPR."""

from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.model_selection import KFold
from sklearn.utils import check_random_state, column_or_1d
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import check_consistent_length

from ._compat import (
    HasMethods,
    Interval,
    _fit_context,
    check_is_fitted,
    validate_data,
)
from ._torch import draw_seed
from .attribution import AttributionSpace
from .calibration import (
    calibration_fingerprint,
    conformal_p_values,
    conformal_threshold,
)

__all__ = ["OneClassDetector"]


class OneClassDetector(ClassifierMixin, BaseEstimator):
    """Detect generated images with a model of real images only.

    The score of an image is its deviation from the attribution space
    fitted on real features: ``-AttributionSpace.score_samples``, the mean
    absolute reconstruction residual, larger meaning more likely fake. The
    threshold is set on real images the scoring model never saw: the real
    rows are split into ``cv`` folds, an attribution space is fitted on all
    folds but one and scores the held-out fold, and ``threshold_`` is the
    conformal quantile (:func:`~skacd.calibration.conformal_threshold`) of
    these out-of-fold scores at ``target_fpr``. The attribution space that
    scores new images (``space_``) is then fitted on every real row.

    No generated image is needed, so the detector does not depend on which
    generators one happened to train against; in exchange it separates
    less well than a detector trained on both classes (see the benchmark).

    Parameters
    ----------
    space : AttributionSpace or None, default=None
        The (unfitted) attribution space; None means ``AttributionSpace()``.
        Its ``source_class`` is ignored: every row given to ``fit`` is real.
        When its ``random_state`` is None, each fit gets a seed drawn from
        ``random_state``.
    target_fpr : float in (0, 1), default=0.05
        The share of real images that may be called fake.
    cv : int, default=5
        Folds of the cross-fitted calibration (at least 2); costs ``cv``
        extra attribution-space fits.
    shuffle : bool, default=True
        Whether the folds are shuffled.
    random_state : int, RandomState instance or None, default=None
        Seeds the folds and, where ``space.random_state`` is None, the fits.

    Attributes
    ----------
    space_ : AttributionSpace
        The attribution space fitted on all real rows; it scores new images.
    threshold_ : float
        Deviation above which an image is called fake.
    calibration_scores_ : ndarray of shape (`n_calibration_samples_`,)
        The out-of-fold deviations of the real rows, sorted (for
        :meth:`p_real`).
    n_calibration_samples_ : int
        Real rows calibrated on (every row given to ``fit``).
    calibration_fingerprint_ : str
        :func:`~skacd.calibration.calibration_fingerprint` of those rows.
    classes_ : ndarray of shape (2,)
        ``[0, 1]``: 0 real, 1 generated.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during fit, when ``X`` had string column names.

    See Also
    --------
    AttributionSpace : The model of real images.
    ConformalThresholdClassifier : Recalibrate any detector (this one too) on
        your own real images.

    Notes
    -----
    Cross-fitted calibration is *cross-conformal*: each held-out score comes
    from a model that never saw that image, but the model that scores new
    images (fitted on all rows) is not the one that scored the calibration
    rows. Its false-positive rate is close to ``target_fpr`` in practice
    and, as a model fitted on more real images reconstructs real images at
    least as well, usually below it; the worst-case bound of cross-conformal
    methods is ``2 * target_fpr``. For the exact finite-sample guarantee of
    :func:`~skacd.calibration.conformal_threshold`, recalibrate on real
    images held out of ``fit`` with
    :class:`~skacd.ConformalThresholdClassifier`.

    See :ref:`operating_point` in the user guide.

    Examples
    --------
    >>> from skacd import AttributionSpace, OneClassDetector
    >>> from skacd.datasets import make_generator_manifolds
    >>> X, y = make_generator_manifolds(n_samples=400, n_features=16, random_state=0)
    >>> space = AttributionSpace(latent_dim=4, max_epochs=20)
    >>> detector = OneClassDetector(space, cv=3, random_state=0)
    >>> detector = detector.fit(X[y == 0])  # real rows only
    >>> detector.n_calibration_samples_
    200
    >>> detector.predict(X[:4]).shape, detector.p_real(X[:4]).shape
    ((4,), (4,))
    """

    _parameter_constraints = {
        "space": [HasMethods(["fit", "score_samples"]), None],
        "target_fpr": [Interval(Real, 0, 1, closed="neither")],
        "cv": [Interval(Integral, 2, None, closed="left")],
        "shuffle": ["boolean"],
        "random_state": ["random_state"],
    }

    def __init__(self, space=None, *, target_fpr=0.05, cv=5, shuffle=True,
                 random_state=None):
        self.space = space
        self.target_fpr = target_fpr
        self.cv = cv
        self.shuffle = shuffle
        self.random_state = random_state

    def _new_space(self, rng):
        space = AttributionSpace() if self.space is None else clone(self.space)
        params = space.get_params(deep=False)
        if "random_state" in params and params["random_state"] is None:
            space.set_params(random_state=draw_seed(rng))
        return space

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y=None):
        """Fit the attribution space on real rows and calibrate the threshold.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Features of real images (e.g. from a featurizer).
        y : array-like of shape (n_samples,), default=None
            None: every row is real. Otherwise only the rows labelled 0
            (real) are used.

        Returns
        -------
        self : OneClassDetector
            The fitted detector.
        """
        X = validate_data(self, X, dtype=[np.float32, np.float64], reset=True)
        n_samples = X.shape[0]
        if y is not None:
            y = column_or_1d(y, warn=True)
            check_consistent_length(X, y)
            target = type_of_target(y, input_name="y", raise_unknown=True)
            if target not in ("binary", "multiclass") or np.unique(y).size > 2:
                raise ValueError(
                    "Only binary classification is supported: OneClassDetector takes "
                    "y=None (every row real) or labels with 0 for real; got target "
                    f"type {target!r}, labels {np.unique(y)[:10].tolist()}."
                )
            if not np.any(y == 0):
                raise ValueError(
                    "y holds no row labelled 0 (real); OneClassDetector fits on the "
                    f"real rows only. Labels present: {np.unique(y).tolist()} "
                    f"(n_samples = {n_samples})."
                )
            X = X[y == 0]
        if X.shape[0] < self.cv:
            raise ValueError(
                f"OneClassDetector needs at least cv={self.cv} real rows to "
                f"cross-fit its calibration; got {X.shape[0]} (n_samples = "
                f"{n_samples})."
            )
        rng = check_random_state(self.random_state)
        folds = KFold(
            self.cv,
            shuffle=self.shuffle,
            random_state=draw_seed(rng) if self.shuffle else None,
        )
        held_out = np.empty(X.shape[0], dtype=np.float64)
        for train, test in folds.split(X):
            space = self._new_space(rng).fit(X[train])
            held_out[test] = -space.score_samples(X[test])
        self.space_ = self._new_space(rng).fit(X)
        self.threshold_ = conformal_threshold(held_out, self.target_fpr)
        self.calibration_scores_ = np.sort(held_out)
        self.n_calibration_samples_ = int(X.shape[0])
        self.calibration_fingerprint_ = calibration_fingerprint(X)
        self.classes_ = np.array([0, 1])
        return self

    def deviation(self, X):
        """The raw score: ``-space_.score_samples(X)``, larger is more likely fake.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Features.

        Returns
        -------
        deviation : ndarray of shape (n_samples,)
            Mean absolute reconstruction residual of each row.
        """
        check_is_fitted(self)
        X = validate_data(self, X, dtype=[np.float32, np.float64], reset=False)
        return -np.asarray(self.space_.score_samples(X), dtype=np.float64)

    def decision_function(self, X):
        """``deviation(X) - threshold_``: positive means called fake.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Features.

        Returns
        -------
        scores : ndarray of shape (n_samples,)
            Larger is more likely fake; the sign gives :meth:`predict`.
        """
        return self.deviation(X) - self.threshold_

    def predict(self, X):
        """1 (fake) where the deviation is above ``threshold_``, else 0 (real).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Features.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            0 or 1.
        """
        fake = self.decision_function(X) > 0
        return self.classes_[fake.astype(int)]

    def p_real(self, X):
        """Conformal p-value of each row against the held-out real scores.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Features.

        Returns
        -------
        p_real : ndarray of shape (n_samples,)
            ``(1 + #{calibration deviations >= deviation}) / (n + 1)``;
            ``p_real(X) <= target_fpr`` exactly where ``predict`` says 1.
        """
        return conformal_p_values(self.calibration_scores_, self.deviation(X))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False
        return tags
