"""DeviationViolinDisplay: attribution deviation per group and class (Fig. 2d)."""

import numpy as np
from sklearn.utils import assert_all_finite
from sklearn.utils.validation import column_or_1d

from ._base import (
    _check_labels,
    _default_color,
    _DisplayMixin,
    _shared_docstrings,
    _style_map,
    _unique_in_order,
)

_DOCS = {
    "constructor_params": """\
{y}

groups : array-like of shape (n_samples,), default=None
    Group of each sample; one x-axis position per group.

{ax}

{name}

{plot_kwargs}

{returns}""",
}


@_shared_docstrings(**_DOCS)
class DeviationViolinDisplay(_DisplayMixin):
    r"""Violin plots of per-sample attribution deviation, by group and class.

    The deviation of a sample is its mean absolute attribution,
    :math:`\frac{1}{d} \sum_j |f(x) - D(E(f(x)))|_j`: small for images like
    the class the attribution space was fitted on, larger for the others, as
    in Fig. 2(d) of arXiv:2603.00717. Use
    :meth:`DeviationViolinDisplay.from_estimator` or
    :meth:`DeviationViolinDisplay.from_predictions` to build one.

    Parameters
    ----------
    deviation : ndarray of shape (n_samples,)
        Deviation of each sample.

    y : array-like of shape (n_samples,)
        Class of each sample; sets the colour.

    groups : array-like of shape (n_samples,), default=None
        Group of each sample (for example the generator); one position on the
        x-axis per group, in order of first appearance.

    name : str, default=None
        Title of the plot.

    Attributes
    ----------
    deviation : ndarray of shape (n_samples,)
        As given.

    y : ndarray of shape (n_samples,)
        As given.

    groups : ndarray of shape (n_samples,) or None
        As given.

    name : str or None
        As given.

    violins_ : dict
        Keyed by ``(group, class)`` (``group`` is None without groups): the
        dict of artists returned by :meth:`matplotlib.axes.Axes.violinplot`
        (``"bodies"``, ``"cmedians"``, ...). A set with fewer than two distinct
        values has no density; it is drawn as points and its entry is
        ``{"bodies": [], "points": PathCollection}``.

    legend_ : matplotlib Legend or None
        The class legend, None when ``plot(legend=False)``.

    ax_ : matplotlib Axes
        Axes with the violins.

    figure_ : matplotlib Figure
        Figure containing the violins.

    See Also
    --------
    EmbeddingDisplay : 2-D view of the attributions themselves.
    separation_report : Class-separation measures.

    References
    ----------
    .. [1] "Single-class attribution modeling for AI-generated image
       detection", arXiv:2603.00717, Fig. 2(d).

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> from skacd.diagnostics import DeviationViolinDisplay
    >>> rng = np.random.RandomState(0)
    >>> deviation = np.concatenate([rng.gamma(2, 0.05, 30), rng.gamma(4, 0.05, 30)])
    >>> y = np.repeat(["real", "fake"], 30)
    >>> groups = np.repeat(["coco", "sd14", "mj"], [30, 15, 15])
    >>> DeviationViolinDisplay.from_predictions(deviation, y, groups=groups)
    <...DeviationViolinDisplay object at ...>
    """

    def __init__(self, *, deviation, y, groups=None, name=None):
        self.deviation = deviation
        self.y = y
        self.groups = groups
        self.name = name

    def plot(self, ax=None, *, name=None, colors=None, legend=True, width=0.8,
             **kwargs):
        """Plot the violins.

        Parameters
        ----------
        {ax}

        {plot_name}

        {colors}

        legend : bool, default=True
            Whether to draw the class legend.

        width : float, default=0.8
            Width taken by each group on the x-axis, shared by its classes.

        **kwargs : dict
            Passed to :meth:`matplotlib.axes.Axes.violinplot` (e.g.
            ``showmeans``, ``bw_method``). Default ``showmedians=True``.

        {returns}
        """
        ax, figure, name = self._validate_plot_params(ax=ax, name=name)
        from matplotlib.patches import Patch

        deviation = np.asarray(self.deviation, dtype=float)
        y = np.asarray(self.y)
        groups = None if self.groups is None else np.asarray(self.groups)

        classes = np.unique(y)
        color = _style_map(classes, colors, _default_color, "colors")
        group_order = [None] if groups is None else list(_unique_in_order(groups))
        violin_kwargs = {"showmedians": True, **kwargs}

        self.violins_ = {}
        for position, g in enumerate(group_order):
            in_g = np.ones_like(y, dtype=bool) if g is None else groups == g
            present = [c for c in classes if np.any(in_g & (y == c))]
            step = width / len(present)
            for k, c in enumerate(present):
                x = position - width / 2 + step * (k + 0.5)
                values = deviation[in_g & (y == c)]
                if np.unique(values).size < 2:
                    points = ax.scatter(
                        np.full(values.shape, x), values, color=color[c], zorder=3
                    )
                    self.violins_[(g, c)] = {"bodies": [], "points": points}
                    continue
                parts = ax.violinplot(
                    values, positions=[x], widths=step * 0.9, **violin_kwargs
                )
                for body in parts["bodies"]:
                    body.set_facecolor(color[c])
                    body.set_edgecolor(color[c])
                    body.set_alpha(0.5)
                for key, artist in parts.items():
                    if key != "bodies":
                        artist.set_color(color[c])
                self.violins_[(g, c)] = parts

        ax.set_xticks(range(len(group_order)))
        ax.set_xticklabels(["all" if g is None else str(g) for g in group_order])
        ax.set_xlim(-0.5 - 0.1, len(group_order) - 0.5 + 0.1)
        ax.set_ylabel("Attribution deviation (mean |A(x)|)")
        handles = [
            Patch(facecolor=color[c], edgecolor=color[c], alpha=0.5, label=str(c))
            for c in classes
        ]
        return self._finish_plot(
            ax, figure, legend=legend, handles=handles, name=name
        )

    @classmethod
    def from_estimator(
        cls, attribution_space, X, y, *, groups=None, ax=None, name=None, **kwargs
    ):
        """Compute the deviation of ``X`` under a fitted attribution space.

        The deviation is ``-attribution_space.score_samples(X)``: an
        ``AttributionSpace`` scores samples by the negative mean absolute
        attribution (bigger is more like the source class), so its negative
        is the mean absolute attribution.

        Parameters
        ----------
        attribution_space : object
            Fitted estimator with a ``score_samples`` method whose output is
            the negative deviation, such as a fitted ``AttributionSpace``.

        X : array-like of shape (n_samples, n_features)
            Input of ``score_samples``.

        {constructor_params}
        """
        caller = cls._check_constructor("from_estimator")
        if not hasattr(attribution_space, "score_samples"):
            raise TypeError(
                f"{caller} needs a fitted estimator with score_samples, such as "
                f"AttributionSpace; got {type(attribution_space).__name__}."
            )
        deviation = -np.asarray(attribution_space.score_samples(X), dtype=float)
        return cls.from_predictions(
            deviation, y, groups=groups, ax=ax, name=name, **kwargs
        )

    @classmethod
    def from_predictions(
        cls, deviation, y, *, groups=None, ax=None, name=None, **kwargs
    ):
        """Plot precomputed deviations.

        Parameters
        ----------
        deviation : array-like of shape (n_samples,)
            Deviation of each sample, e.g. the mean absolute attribution.

        {constructor_params}
        """
        cls._check_constructor("from_predictions")
        deviation = column_or_1d(deviation).astype(float)
        assert_all_finite(deviation, input_name="deviation")
        y, groups = _check_labels(y, groups, deviation)
        viz = cls(deviation=deviation, y=y, groups=groups, name=name)
        return viz.plot(ax=ax, **kwargs)
