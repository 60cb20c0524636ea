"""The light classifier trained on attributions."""

from numbers import Real

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import type_of_target

from ._compat import (
    Interval,
    StrOptions,
    _fit_context,
    check_is_fitted,
    validate_data,
)
from ._constraints import PositiveIntSizes
from ._modules import ACTIVATIONS, BinaryHead
from ._torch import TorchModuleStateMixin, draw_seed, resolve_device
from ._training import TorchTrainerMixin

__all__ = ["AttributionClassifier"]


def _bce_loss(module, xb, yb):
    return torch.nn.functional.binary_cross_entropy_with_logits(module(xb), yb)


class AttributionClassifier(
    TorchTrainerMixin, TorchModuleStateMixin, ClassifierMixin, BaseEstimator
):
    """A light binary classifier trained with binary cross-entropy.

    The head :math:`C` of arXiv:2603.00717: a small multi-layer perceptron on
    the attributions :math:`A(x)` from :class:`~skacd.AttributionSpace`,
    trained with BCE and Adam (learning rate 2e-4, batch 256, as in the
    paper). It works on any feature matrix, so it also serves as the linear
    probe baseline with ``hidden_layer_sizes=()``.

    Parameters
    ----------
    hidden_layer_sizes : array-like of int, default=(64,)
        Hidden widths; ``()`` is logistic regression.
    activation : {"relu", "gelu", "tanh", "leaky_relu", "identity"}, default="relu"
        Activation between layers.
    dropout : float, default=0.0
        Dropout after each hidden activation.
    max_epochs : int, default=200
        Most passes over the training rows.
    learning_rate : float, default=2e-4
        Adam's step size.
    batch_size : int, default=256
        Rows per step.
    weight_decay : float, default=0.0
        Adam's L2 penalty.
    early_stopping : bool, default=False
        Hold out a stratified ``validation_fraction`` and stop when its loss
        stops improving; the best weights are kept.
    validation_fraction : float, default=0.1
        Share held out for early stopping.
    n_iter_no_change : int, default=10
        Patience, in epochs.
    tol : float, default=1e-6
        Smallest loss improvement that resets the patience.
    standardize : bool, default=True
        Standardise inputs with the training rows' mean and standard deviation
        (kept inside the module). Attribution residuals are small numbers;
        without it Adam at 2e-4 needs many more epochs.
    device : {"auto", "cpu", "cuda"} or torch.device, default="auto"
        Where to train; ``"auto"`` is CUDA when available.
    random_state : int, RandomState instance or None, default=None
        Seeds initialisation, batch order and the validation split, without
        touching global RNG state.
    verbose : int, default=0
        Progress bar when positive.

    Attributes
    ----------
    classes_ : ndarray of shape (2,)
        The two labels; ``classes_[1]`` is the positive ("fake") class.
    module_ : torch.nn.Module
        The fitted head.
    module_config_ : dict
        Arguments that rebuild ``module_``.
    device_ : str
        The device used.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during fit, when ``X`` had string column names.
    loss_curve_ : list of float
        BCE per epoch.
    validation_scores_ : list of float or None
        Negative validation BCE per epoch, when early stopping.
    n_iter_ : int
        Epochs run.

    See Also
    --------
    AttributionSpace : Produces the attributions this head is trained on.
    sklearn.neural_network.MLPClassifier : The same idea with scikit-learn's solvers.

    Examples
    --------
    >>> from skacd import AttributionClassifier
    >>> from skacd.datasets import make_generator_manifolds
    >>> X, y = make_generator_manifolds(n_samples=400, n_features=16, random_state=0)
    >>> clf = AttributionClassifier(max_epochs=300, learning_rate=1e-3, random_state=0)
    >>> clf = clf.fit(X, y)
    >>> clf.predict_proba(X[:2]).shape
    (2, 2)
    >>> bool(clf.score(X, y) > 0.8)
    True
    """

    _torch_modules = ("module",)

    _parameter_constraints = {
        "hidden_layer_sizes": [PositiveIntSizes()],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        **TorchTrainerMixin._training_parameter_constraints,
        "standardize": ["boolean"],
    }

    def __init__(
        self,
        hidden_layer_sizes=(64,),
        *,
        activation="relu",
        dropout=0.0,
        max_epochs=200,
        learning_rate=2e-4,
        batch_size=256,
        weight_decay=0.0,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=10,
        tol=1e-6,
        standardize=True,
        device="auto",
        random_state=None,
        verbose=0,
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.dropout = dropout
        self.max_epochs = max_epochs
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.weight_decay = weight_decay
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.standardize = standardize
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Train the head on ``X`` with binary labels ``y``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Attributions (or any features).
        y : array-like of shape (n_samples,)
            Exactly two distinct labels, of any type; the larger one in sorted
            order (e.g. 1, or "fake") is the positive class.

        Returns
        -------
        self : AttributionClassifier
            The fitted estimator.
        """
        X, y = validate_data(self, X, y, dtype=[np.float32, np.float64])
        X = X.astype(np.float32, copy=False)
        target_type = type_of_target(y, input_name="y", raise_unknown=True)
        self.classes_, y_encoded = np.unique(y, return_inverse=True)
        if target_type != "binary" or len(self.classes_) != 2:
            raise ValueError(
                "Only binary classification is supported: AttributionClassifier "
                f"needs exactly 2 classes in y; got {len(self.classes_)} class(es) "
                f"{self.classes_.tolist()[:10]} (target type {target_type!r})."
            )
        self.device_ = str(resolve_device(self.device))
        seed = draw_seed(check_random_state(self.random_state))
        self.module_config_ = {
            "n_features": int(X.shape[1]),
            "hidden_layer_sizes": [int(h) for h in np.ravel(self.hidden_layer_sizes)],
            "activation": self.activation,
            "dropout": float(self.dropout),
        }
        self.module_, history = self._fit_new_module(
            _bce_loss,
            X,
            y_encoded.astype(np.float32),
            seed=seed,
            desc="AttributionClassifier",
            standardize=self.standardize,
            stratify=y_encoded if self.early_stopping else None,
        )
        self._record_history(history)
        return self

    def _build_module(self, name, config):
        return BinaryHead(**config)

    def decision_function(self, X):
        """Logit of the positive class ``classes_[1]``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Features.

        Returns
        -------
        scores : ndarray of shape (n_samples,)
            Positive values predict ``classes_[1]``.
        """
        check_is_fitted(self)
        X = validate_data(self, X, dtype=[np.float32, np.float64], reset=False)
        return self._forward_batches(self.module_, X)

    def predict_proba(self, X):
        """Class probabilities, columns in the order of ``classes_``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Features.

        Returns
        -------
        proba : ndarray of shape (n_samples, 2)
            ``proba[:, 1]`` is the probability of ``classes_[1]`` (generated).
        """
        logits = self.decision_function(X).astype(np.float64)
        p = 1.0 / (1.0 + np.exp(-logits))
        return np.column_stack([1.0 - p, p])

    def predict_log_proba(self, X):
        """Logarithm of :meth:`predict_proba`.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Features.

        Returns
        -------
        log_proba : ndarray of shape (n_samples, 2)
            Log-probabilities.
        """
        logits = self.decision_function(X).astype(np.float64)
        return np.column_stack(
            [-np.logaddexp(0, logits), -np.logaddexp(0, -logits)]
        )

    def predict(self, X):
        """Predicted labels: ``classes_[1]`` where the logit is positive.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Features.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            Labels from ``classes_``.
        """
        positive = self.decision_function(X) > 0
        return self.classes_[positive.astype(int)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False
        return tags
