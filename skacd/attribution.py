"""The attribution space: an autoencoder fitted on one class only."""

from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import BaseEstimator, OutlierMixin, TransformerMixin
from sklearn.model_selection import KFold
from sklearn.utils import check_random_state, column_or_1d
from sklearn.utils.validation import check_consistent_length

from ._compat import (
    HasMethods,
    Interval,
    StrOptions,
    _check_feature_names_in,
    _fit_context,
    check_is_fitted,
    validate_data,
)
from ._constraints import PositiveIntSizes
from ._modules import ACTIVATIONS, AutoEncoder, LinearAutoEncoder
from ._torch import TorchModuleStateMixin, draw_seed, resolve_device
from ._training import TorchTrainerMixin

__all__ = ["AttributionSpace"]


def _mean_abs_residual(module, xb, _):
    return module(xb).mean()


def _negative_row_mean(A):
    # Casting first keeps the reduction unbuffered: one pairwise sum per row,
    # whatever the other rows (a casting reduction is split at buffer ends).
    return -A.astype(np.float64).mean(axis=1)


class AttributionSpace(
    TorchTrainerMixin,
    TorchModuleStateMixin,
    OutlierMixin,
    TransformerMixin,
    BaseEstimator,
):
    """Map features to their residual off a manifold learned from one class.

    An encoder-decoder :math:`D(E(\\cdot))` is fitted on the rows of one class
    only (``source_class``: the real photos by default, or the images of one
    generator) by minimising the mean L1 reconstruction error

    .. math:: \\mathcal{L} = \\mathbb{E}_{x \\in \\text{source}}
              \\lVert x - D(E(x)) \\rVert_1 .

    The *attribution* of any row is the absolute residual
    :math:`A(x) = |x - D(E(x))|`, with the same dimension as :math:`x`
    (arXiv:2603.00717, Sec. 3). Rows from the other class lie off the learned
    manifold and get larger, differently shaped residuals, which a light
    classifier (:class:`~skacd.AttributionClassifier`) separates more easily
    than the raw features.

    Cross-fitting: with ``cv`` (the default), :meth:`fit_transform` returns
    *out-of-fold* attributions for the source-class rows, each computed by an
    autoencoder that never saw that row, so that a downstream classifier sees
    the residuals it will meet on new images. :meth:`transform` always uses
    the autoencoder fitted on all source rows. Therefore
    ``fit(X, y).transform(X)`` does not equal ``fit_transform(X, y)`` (they
    differ exactly on the source-class rows). ``cv=None`` gives the paper's
    plain scheme.

    Parameters
    ----------
    source_class : int, str or bool, default=0
        The label, in ``y``, of the class the autoencoder is fitted on. Ignored
        when ``fit`` gets ``y=None`` (every row is then a source row).
    solver : {"adam", "pca"}, default="adam"
        ``"adam"``: the paper's torch autoencoder, trained with Adam on the
        L1 loss. ``"pca"``: the closed-form linear autoencoder, the
        projection of the standardised rows on their ``latent_dim`` leading
        principal axes (``sklearn.decomposition.PCA``); deterministic, and
        thousands of times faster. With ``"pca"`` the parameters
        ``hidden_layer_sizes``, ``activation`` and the training parameters
        (``max_epochs`` to ``tol``) are not used.
    hidden_layer_sizes : array-like of int, default=(512,)
        Widths of the encoder's hidden layers; the decoder mirrors them.
        ``()`` gives a linear encoder and decoder.
    latent_dim : int or float, default=128
        Width of the bottleneck :math:`E(x)`. With ``solver="pca"``, the
        number of principal axes kept (at most the number of source rows
        minus one and the number of features), or a float in (0, 1): keep
        the fewest axes that explain this share of the variance of the
        standardised source rows, as ``PCA(n_components=0.9)`` does
        (``n_components_`` says how many).
    activation : {"relu", "gelu", "tanh", "leaky_relu", "identity"}, default="relu"
        Activation between layers.
    max_epochs : int, default=200
        Most passes over the source rows.
    learning_rate : float, default=2e-4
        Adam's step size (the paper's value).
    batch_size : int, default=256
        Rows per optimiser step (the paper's value).
    weight_decay : float, default=0.0
        Adam's L2 penalty.
    early_stopping : bool, default=True
        Hold out ``validation_fraction`` of the source rows and stop when
        their loss has not improved for ``n_iter_no_change`` epochs; the best
        weights are kept.
    validation_fraction : float, default=0.1
        Share of source rows held out for early stopping.
    n_iter_no_change : int, default=10
        Patience of early stopping (on the training loss without it).
    tol : float, default=1e-6
        Smallest loss improvement that resets the patience.
    cv : int, cross-validation splitter or None, default=5
        Folds for the cross-fitted :meth:`fit_transform`; ``None`` disables
        cross-fitting. A splitter (e.g.
        :class:`~skacd.augmentation.CopyKFold`, for augmented copies of the
        training images) splits the source-class rows; ``shuffle`` is then
        its own. Costs ``cv`` extra autoencoder fits in
        ``fit_transform`` only.
    shuffle : bool, default=True
        Whether the cross-fitting folds are shuffled.
    contamination : float in (0, 0.5], default=0.1
        Share of training source rows :meth:`predict` calls outliers; sets
        ``offset_``.
    device : {"auto", "cpu", "cuda"} or torch.device, default="auto"
        Where to train; ``"auto"`` is CUDA when available.
    random_state : int, RandomState instance or None, default=None
        Seeds the weight initialisation, batch order, validation split and
        folds. The caller's global torch and numpy RNG states are untouched.
    verbose : int, default=0
        Show a progress bar per fit when positive.

    Attributes
    ----------
    module_ : torch.nn.Module
        The autoencoder fitted on all source rows.
    module_config_ : dict
        The arguments that rebuild ``module_`` (used by pickling and
        :func:`skacd.save`).
    device_ : str
        The device actually used.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during fit, when ``X`` had string column names.
    n_source_samples_ : int
        Rows the autoencoder was fitted on.
    n_components_ : int
        Width of the bottleneck actually used (``latent_dim``, or less with
        ``solver="pca"`` on few rows).
    loss_curve_ : list of float
        Training loss (mean L1) per epoch of ``module_`` (one entry, the
        final loss, with ``solver="pca"``).
    validation_scores_ : list of float or None
        Negative validation loss per epoch, when early stopping.
    n_iter_ : int
        Epochs run for ``module_``.
    offset_ : float
        ``score_samples`` threshold: the ``contamination`` quantile of the
        in-sample scores of the source rows (optimistic: the autoencoder saw
        those rows).

    See Also
    --------
    AttributionClassifier : The classifier trained on the attributions.
    sklearn.preprocessing.TargetEncoder : The cross-fitting precedent.

    Notes
    -----
    Inputs are standardised inside the module with statistics of the source
    rows, which only reparametrises the autoencoder: the loss and the
    attribution stay in the units of ``X``.

    References
    ----------
    .. [1] Single-class attribution modeling for AI-generated image detection,
       arXiv:2603.00717.

    Examples
    --------
    >>> from skacd import AttributionSpace
    >>> from skacd.datasets import make_generator_manifolds
    >>> X, y = make_generator_manifolds(n_samples=200, n_features=32, random_state=0)
    >>> space = AttributionSpace(latent_dim=8, max_epochs=20, random_state=0)
    >>> A = space.fit_transform(X, y)
    >>> A.shape
    (200, 32)
    >>> bool((A[y == 1].mean() > A[y == 0].mean()))
    True
    """

    _torch_modules = ("module",)

    _parameter_constraints = {
        "source_class": "no_validation",
        "solver": [StrOptions({"adam", "pca"})],
        "hidden_layer_sizes": [PositiveIntSizes()],
        "latent_dim": [
            Interval(Integral, 1, None, closed="left"),
            Interval(Real, 0, 1, closed="neither"),
        ],
        "activation": [StrOptions(set(ACTIVATIONS))],
        **TorchTrainerMixin._training_parameter_constraints,
        "cv": [
            Interval(Integral, 2, None, closed="left"),
            HasMethods(["split", "get_n_splits"]),
            None,
        ],
        "shuffle": ["boolean"],
        "contamination": [Interval(Real, 0, 0.5, closed="right")],
    }

    def __init__(
        self,
        source_class=0,
        *,
        solver="adam",
        hidden_layer_sizes=(512,),
        latent_dim=128,
        activation="relu",
        max_epochs=200,
        learning_rate=2e-4,
        batch_size=256,
        weight_decay=0.0,
        early_stopping=True,
        validation_fraction=0.1,
        n_iter_no_change=10,
        tol=1e-6,
        cv=5,
        shuffle=True,
        contamination=0.1,
        device="auto",
        random_state=None,
        verbose=0,
    ):
        self.source_class = source_class
        self.solver = solver
        self.hidden_layer_sizes = hidden_layer_sizes
        self.latent_dim = latent_dim
        self.activation = activation
        self.max_epochs = max_epochs
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.weight_decay = weight_decay
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.cv = cv
        self.shuffle = shuffle
        self.contamination = contamination
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    # -- fitting -----------------------------------------------------------

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Fit the autoencoder on the ``source_class`` rows of ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Features, e.g. from :class:`~skacd.CLIPFeaturizer`.
        y : array-like of shape (n_samples,), default=None
            Labels; only rows equal to ``source_class`` are used. ``None``
            uses every row.

        Returns
        -------
        self : AttributionSpace
            The fitted estimator.
        """
        X, source = self._validate_fit_input(X, y)
        self._fit_full(X[source])
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    def fit_transform(self, X, y=None):
        """Fit, then return cross-fitted attributions of ``X``.

        With ``cv``, each source-class row's attribution comes from an
        autoencoder fitted on the other folds of source rows; other rows use
        the autoencoder fitted on all source rows (as :meth:`transform`
        does). So ``fit(X, y).transform(X)`` does not equal
        ``fit_transform(X, y)``: they differ on the source rows.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Features.
        y : array-like of shape (n_samples,), default=None
            Labels; ``None`` treats every row as a source row.

        Returns
        -------
        A : ndarray of shape (n_samples, n_features), dtype float32
            Attributions :math:`|x - D(E(x))|`.
        """
        X, source = self._validate_fit_input(X, y)
        self._fit_full(X[source])
        A = self._attribute(self.module_, X)
        if self.cv is None:
            return A
        source_rows = np.flatnonzero(source)
        if not isinstance(self.cv, Integral):
            # A splitter (e.g. skacd.augmentation.CopyKFold, which keeps the
            # augmented copies of one image in one fold) splits the source rows.
            y_source = None if y is None else np.asarray(y)[source_rows]
            splits = self.cv.split(X[source_rows], y_source)
            for k, (train, held_out) in enumerate(splits):
                module, _ = self._train(X[source_rows[train]], self._cv_seeds[k], k)
                A[source_rows[held_out]] = self._attribute(
                    module, X[source_rows[held_out]]
                )
            return A
        if source_rows.size < self.cv:
            raise ValueError(
                f"cv={self.cv} folds need at least {self.cv} rows of source_class="
                f"{self.source_class!r}; got {source_rows.size}. Lower cv or pass "
                "cv=None to disable cross-fitting."
            )
        folds = KFold(
            self.cv,
            shuffle=self.shuffle,
            random_state=self._fold_seed if self.shuffle else None,
        )
        for k, (train, held_out) in enumerate(folds.split(source_rows)):
            module, _ = self._train(X[source_rows[train]], self._cv_seeds[k], k)
            A[source_rows[held_out]] = self._attribute(module, X[source_rows[held_out]])
        return A

    def _validate_fit_input(self, X, y):
        X = validate_data(self, X, dtype=[np.float32, np.float64], reset=True)
        X = X.astype(np.float32, copy=False)
        if X.shape[0] < 2:
            raise ValueError(
                "AttributionSpace needs at least 2 rows of the source class; got "
                "n_samples = 1 (1 sample)."
            )
        if y is None:
            source = np.ones(X.shape[0], dtype=bool)
        else:
            y = column_or_1d(y, warn=True)
            check_consistent_length(X, y)
            source = y == self.source_class
            if not source.any():
                present = np.unique(y).tolist()
                raise ValueError(
                    f"y holds no row of source_class={self.source_class!r}; labels "
                    f"present: {present}. Set source_class to one of them."
                )
        if source.sum() < 2:
            raise ValueError(
                "AttributionSpace needs at least 2 rows of the source class "
                f"source_class={self.source_class!r}; got 1 sample."
            )
        return X, source

    def _fit_full(self, X_source):
        self.device_ = str(resolve_device(self.device))
        rng = check_random_state(self.random_state)
        seed = draw_seed(rng)
        self._fold_seed = draw_seed(rng)
        n_folds = self._n_folds()
        self._cv_seeds = [draw_seed(rng) for _ in range(n_folds)]
        if self.solver == "pca":
            n_features = int(X_source.shape[1])
            self.module_config_ = {"solver": "pca", "n_features": n_features}
        else:
            if not isinstance(self.latent_dim, Integral):
                raise ValueError(
                    f"latent_dim={self.latent_dim!r} (a share of variance) needs "
                    "solver='pca'; the 'adam' autoencoder takes an int."
                )
            self.module_config_ = {
                "n_features": int(X_source.shape[1]),
                "hidden_layer_sizes": [
                    int(h) for h in np.ravel(self.hidden_layer_sizes)
                ],
                "latent_dim": int(self.latent_dim),
                "activation": self.activation,
            }
        self.module_, history = self._train(X_source, seed, None)
        if self.solver == "pca":
            self.module_config_["latent_dim"] = int(self.module_.components.shape[0])
        self.n_source_samples_ = int(X_source.shape[0])
        self.n_components_ = int(self.module_config_["latent_dim"])
        self._record_history(history)
        self.offset_ = float(
            np.percentile(self._score(self.module_, X_source), 100 * self.contamination)
        )

    def _n_folds(self):
        if self.cv is None:
            return 0
        if isinstance(self.cv, Integral):
            return int(self.cv)
        return int(self.cv.get_n_splits())

    def _train(self, X_source, seed, fold):
        device = torch.device(self.device_)
        if self.solver == "pca":
            latent_dim = self.latent_dim
            if not isinstance(latent_dim, Integral):
                latent_dim = float(latent_dim)
            module = LinearAutoEncoder.fit(X_source, latent_dim).to(device).eval()
            loss = float(self._attribute(module, X_source).mean(dtype=np.float64))
            history = {"loss_curve": [loss], "validation_scores": None, "n_iter": 1}
            return module, history
        desc = "AttributionSpace"
        if fold is not None:
            desc += f" (cross-fit fold {fold + 1}/{self._n_folds()})"
        return self._fit_new_module(_mean_abs_residual, X_source, seed=seed, desc=desc)

    def _build_module(self, name, config):
        if config.get("solver") == "pca":
            config = {k: v for k, v in config.items() if k != "solver"}
            return LinearAutoEncoder(**config)
        return AutoEncoder(**config)

    # -- inference ---------------------------------------------------------

    def _attribute(self, module, X):
        return self._forward_batches(module, X)

    def _score(self, module, X):
        return self._forward_batches(module, X, finish=_negative_row_mean)

    def _check_X(self, X):
        check_is_fitted(self, "module_")
        X = validate_data(self, X, dtype=[np.float32, np.float64], reset=False)
        return X.astype(np.float32, copy=False)

    def transform(self, X):
        """Return the attributions :math:`|x - D(E(x))|` under ``module_``.

        Uses the autoencoder fitted on all source rows; see
        :meth:`fit_transform` for the cross-fitted version used in training,
        which differs on the source rows.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Features.

        Returns
        -------
        A : ndarray of shape (n_samples, n_features), dtype float32
            Attributions.
        """
        X = self._check_X(X)
        return self._attribute(self.module_, X)

    def score_samples(self, X):
        """Negative mean absolute residual: bigger is more like the source class.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Features.

        Returns
        -------
        scores : ndarray of shape (n_samples,)
            ``-mean(|x - D(E(x))|)`` per row.
        """
        X = self._check_X(X)
        return self._score(self.module_, X)

    def decision_function(self, X):
        """``score_samples(X) - offset_``: negative for outliers of the source class.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Features.

        Returns
        -------
        scores : ndarray of shape (n_samples,)
            Shifted scores.
        """
        scores = self.score_samples(X)
        return scores - self.offset_

    def predict(self, X):
        """+1 for rows like the source class, -1 for outliers.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Features.

        Returns
        -------
        labels : ndarray of shape (n_samples,)
            +1 inliers, -1 outliers.
        """
        return np.where(self.decision_function(X) < 0, -1, 1)

    def get_feature_names_out(self, input_features=None):
        """Get the names of the attribution columns: ``attribution_<input name>``.

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Input feature names; defaults to ``feature_names_in_`` or
            ``x0, x1, ...``.

        Returns
        -------
        feature_names_out : ndarray of str objects
            One name per input feature.
        """
        check_is_fitted(self, "n_features_in_")
        names = _check_feature_names_in(self, input_features)
        return np.asarray([f"attribution_{name}" for name in names], dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags
