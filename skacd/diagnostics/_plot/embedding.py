"""EmbeddingDisplay: 2-D UMAP view of features or attributions (Fig. 2a-c)."""

import numpy as np
from sklearn.utils.validation import check_array

from ._base import (
    _check_labels,
    _default_color,
    _default_marker,
    _DisplayMixin,
    _shared_docstrings,
    _style_map,
    _unique_in_order,
    check_umap_support,
)

_DOCS = {
    "y_groups": """\
{y}

groups : array-like of shape (n_samples,), default=None
    Group of each sample; sets the marker.""",
    "umap_params": """\
n_neighbors : int, default=15
    ``umap.UMAP(n_neighbors=...)``: size of the local neighbourhood.

min_dist : float, default=0.1
    ``umap.UMAP(min_dist=...)``: how tightly points may pack.

metric : str, default="euclidean"
    ``umap.UMAP(metric=...)``. ``"cosine"`` suits CLIP features.

n_epochs : int, default=None
    ``umap.UMAP(n_epochs=...)``; None lets UMAP choose (200 or 500).

random_state : int, RandomState instance or None, default=0
    ``umap.UMAP(random_state=...)``. An int gives a reproducible
    layout; None allows multi-threading but is not reproducible.

umap_kwargs : dict, default=None
    Further ``umap.UMAP`` parameters; they override the above.""",
}


@_shared_docstrings(**_DOCS)
class EmbeddingDisplay(_DisplayMixin):
    """UMAP projection of features or attributions, by class and group.

    Points are coloured by class and, when groups are given, marked by group,
    as in Fig. 2(a-c) of arXiv:2603.00717. Use
    :meth:`EmbeddingDisplay.from_estimator` (attributions, or any
    ``transform`` output) or :meth:`EmbeddingDisplay.from_features` (raw
    features) to build one: they run UMAP once; :meth:`plot` only draws, so
    restyling never reruns UMAP.

    Parameters
    ----------
    embedding : ndarray of shape (n_samples, 2)
        The 2-D coordinates, stored as ``embedding_`` (the name
        ``umap.UMAP`` uses).

    y : array-like of shape (n_samples,)
        Class of each sample; sets the colour.

    groups : array-like of shape (n_samples,), default=None
        Group of each sample (for example the generator); sets the marker.

    name : str, default=None
        Title of the plot, e.g. ``"CLIP features"`` or ``"Attributions"``.

    umap_params : dict, default=None
        The ``umap.UMAP`` parameters that produced ``embedding``, kept for the
        record. Set by the ``from_*`` constructors.

    Attributes
    ----------
    embedding_ : ndarray of shape (n_samples, 2)
        The 2-D coordinates.

    y : ndarray of shape (n_samples,)
        As given.

    groups : ndarray of shape (n_samples,) or None
        As given.

    name : str or None
        As given.

    umap_params : dict or None
        As given.

    scatter_ : dict of matplotlib PathCollection
        One scatter per ``(class, group)`` that has samples (``group`` is
        None without groups), in drawing order.

    legend_ : matplotlib Legend or None
        The legend, None when ``plot(legend=False)``.

    ax_ : matplotlib Axes
        Axes with the embedding.

    figure_ : matplotlib Figure
        Figure containing the embedding.

    See Also
    --------
    separation_report : The same separation measured, not pictured.
    DeviationViolinDisplay : Per-sample attribution deviation, by group.

    Notes
    -----
    UMAP with an integer ``random_state`` is reproducible: the same inputs
    give the same ``embedding_``. umap-learn then runs single-threaded (see
    its reproducibility notes); ``random_state=None`` allows parallelism but
    gives a different layout each run. Distances in a UMAP plot are not the
    distances of the input space: read separation off
    :func:`separation_report`, and use the plot for its shape.

    References
    ----------
    .. [1] "Single-class attribution modeling for AI-generated image
       detection", arXiv:2603.00717, Fig. 2(a-c).
    .. [2] L. McInnes, J. Healy and J. Melville, "UMAP: Uniform Manifold
       Approximation and Projection for Dimension Reduction",
       arXiv:1802.03426.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> from skacd.diagnostics import EmbeddingDisplay
    >>> rng = np.random.RandomState(0)
    >>> X = np.vstack([rng.normal(0, 1, (20, 5)), rng.normal(3, 1, (20, 5))])
    >>> y = np.repeat(["real", "fake"], 20)
    >>> groups = np.repeat(["coco", "sd14", "mj"], [20, 10, 10])
    >>> disp = EmbeddingDisplay.from_features(
    ...     X, y, groups=groups, n_neighbors=5, n_epochs=20, random_state=0)
    >>> disp
    <...EmbeddingDisplay object at ...>
    >>> disp.embedding_.shape
    (40, 2)
    """

    def __init__(self, *, embedding, y, groups=None, name=None, umap_params=None):
        self.embedding_ = embedding
        self.y = y
        self.groups = groups
        self.name = name
        self.umap_params = umap_params

    def plot(
        self, ax=None, *, name=None, colors=None, markers=None, legend=True, **kwargs
    ):
        """Plot the embedding.

        Parameters
        ----------
        {ax}

        {plot_name}

        {colors}

        markers : dict or list, default=None
            Marker per group: a dict keyed by group, or a list in order of
            first appearance. Default: ``"o"``, ``"s"``, ``"^"``, ...

        legend : bool, default=True
            Whether to draw a legend (classes by colour, groups by marker).

        **kwargs : dict
            Passed to :meth:`matplotlib.axes.Axes.scatter` (e.g. ``s``,
            ``alpha``); they override the defaults, colour and marker
            included.

        {returns}
        """
        ax, figure, name = self._validate_plot_params(ax=ax, name=name)
        from matplotlib.lines import Line2D

        embedding = np.asarray(self.embedding_)
        y = np.asarray(self.y)
        groups = None if self.groups is None else np.asarray(self.groups)

        classes = np.unique(y)
        color = _style_map(classes, colors, _default_color, "colors")
        group_order = [None] if groups is None else list(_unique_in_order(groups))
        marker = _style_map(group_order, markers, _default_marker, "markers")

        self.scatter_ = {}
        for c in classes:
            for g in group_order:
                mask = y == c
                if g is not None:
                    mask &= groups == g
                if not mask.any():
                    continue
                label = str(c) if g is None else f"{c}, {g}"
                scatter_kwargs = {
                    "color": color[c],
                    "marker": marker[g],
                    "s": 14,
                    "alpha": 0.75,
                    "linewidths": 0,
                    "label": label,
                    **kwargs,
                }
                self.scatter_[(c, g)] = ax.scatter(
                    embedding[mask, 0], embedding[mask, 1], **scatter_kwargs
                )

        handles = [
            Line2D([], [], linestyle="none", marker="o", color=color[c], label=str(c))
            for c in classes
        ]
        if groups is not None:
            handles += [
                Line2D(
                    [], [], linestyle="none", marker=marker[g], color="0.35",
                    label=str(g),
                )
                for g in group_order
            ]
        ax.set(xlabel="UMAP 1", ylabel="UMAP 2", xticks=[], yticks=[])
        return self._finish_plot(
            ax, figure, legend=legend, handles=handles, name=name
        )

    @classmethod
    def from_features(
        cls, X, y, *, groups=None, n_neighbors=15, min_dist=0.1, metric="euclidean",
        n_epochs=None, random_state=0, umap_kwargs=None, ax=None, name=None,
        **kwargs,
    ):
        """Embed ``X`` as it is (for example raw encoder features) and plot it.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Features to project.

        {y_groups}

        {umap_params}

        {ax}

        {name}

        {plot_kwargs}

        {returns}
        """
        umap = check_umap_support(cls._check_constructor("from_features"))
        X = check_array(X, dtype=np.float64)
        y, groups = _check_labels(y, groups, X)
        params = {
            "n_components": 2,
            "n_neighbors": n_neighbors,
            "min_dist": min_dist,
            "metric": metric,
            "n_epochs": n_epochs,
            "random_state": random_state,
            **(umap_kwargs or {}),
        }
        if params["random_state"] is not None:
            # Seeded UMAP is single-threaded anyway; asking for 1 job avoids
            # umap-learn's "n_jobs value ... overridden to 1" warning.
            params.setdefault("n_jobs", 1)
        embedding = np.asarray(umap.UMAP(**params).fit_transform(X))
        viz = cls(
            embedding=embedding, y=y, groups=groups, name=name, umap_params=params
        )
        return viz.plot(ax=ax, **kwargs)

    @classmethod
    def from_estimator(
        cls, estimator, X, y, *, groups=None, transform=True, n_neighbors=15,
        min_dist=0.1, metric="euclidean", n_epochs=None, random_state=0,
        umap_kwargs=None, ax=None, name=None, **kwargs,
    ):
        """Embed a fitted estimator's ``transform(X)`` and plot it.

        With a fitted ``AttributionSpace`` this shows the attributions
        :math:`A(x) = |f(x) - D(E(f(x)))|` (Fig. 2b-c); any fitted object
        with a ``transform`` method works (a ``Pipeline`` included).

        Parameters
        ----------
        estimator : object
            Fitted estimator with a ``transform`` method.

        X : array-like of shape (n_samples, n_features)
            Input of ``estimator.transform``.

        {y_groups}

        transform : bool, default=True
            If True, embed ``estimator.transform(X)``. If False, embed ``X``
            itself, so the raw-feature panel (Fig. 2a) can be drawn by the same
            call as the attribution panel; same as :meth:`from_features`.

        {umap_params}

        {ax}

        name : str, default=None
            Title. Default: ``"<EstimatorClass>.transform"``, or
            ``"Features"`` with ``transform=False``.

        {plot_kwargs}

        {returns}
        """
        caller = cls._check_constructor("from_estimator")
        check_umap_support(caller)
        if transform:
            if not hasattr(estimator, "transform"):
                raise TypeError(
                    f"{caller} needs a fitted estimator with a transform method; "
                    f"got {type(estimator).__name__}."
                )
            Z = estimator.transform(X)
            if name is None:
                name = f"{type(estimator).__name__}.transform"
        else:
            Z = X
            if name is None:
                name = "Features"
        return cls.from_features(
            Z, y, groups=groups, n_neighbors=n_neighbors, min_dist=min_dist,
            metric=metric, n_epochs=n_epochs, random_state=random_state,
            umap_kwargs=umap_kwargs, ax=ax, name=name, **kwargs,
        )
