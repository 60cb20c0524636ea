"""Cross-validation across generators: train on some, test on the unseen ones."""

from numbers import Integral, Real

import numpy as np
from sklearn.model_selection import BaseCrossValidator
from sklearn.utils import check_random_state, indexable
from sklearn.utils.validation import check_consistent_length, column_or_1d

__all__ = ["CrossGeneratorSplit"]


def _is_name(value):
    """A single group name (str or scalar), not a collection of names."""
    return isinstance(value, (str, bytes)) or not hasattr(value, "__iter__")


class CrossGeneratorSplit(BaseCrossValidator):
    """Train on source generators, test on every other (unseen) generator.

    A leave-generators-out cross-validator over ``groups``: each split trains
    on the samples of one or more *source* groups and tests on samples of the
    other groups, which the model never saw. It is the reverse of
    :class:`~sklearn.model_selection.LeaveOneGroupOut`, which tests on one
    group and trains on the rest, and the protocol of cross-generator
    detection benchmarks (train on ProGAN or Stable Diffusion, test on
    everything else).

    Parameters
    ----------
    train_groups : None, str, list of str or list of lists of str, default=None
        The source group(s):

        - ``None``: every group in turn is the source (in sorted order).
        - a group name such as ``"sd"``, or a list such as ``["sd", "progan"]``:
          one source, the union of the listed groups.
        - a list of lists such as ``[["sd"], ["progan"], ["sd", "progan"]]``:
          each inner list is a source, in the order given.

        Group names are compared with ``==`` to the values in ``groups``.

    test : {"all", "each"}, default="all"
        ``"all"`` yields one split per source whose test set pools every
        other group. ``"each"`` yields one split per source and per other
        group, so that scores come per unseen generator and their average in
        ``cross_validate`` or ``GridSearchCV`` weights each generator the
        same, as papers do. With ``"each"`` the model is refitted on the same
        source for every test group.

    train_size : int, float or None, default=None
        Subsample each source's training set: an int is a number of samples,
        a float in (0, 1] a fraction of them. None keeps them all. When ``y``
        is given, the subsample keeps the class proportions. A source's
        subsample is the same for all of its test groups.

    random_state : int, RandomState instance or None, default=None
        Controls the subsampling when ``train_size`` is set. Pass an int for
        the same splits on every call to ``split``.

    See Also
    --------
    sklearn.model_selection.LeaveOneGroupOut : Test on one group, train on the
        others.
    skacd.datasets.load_image_folder : Gives the ``groups`` of an image folder.
    skacd.metrics.detection_report : Per-group metrics of one fitted model.

    Notes
    -----
    Number of splits, with :math:`G` groups: for ``train_groups=None``,
    :math:`G` with ``test="all"`` and :math:`G(G - 1)` with ``test="each"``;
    for one source covering :math:`k` groups, 1 or :math:`G - k`.

    The training and test sets of a split do not always cover every sample:
    with ``test="each"`` the other unseen groups are left out, and
    ``train_size`` leaves out part of the source.

    ``GridSearchCV(..., cv=CrossGeneratorSplit(...))`` chooses the parameters
    on unseen generators, but with ``refit=True`` (its default) it then
    refits the best model on *all* of ``X``, test groups included. To keep
    the final model single-source, pass only the source rows to a final
    ``fit``, or use ``refit=False``.

    The splitter requests ``groups`` through scikit-learn's metadata routing,
    as :class:`~sklearn.model_selection.LeaveOneGroupOut` does.

    Examples
    --------
    >>> import numpy as np
    >>> from skacd.model_selection import CrossGeneratorSplit
    >>> groups = np.array(["sd", "sd", "gan", "gan", "dalle", "dalle"])
    >>> X = np.zeros((6, 2))
    >>> cv = CrossGeneratorSplit(train_groups="sd", test="each")
    >>> cv.get_n_splits(X, groups=groups)
    2
    >>> for train, test in cv.split(X, groups=groups):
    ...     print(train, test)
    [0 1] [4 5]
    [0 1] [2 3]
    >>> for train, test in CrossGeneratorSplit().split(X, groups=groups):
    ...     print(train, test)
    [4 5] [0 1 2 3]
    [2 3] [0 1 4 5]
    [0 1] [2 3 4 5]

    In ``cross_validate``, on synthetic features of three generators:

    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.model_selection import cross_validate
    >>> from skacd.datasets import make_generator_manifolds
    >>> X, y, groups = make_generator_manifolds(
    ...     n_samples=300, n_features=16, return_groups=True, random_state=0)
    >>> cv = CrossGeneratorSplit(train_groups="gen0", test="each")
    >>> result = cross_validate(LogisticRegression(), X, y, groups=groups, cv=cv)
    >>> result["test_score"].shape
    (2,)
    """

    __metadata_request__split = {"groups": True}

    def __init__(self, train_groups=None, *, test="all", train_size=None,
                 random_state=None):
        self.train_groups = train_groups
        self.test = test
        self.train_size = train_size
        self.random_state = random_state

    def _check_params(self):
        if self.test not in ("all", "each"):
            raise ValueError(
                "The 'test' parameter of CrossGeneratorSplit must be a str among "
                f"{{'all', 'each'}}. Got {self.test!r} instead."
            )
        size = self.train_size
        ok = size is None or (
            isinstance(size, Integral) and not isinstance(size, bool) and size >= 1
        ) or (
            isinstance(size, Real) and not isinstance(size, Integral)
            and 0 < size <= 1
        )
        if not ok:
            raise ValueError(
                "The 'train_size' parameter of CrossGeneratorSplit must be None, "
                "an int >= 1 or a float in the range (0, 1]. "
                f"Got {size!r} instead."
            )

    def _sources(self, unique):
        """List of sources, each a list of group values, all checked present."""
        spec = self.train_groups
        if spec is None:
            return [[g] for g in unique]
        if _is_name(spec):
            sources = [[spec]]
        else:
            spec = list(spec)
            if not spec:
                raise ValueError("'train_groups' is empty: name at least one group.")
            nested = [not _is_name(s) for s in spec]
            if all(nested):
                sources = [list(s) for s in spec]
            elif not any(nested):
                sources = [spec]
            else:
                raise ValueError(
                    "'train_groups' mixes group names and lists of group names: "
                    f"{self.train_groups!r}. Pass a list of names (one source) or "
                    "a list of lists (one source each)."
                )
        known = set(unique.tolist())
        for source in sources:
            if not source:
                raise ValueError("A source in 'train_groups' is empty.")
            missing = [g for g in source if g not in known]
            if missing:
                raise ValueError(
                    f"Train group(s) {missing!r} not found in groups. "
                    f"The groups are: {unique.tolist()!r}."
                )
            if len(set(source)) >= len(known):
                raise ValueError(
                    f"Train groups {source!r} cover every group, leaving none "
                    "to test on."
                )
        return sources

    def _check_groups(self, groups):
        if groups is None:
            raise ValueError("The 'groups' parameter should not be None.")
        groups = column_or_1d(groups, input_name="groups")
        unique = np.unique(groups)
        if unique.size < 2:
            raise ValueError(
                "CrossGeneratorSplit needs at least two distinct groups (one to "
                f"train on, one to test on); got {unique.tolist()!r}."
            )
        return groups, unique

    def _subsample(self, train, y, rng):
        n_train = train.size
        size = self.train_size
        if size is None:
            return train
        if isinstance(size, Integral):
            if size > n_train:
                raise ValueError(
                    f"train_size={size} is larger than the {n_train} samples of "
                    "the training group(s)."
                )
            n_keep = int(size)
        else:
            n_keep = max(1, int(round(size * n_train)))
        if y is None:
            keep = rng.choice(train, size=n_keep, replace=False)
            return np.sort(keep)
        # Stratified: largest-remainder allocation of n_keep over the classes.
        classes, y_train = np.unique(np.asarray(y)[train], return_inverse=True)
        counts = np.bincount(y_train, minlength=classes.size)
        quota = counts * n_keep / n_train
        alloc = np.floor(quota).astype(int)
        order = np.argsort(-(quota - alloc), kind="stable")
        alloc[order[: n_keep - alloc.sum()]] += 1
        keep = [
            rng.choice(train[y_train == c], size=alloc[c], replace=False)
            for c in range(classes.size)
        ]
        return np.sort(np.concatenate(keep))

    def split(self, X, y=None, groups=None):
        """Generate indices to split data into training and test set.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data; only its length is used.

        y : array-like of shape (n_samples,), default=None
            The target; used only to stratify the ``train_size`` subsample.

        groups : array-like of shape (n_samples,)
            The group (generator) of each sample. Required.

        Yields
        ------
        train : ndarray
            The training set indices for that split: the source group(s).

        test : ndarray
            The testing set indices for that split: the other group, or all
            of them.
        """
        self._check_params()
        X, y, groups = indexable(X, y, groups)
        groups, unique = self._check_groups(groups)
        check_consistent_length(X, y, groups)
        sources = self._sources(unique)
        rng = check_random_state(self.random_state)
        indices = np.arange(groups.shape[0])
        for source in sources:
            in_source = np.isin(groups, source)
            train = self._subsample(indices[in_source], y, rng)
            others = [g for g in unique if g not in source]
            if self.test == "all":
                yield train, indices[~in_source]
            else:
                for g in others:
                    yield train, indices[groups == g]

    def get_n_splits(self, X=None, y=None, groups=None):
        """Return the number of splitting iterations in the cross-validator.

        Parameters
        ----------
        X : object
            Always ignored, exists for API compatibility.

        y : object
            Always ignored, exists for API compatibility.

        groups : array-like of shape (n_samples,)
            The group of each sample. Required.

        Returns
        -------
        n_splits : int
            Returns the number of splitting iterations in the cross-validator.
        """
        self._check_params()
        groups, unique = self._check_groups(groups)
        sources = self._sources(unique)
        if self.test == "all":
            return len(sources)
        return sum(unique.size - len(set(source)) for source in sources)
