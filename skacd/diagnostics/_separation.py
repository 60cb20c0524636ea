"""Class-separation measures: inter-class distance, intra-class variance, Fisher.

The measures of Fig. 2(e) of arXiv:2603.00717, on numpy and scikit-learn
alone: no torch, no skacd estimator.
"""

from itertools import combinations

import numpy as np
from sklearn.utils.validation import check_consistent_length, check_X_y, column_or_1d

from .._compat import validate_params

__all__ = [
    "inter_class_distance",
    "intra_class_variance",
    "fisher_ratio",
    "separation_report",
    "SeparationReport",
]


# --------------------------------------------------------------------------- #
# Core computation
# --------------------------------------------------------------------------- #


def _check_two_classes(X, y, caller):
    """Validate ``X`` (2-D, finite, float64) and a ``y`` with exactly 2 classes."""
    X, y = check_X_y(X, y, dtype=np.float64, y_numeric=False)
    classes = np.unique(y)
    if classes.size != 2:
        shown = classes[:10].tolist()
        more = " ..." if classes.size > 10 else ""
        raise ValueError(
            f"{caller} needs y with exactly two classes; got {classes.size} "
            f"class(es): {shown}{more}."
        )
    return X, y, classes


def _measures(X_a, X_b):
    """Return (D, S, F) for the two samples ``X_a`` and ``X_b``.

    D = ||mu_b - mu_a||^2, S = tr Cov(X_a) + tr Cov(X_b) (1/n normalisation),
    F = D / S, with F = inf when S = 0 < D and F = nan when S = D = 0.
    """
    mu_a = X_a.mean(axis=0)
    mu_b = X_b.mean(axis=0)
    distance = float(np.sum((mu_b - mu_a) ** 2))
    variance = float(
        np.mean(np.sum((X_a - mu_a) ** 2, axis=1))
        + np.mean(np.sum((X_b - mu_b) ** 2, axis=1))
    )
    if variance > 0:
        ratio = distance / variance
    elif distance > 0:
        ratio = float("inf")
    else:
        ratio = float("nan")
    return distance, variance, ratio


def _split(X, y, classes):
    return X[y == classes[0]], X[y == classes[1]]


# --------------------------------------------------------------------------- #
# Public measures
# --------------------------------------------------------------------------- #


@validate_params(
    {"X": ["array-like"], "y": ["array-like"]},
    prefer_skip_nested_validation=True,
)
def inter_class_distance(X, y):
    r"""Squared Euclidean distance between the two class means.

    The inter-class distance of Fig. 2(e) of arXiv:2603.00717.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Features or attributions, one row per sample.

    y : array-like of shape (n_samples,)
        Class labels. Exactly two distinct values are required.

    Returns
    -------
    distance : float
        :math:`D = \lVert \mu_1 - \mu_0 \rVert_2^2`, where :math:`\mu_c` is the
        mean of the rows of class :math:`c`.

    See Also
    --------
    intra_class_variance : The denominator of Fisher's ratio.
    fisher_ratio : :math:`D / S`.
    separation_report : All three measures, overall and per group.

    Notes
    -----
    With :math:`C_c` the rows of class :math:`c` (classes ordered as by
    :func:`numpy.unique`) and :math:`n_c = |C_c|`,

    .. math::

        \mu_c = \frac{1}{n_c} \sum_{i \in C_c} x_i, \qquad
        D = \lVert \mu_1 - \mu_0 \rVert_2^2
          = \sum_{j=1}^{d} (\mu_{1j} - \mu_{0j})^2 .

    :math:`D` is symmetric in the two classes and scales as :math:`a^2` when
    ``X`` is multiplied by :math:`a`.

    References
    ----------
    .. [1] "Single-class attribution modeling for AI-generated image
       detection", arXiv:2603.00717, Fig. 2(e).

    Examples
    --------
    >>> import numpy as np
    >>> from skacd.diagnostics import inter_class_distance
    >>> X = np.array([[0.0, 0.0], [0.0, 2.0], [4.0, 0.0], [4.0, 2.0]])
    >>> y = np.array([0, 0, 1, 1])
    >>> inter_class_distance(X, y)
    16.0
    """
    X, y, classes = _check_two_classes(X, y, "inter_class_distance")
    return _measures(*_split(X, y, classes))[0]


@validate_params(
    {"X": ["array-like"], "y": ["array-like"]},
    prefer_skip_nested_validation=True,
)
def intra_class_variance(X, y):
    r"""Sum of the two classes' total variances.

    The intra-class variance of Fig. 2(e) of arXiv:2603.00717: for each
    class, the mean squared Euclidean distance of its rows to the class mean
    (the trace of the class covariance with :math:`1/n` normalisation),
    summed over the two classes.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Features or attributions, one row per sample.

    y : array-like of shape (n_samples,)
        Class labels. Exactly two distinct values are required.

    Returns
    -------
    variance : float
        :math:`S = \frac{1}{n_0} \sum_{i \in C_0} \lVert x_i - \mu_0
        \rVert_2^2 + \frac{1}{n_1} \sum_{i \in C_1} \lVert x_i - \mu_1
        \rVert_2^2`.

    See Also
    --------
    inter_class_distance : The numerator of Fisher's ratio.
    fisher_ratio : :math:`D / S`.
    separation_report : All three measures, overall and per group.

    Notes
    -----
    With :math:`C_c` the rows of class :math:`c`, :math:`n_c = |C_c|` and
    :math:`\mu_c` the class mean,

    .. math::

        S = \sum_{c \in \{0, 1\}} \frac{1}{n_c} \sum_{i \in C_c}
            \lVert x_i - \mu_c \rVert_2^2
          = \operatorname{tr} \Sigma_0 + \operatorname{tr} \Sigma_1,

    where :math:`\Sigma_c` is the covariance of class :math:`c` with
    :math:`1/n_c` (not :math:`1/(n_c - 1)`) normalisation, so a class of one
    sample contributes 0. Each class counts once, whatever its size: the
    classes are not weighted by :math:`n_c`.

    References
    ----------
    .. [1] "Single-class attribution modeling for AI-generated image
       detection", arXiv:2603.00717, Fig. 2(e).

    Examples
    --------
    >>> import numpy as np
    >>> from skacd.diagnostics import intra_class_variance
    >>> X = np.array([[0.0, 0.0], [0.0, 2.0], [4.0, 0.0], [4.0, 2.0]])
    >>> y = np.array([0, 0, 1, 1])
    >>> intra_class_variance(X, y)
    2.0
    """
    X, y, classes = _check_two_classes(X, y, "intra_class_variance")
    return _measures(*_split(X, y, classes))[1]


@validate_params(
    {"X": ["array-like"], "y": ["array-like"]},
    prefer_skip_nested_validation=True,
)
def fisher_ratio(X, y):
    r"""Compute Fisher's ratio: inter-class distance over intra-class variance.

    The class-separation measure of Fig. 2(e) of arXiv:2603.00717. Larger
    means the two classes are further apart relative to their spread.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Features or attributions, one row per sample.

    y : array-like of shape (n_samples,)
        Class labels. Exactly two distinct values are required.

    Returns
    -------
    ratio : float
        :math:`F = D / S`. ``inf`` when :math:`S = 0 < D` (each class is a
        single point), ``nan`` when :math:`S = D = 0`.

    See Also
    --------
    inter_class_distance : The numerator :math:`D`.
    intra_class_variance : The denominator :math:`S`.
    separation_report : All three measures, overall and per group.

    Notes
    -----
    This is the scalar, isotropic form of Fisher's criterion used in the
    paper, not the projected form :math:`w^\top S_B w / w^\top S_W w` of
    linear discriminant analysis:

    .. math::

        F = \frac{D}{S}
          = \frac{\lVert \mu_1 - \mu_0 \rVert_2^2}
                 {\frac{1}{n_0} \sum_{i \in C_0} \lVert x_i - \mu_0 \rVert_2^2
                  + \frac{1}{n_1} \sum_{i \in C_1} \lVert x_i - \mu_1
                  \rVert_2^2} .

    :math:`F` is unchanged when ``X`` is multiplied by a non-zero scalar,
    translated, or rotated, and when the two labels are swapped. It is *not*
    invariant to per-feature scaling, so compare feature spaces as they are
    fed to the next model.

    References
    ----------
    .. [1] "Single-class attribution modeling for AI-generated image
       detection", arXiv:2603.00717, Fig. 2(e).

    Examples
    --------
    >>> import numpy as np
    >>> from skacd.diagnostics import fisher_ratio
    >>> X = np.array([[0.0, 0.0], [0.0, 2.0], [4.0, 0.0], [4.0, 2.0]])
    >>> y = np.array(["real", "real", "fake", "fake"])
    >>> fisher_ratio(X, y)
    8.0
    >>> fisher_ratio(10 * X, y)
    8.0
    """
    X, y, classes = _check_two_classes(X, y, "fisher_ratio")
    return _measures(*_split(X, y, classes))[2]


# --------------------------------------------------------------------------- #
# Report
# --------------------------------------------------------------------------- #


def _py(value):
    """numpy scalar -> Python scalar, so that ``to_dict`` is JSON-friendly."""
    return value.item() if isinstance(value, np.generic) else value


def _fmt(value):
    return f"{value:.4g}"


class SeparationReport:
    r"""Result of :func:`separation_report`: class-separation measures.

    Printing the object gives a table; :meth:`to_dict` gives plain Python
    values (JSON-serialisable when the labels are).

    Parameters
    ----------
    classes : list of length 2
        The two class labels, in :func:`numpy.unique` order: class 0, class 1.

    overall : dict
        The measures for class 0 against class 1 on all samples, with keys
        ``"n_0"``, ``"n_1"``, ``"inter_class_distance"``,
        ``"intra_class_variance"`` and ``"fisher_ratio"``.

    per_group : list of dict, default=None
        One record per group, in order of first appearance, with keys
        ``"group"``, ``"n_0"``, ``"n_1"``, ``"pooled_0"``, ``"pooled_1"`` and the
        three measures. ``pooled_c`` is True when the group has no sample of
        class ``c`` and the class-``c`` side of the contrast is all class-``c``
        samples. ``None`` is stored as ``[]``.

    pairwise : list of dict, default=None
        One record per pair of groups and class present in both, with keys
        ``"group_a"``, ``"group_b"``, ``"class"``, ``"n_a"``, ``"n_b"`` and the
        three measures. ``None`` is stored as ``[]``.

    Attributes
    ----------
    classes : list of length 2
        As given.

    overall : dict
        As given.

    per_group : list of dict
        As given, ``[]`` when no groups were given.

    pairwise : list of dict
        As given, ``[]`` when no groups were given.

    See Also
    --------
    separation_report : Builds this object.

    Examples
    --------
    >>> import numpy as np
    >>> from skacd.diagnostics import separation_report
    >>> X = np.array([[0.0, 0.0], [0.0, 2.0], [4.0, 0.0], [4.0, 2.0]])
    >>> report = separation_report(X, [0, 0, 1, 1])
    >>> report.to_dict()["overall"]["fisher_ratio"]
    8.0
    """

    _MEASURES = ("inter_class_distance", "intra_class_variance", "fisher_ratio")

    def __init__(self, classes, overall, per_group=None, pairwise=None):
        self.classes = classes
        self.overall = overall
        self.per_group = [] if per_group is None else per_group
        self.pairwise = [] if pairwise is None else pairwise

    def to_dict(self):
        """Return the report as a dict of plain Python values.

        Returns
        -------
        report : dict
            Keys ``"classes"``, ``"overall"``, ``"per_group"`` and
            ``"pairwise"``, as described in the class docstring. The lists and
            dicts are copies.
        """
        return {
            "classes": list(self.classes),
            "overall": dict(self.overall),
            "per_group": [dict(r) for r in self.per_group],
            "pairwise": [dict(r) for r in self.pairwise],
        }

    def _rows(self):
        c0, c1 = self.classes
        rows = [("overall", str(self.overall["n_0"]), str(self.overall["n_1"]))]
        rows[0] += tuple(_fmt(self.overall[m]) for m in self._MEASURES)
        sections = [("", [rows[0]])]
        if self.per_group:
            group_rows = []
            for r in self.per_group:
                n0 = str(r["n_0"]) + ("*" if r["pooled_0"] else "")
                n1 = str(r["n_1"]) + ("*" if r["pooled_1"] else "")
                group_rows.append(
                    (f"  {r['group']}", n0, n1)
                    + tuple(_fmt(r[m]) for m in self._MEASURES)
                )
            sections.append(("per group:", group_rows))
        if self.pairwise:
            pair_rows = []
            for r in self.pairwise:
                pair_rows.append(
                    (
                        f"  {r['group_a']} vs {r['group_b']} [{r['class']}]",
                        str(r["n_a"]),
                        str(r["n_b"]),
                    )
                    + tuple(_fmt(r[m]) for m in self._MEASURES)
                )
            sections.append(
                ("group vs group [class] (a, b = the two groups):", pair_rows)
            )
        return sections

    def __str__(self):
        header = ("", "n_a", "n_b", "inter-class D", "intra-class S", "Fisher F")
        sections = self._rows()
        all_rows = [header] + [row for _, rows in sections for row in rows]
        width0 = max(len(row[0]) for row in all_rows)
        widths = [width0] + [
            max(len(row[j]) for row in all_rows if len(row) > j)
            for j in range(1, len(header))
        ]

        def line(row):
            cells = [row[0].ljust(widths[0])]
            cells += [cell.rjust(w) for cell, w in zip(row[1:], widths[1:])]
            return "  ".join(cells).rstrip()

        c0, c1 = self.classes
        out = [
            f"Class separation, a = {c0} vs b = {c1}; F = D / S",
            line(header),
        ]
        for title, rows in sections:
            if title:
                out.append(title)
            out.extend(line(row) for row in rows)
        if any(r["pooled_0"] or r["pooled_1"] for r in self.per_group):
            out.append("* the group has no sample of that class: all of them are used")
        return "\n".join(out)

    def __repr__(self):
        return self.__str__()


@validate_params(
    {"X": ["array-like"], "y": ["array-like"], "groups": ["array-like", None]},
    prefer_skip_nested_validation=True,
)
def separation_report(X, y, groups=None):
    r"""Inter-class distance, intra-class variance and Fisher's ratio, by group.

    Computes the measures of Fig. 2(e) of arXiv:2603.00717 for the two
    classes of ``y`` on all samples and, when ``groups`` is given (for
    example the generator or source dataset of each image), for each group
    and for each pair of groups.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Features or attributions, one row per sample.

    y : array-like of shape (n_samples,)
        Class labels. Exactly two distinct values are required; class 0 and
        class 1 are the first and second in :func:`numpy.unique` order.

    groups : array-like of shape (n_samples,), default=None
        Group label of each sample, for example the generator of each fake
        image and the source dataset of each real one. A group may hold one
        class or both.

    Returns
    -------
    report : SeparationReport
        Printable table; ``report.to_dict()`` gives plain values.

    See Also
    --------
    fisher_ratio : :math:`F = D / S` for two classes.
    inter_class_distance : :math:`D`.
    intra_class_variance : :math:`S`.
    EmbeddingDisplay : Look at the same separation in 2-D.

    Notes
    -----
    Every contrast compares two sets of rows :math:`A` and :math:`B` with the
    formulas of :func:`fisher_ratio`:
    :math:`D = \lVert \mu_B - \mu_A \rVert_2^2`,
    :math:`S = \operatorname{tr} \Sigma_A + \operatorname{tr} \Sigma_B`
    (:math:`1/n` normalisation) and :math:`F = D / S`.

    - **overall**: :math:`A` = class 0, :math:`B` = class 1, all samples.
    - **per group** :math:`g`: :math:`A` = the class-0 samples of :math:`g`
      and :math:`B` = the class-1 samples of :math:`g`. When :math:`g` has no
      sample of a class, that side is *all* samples of the class (flagged
      ``pooled_c`` and marked ``*`` in the table). So a group holding only the
      fakes of one generator gives "all real vs the fakes of :math:`g`", and a
      group holding both real and fake images gives the within-group contrast.
    - **group vs group**: for each pair of groups :math:`(g, h)` and each
      class :math:`c` present in both, :math:`A` = the class-:math:`c`
      samples of :math:`g` and :math:`B` = those of :math:`h`. On the fake
      class this says how far apart two generators lie, to compare with the
      real-vs-fake separation.

    References
    ----------
    .. [1] "Single-class attribution modeling for AI-generated image
       detection", arXiv:2603.00717, Fig. 2(e).

    Examples
    --------
    >>> import numpy as np
    >>> from skacd.diagnostics import separation_report
    >>> X = np.array([[0.0, 0.0], [0.0, 2.0], [4.0, 0.0], [4.0, 2.0],
    ...               [6.0, 0.0], [6.0, 2.0]])
    >>> y = ["real", "real", "fake", "fake", "fake", "fake"]
    >>> groups = ["coco", "coco", "sd14", "sd14", "mj", "mj"]
    >>> report = separation_report(X, y, groups)
    >>> print(report)
    Class separation, a = fake vs b = real; F = D / S
                         n_a  n_b  inter-class D  intra-class S  Fisher F
    overall                4    2             25              3     8.333
    per group:
      coco                4*    2             25              3     8.333
      sd14                 2   2*             16              2         8
      mj                   2   2*             36              2        18
    group vs group [class] (a, b = the two groups):
      sd14 vs mj [fake]    2    2              4              2         2
    * the group has no sample of that class: all of them are used
    >>> report.to_dict()["per_group"][1]["fisher_ratio"]
    8.0
    """
    X, y, classes = _check_two_classes(X, y, "separation_report")
    X0, X1 = _split(X, y, classes)
    distance, variance, ratio = _measures(X0, X1)
    overall = {
        "n_0": int(X0.shape[0]),
        "n_1": int(X1.shape[0]),
        "inter_class_distance": distance,
        "intra_class_variance": variance,
        "fisher_ratio": ratio,
    }
    if groups is None:
        return SeparationReport([_py(c) for c in classes], overall)

    groups = column_or_1d(groups, warn=True)
    check_consistent_length(X, y, groups)
    _, first = np.unique(groups, return_index=True)
    group_order = groups[np.sort(first)]

    per_group = []
    for g in group_order:
        in_g = groups == g
        sides = []
        for c, X_c in zip(classes, (X0, X1)):
            rows = X[in_g & (y == c)]
            pooled = rows.shape[0] == 0
            sides.append((X_c if pooled else rows, pooled))
        (A, pooled_0), (B, pooled_1) = sides
        distance, variance, ratio = _measures(A, B)
        per_group.append(
            {
                "group": _py(g),
                "n_0": int(A.shape[0]),
                "n_1": int(B.shape[0]),
                "pooled_0": bool(pooled_0),
                "pooled_1": bool(pooled_1),
                "inter_class_distance": distance,
                "intra_class_variance": variance,
                "fisher_ratio": ratio,
            }
        )

    pairwise = []
    for g, h in combinations(group_order, 2):
        for c in classes:
            A = X[(groups == g) & (y == c)]
            B = X[(groups == h) & (y == c)]
            if A.shape[0] == 0 or B.shape[0] == 0:
                continue
            distance, variance, ratio = _measures(A, B)
            pairwise.append(
                {
                    "group_a": _py(g),
                    "group_b": _py(h),
                    "class": _py(c),
                    "n_a": int(A.shape[0]),
                    "n_b": int(B.shape[0]),
                    "inter_class_distance": distance,
                    "intra_class_variance": variance,
                    "fisher_ratio": ratio,
                }
            )
    return SeparationReport([_py(c) for c in classes], overall, per_group, pairwise)
