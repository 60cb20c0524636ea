"""ScoreScatterDisplay: two detectors' scores against each other (Fig. 5)."""

import numbers

import numpy as np
from sklearn.utils import assert_all_finite
from sklearn.utils.validation import column_or_1d

from ._base import (
    _binary_scores,
    _check_labels,
    _default_color,
    _DisplayMixin,
    _shared_docstrings,
    _style_map,
)


def _check_names(names, caller):
    if names is None:
        return None
    if isinstance(names, str) or len(names) != 2:
        raise ValueError(
            f"{caller}: names must be a pair (name_x, name_y); got {names!r}."
        )
    return tuple(str(n) for n in names)


@_shared_docstrings()
class ScoreScatterDisplay(_DisplayMixin):
    """Per-sample scatter of two detectors' scores, with both thresholds.

    Each point is one image: its score under detector x against its score
    under detector y, coloured by true class. The vertical and horizontal
    lines are the two decision thresholds, so the four quadrants are "both
    say positive", "both say negative" and the two disagreements, as in
    Fig. 5 of arXiv:2603.00717. Use
    :meth:`ScoreScatterDisplay.from_estimators` or
    :meth:`ScoreScatterDisplay.from_predictions` to build one.

    Parameters
    ----------
    score_x : ndarray of shape (n_samples,)
        Scores of detector x (horizontal axis).

    score_y : ndarray of shape (n_samples,)
        Scores of detector y (vertical axis).

    y : array-like of shape (n_samples,)
        True class of each sample; sets the colour.

    threshold_x : float, default=0.5
        Decision threshold of detector x, drawn as a vertical line.

    threshold_y : float, default=0.5
        Decision threshold of detector y, drawn as a horizontal line.

    names : tuple of (str, str), default=None
        Names of detectors x and y, for the axis labels.

    Attributes
    ----------
    score_x, score_y : ndarray of shape (n_samples,)
        As given.

    y : ndarray of shape (n_samples,)
        As given.

    threshold_x, threshold_y : float
        As given.

    names : tuple of (str, str) or None
        As given.

    scatter_ : dict of matplotlib PathCollection
        One scatter per true class.

    threshold_lines_ : tuple of (Line2D, Line2D)
        The vertical (x) and horizontal (y) threshold lines.

    legend_ : matplotlib Legend or None
        The legend, None when ``plot(legend=False)``.

    ax_ : matplotlib Axes
        Axes with the scatter.

    figure_ : matplotlib Figure
        Figure containing the scatter.

    See Also
    --------
    sklearn.metrics.RocCurveDisplay : One detector's scores, summarised.

    References
    ----------
    .. [1] "Single-class attribution modeling for AI-generated image
       detection", arXiv:2603.00717, Fig. 5.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> from skacd.diagnostics import ScoreScatterDisplay
    >>> rng = np.random.RandomState(0)
    >>> y = np.repeat([0, 1], 25)
    >>> score_x = np.clip(0.3 + 0.4 * y + rng.normal(0, 0.2, 50), 0, 1)
    >>> score_y = np.clip(0.2 + 0.6 * y + rng.normal(0, 0.2, 50), 0, 1)
    >>> ScoreScatterDisplay.from_predictions(
    ...     score_x, score_y, y, names=("baseline", "attribution"))
    <...ScoreScatterDisplay object at ...>
    """

    def __init__(self, *, score_x, score_y, y, threshold_x=0.5, threshold_y=0.5,
                 names=None):
        self.score_x = score_x
        self.score_y = score_y
        self.y = y
        self.threshold_x = threshold_x
        self.threshold_y = threshold_y
        self.names = names

    def plot(self, ax=None, *, names=None, colors=None, threshold_kw=None,
             legend=True, **kwargs):
        """Plot the scatter and the thresholds.

        Parameters
        ----------
        {ax}

        names : tuple of (str, str), default=None
            Names of detectors x and y; override those given at construction.

        colors : dict or list, default=None
            Colour per true class: a dict keyed by class, or a list in
            :func:`numpy.unique` order. Default: ``"C0"``, ``"C1"``.

        threshold_kw : dict, default=None
            Passed to :meth:`~matplotlib.axes.Axes.axvline` and
            :meth:`~matplotlib.axes.Axes.axhline`. Default: black dashed.

        legend : bool, default=True
            Whether to draw a legend.

        **kwargs : dict
            Passed to :meth:`matplotlib.axes.Axes.scatter`.

        {returns}
        """
        ax, figure, _ = self._validate_plot_params(ax=ax)
        caller = f"{self.__class__.__name__}.plot"
        names = _check_names(self.names if names is None else names, caller)
        name_x, name_y = ("detector x", "detector y") if names is None else names
        score_x = np.asarray(self.score_x)
        score_y = np.asarray(self.score_y)
        y = np.asarray(self.y)

        classes = np.unique(y)
        color = _style_map(classes, colors, _default_color, "colors")
        self.scatter_ = {}
        for c in classes:
            mask = y == c
            scatter_kwargs = {
                "color": color[c],
                "s": 14,
                "alpha": 0.7,
                "linewidths": 0,
                "label": f"{c} (n={int(mask.sum())})",
                **kwargs,
            }
            self.scatter_[c] = ax.scatter(
                score_x[mask], score_y[mask], **scatter_kwargs
            )

        line_kwargs = {"color": "k", "linestyle": "--", "linewidth": 1,
                       **(threshold_kw or {})}
        vline = ax.axvline(
            self.threshold_x, **{"label": f"{name_x} threshold", **line_kwargs}
        )
        hline = ax.axhline(
            self.threshold_y, **{"label": f"{name_y} threshold", **line_kwargs}
        )
        self.threshold_lines_ = (vline, hline)

        ax.set(xlabel=f"Score of {name_x}", ylabel=f"Score of {name_y}")
        return self._finish_plot(ax, figure, legend=legend)

    @classmethod
    def from_estimators(
        cls,
        est_x,
        est_y,
        X_x,
        X_y,
        y,
        *,
        threshold_x=None,
        threshold_y=None,
        pos_label=None,
        names=None,
        ax=None,
        **kwargs,
    ):
        """Score the same samples with two fitted binary classifiers and plot.

        Each detector may need its own input (for example features of two
        encoders), hence ``X_x`` and ``X_y``; their rows must be the same
        samples in the same order.

        Parameters
        ----------
        est_x : object
            Fitted binary classifier for the horizontal axis. Its score is the
            probability of ``pos_label`` when it has ``predict_proba``,
            otherwise ``decision_function(X_x)`` (negated when ``pos_label``
            is ``classes_[0]``), as scikit-learn's displays compute it.

        est_y : object
            Fitted binary classifier for the vertical axis, scored likewise
            on ``X_y``.

        X_x : array-like of shape (n_samples, n_features_x)
            Input of ``est_x``.

        X_y : array-like of shape (n_samples, n_features_y)
            Input of ``est_y``, same samples as ``X_x``.

        y : array-like of shape (n_samples,)
            True class of each sample; sets the colour.

        threshold_x : float, default=None
            Threshold of detector x. None means 0.5 for ``predict_proba``
            scores and 0 for ``decision_function`` scores.

        threshold_y : float, default=None
            Threshold of detector y, chosen likewise.

        pos_label : int, float, bool or str, default=None
            The class whose score is plotted, for both detectors. None means
            ``classes_[1]`` of each.

        names : tuple of (str, str), default=None
            Names of the detectors. Default: their class names, suffixed
            with `` (x)`` and `` (y)`` when equal.

        {ax}

        {plot_kwargs}

        {returns}
        """
        caller = cls._check_constructor("from_estimators")
        score_x, default_x = _binary_scores(est_x, X_x, caller, pos_label)
        score_y, default_y = _binary_scores(est_y, X_y, caller, pos_label)
        if names is None:
            names = (type(est_x).__name__, type(est_y).__name__)
            if names[0] == names[1]:
                names = (f"{names[0]} (x)", f"{names[1]} (y)")
        return cls.from_predictions(
            score_x,
            score_y,
            y,
            threshold_x=default_x if threshold_x is None else threshold_x,
            threshold_y=default_y if threshold_y is None else threshold_y,
            names=names,
            ax=ax,
            **kwargs,
        )

    @classmethod
    def from_predictions(
        cls,
        score_x,
        score_y,
        y,
        *,
        threshold_x=0.5,
        threshold_y=0.5,
        names=None,
        ax=None,
        **kwargs,
    ):
        """Plot precomputed scores of two detectors.

        Parameters
        ----------
        score_x : array-like of shape (n_samples,)
            Scores of detector x (horizontal axis).

        score_y : array-like of shape (n_samples,)
            Scores of detector y (vertical axis), same samples.

        y : array-like of shape (n_samples,)
            True class of each sample; sets the colour.

        threshold_x : float, default=0.5
            Decision threshold of detector x.

        threshold_y : float, default=0.5
            Decision threshold of detector y.

        names : tuple of (str, str), default=None
            Names of detectors x and y.

        {ax}

        {plot_kwargs}

        {returns}
        """
        caller = cls._check_constructor("from_predictions")
        score_x = column_or_1d(score_x).astype(float)
        score_y = column_or_1d(score_y).astype(float)
        assert_all_finite(score_x, input_name="score_x")
        assert_all_finite(score_y, input_name="score_y")
        y, _ = _check_labels(y, None, score_x, score_y)
        for t_name, t in (("threshold_x", threshold_x), ("threshold_y", threshold_y)):
            if not isinstance(t, numbers.Real) or not np.isfinite(t):
                raise ValueError(
                    f"{caller}: {t_name} must be a finite number; got {t!r}."
                )
        viz = cls(
            score_x=score_x,
            score_y=score_y,
            y=y,
            threshold_x=float(threshold_x),
            threshold_y=float(threshold_y),
            names=_check_names(names, caller),
        )
        return viz.plot(ax=ax, **kwargs)
