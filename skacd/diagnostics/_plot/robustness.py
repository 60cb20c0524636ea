"""RobustnessCurveDisplay: a metric against a swept parameter (Figs. 6-7)."""

import numbers

import numpy as np

from ._base import (
    _default_color,
    _default_marker,
    _DisplayMixin,
    _shared_docstrings,
    _style_map,
)

PARAM_LABELS = {
    "jpeg_quality": "JPEG quality",
    "blur_sigma": "Gaussian blur sigma",
    "resize_factor": "Resize factor",
    "train_size": "Training-set size",
}
METRIC_LABELS = {
    "ap": "Average precision (AP)",
    "acc": "Accuracy (ACC)",
    "auc": "ROC AUC",
}
_REQUIRED_KEYS = ("method", "param", "value")
_SPREADS = ("band", "errorbar", None)


def _aggregate(results, x, metric, methods, where, caller):
    """Group matching records by method and value; mean, std, count."""
    if hasattr(results, "to_dict") and not isinstance(results, dict):
        results = results.to_dict(orient="records")  # a pandas DataFrame
    if isinstance(results, dict):
        raise TypeError(
            f"{caller}: results must be a list of dict records, not one dict."
        )
    where = {} if where is None else dict(where)
    collected = {}
    seen_params, seen_methods = set(), set()
    for i, record in enumerate(results):
        if not isinstance(record, dict):
            raise TypeError(
                f"{caller}: record {i} is a {type(record).__name__}, not a dict."
            )
        missing = [k for k in _REQUIRED_KEYS if k not in record]
        if missing:
            raise ValueError(
                f"{caller}: record {i} lacks the key(s) {missing}: {record!r}."
            )
        seen_params.add(record["param"])
        seen_methods.add(record["method"])
        if record["param"] != x:
            continue
        if methods is not None and record["method"] not in methods:
            continue
        if any(record.get(k) != v for k, v in where.items()):
            continue
        if metric not in record:
            raise ValueError(f"{caller}: record {i} has no {metric!r} key: {record!r}.")
        value, score = record["value"], record[metric]
        for key, number in (("value", value), (metric, score)):
            if (
                isinstance(number, bool)
                or not isinstance(number, numbers.Real)
                or not np.isfinite(number)
            ):
                raise ValueError(
                    f"{caller}: record {i} has a non-finite or non-numeric "
                    f"{key!r}: {number!r}."
                )
        collected.setdefault(record["method"], {}).setdefault(float(value), []).append(
            float(score)
        )

    if not collected:
        raise ValueError(
            f"{caller}: no record matches param={x!r}"
            + (f", methods={list(methods)!r}" if methods is not None else "")
            + (f", where={where!r}" if where else "")
            + f". Params present: {sorted(map(str, seen_params))}; "
            f"methods present: {sorted(map(str, seen_methods))}."
        )
    if methods is None:
        order = list(collected)  # first appearance
    else:
        absent = [m for m in methods if m not in collected]
        if absent:
            raise ValueError(f"{caller}: no matching record for method(s) {absent}.")
        order = list(methods)

    values, means, stds, counts = [], [], [], []
    for method in order:
        by_value = collected[method]
        xs = np.array(sorted(by_value))
        scores = [np.asarray(by_value[v]) for v in xs]
        values.append(xs)
        means.append(np.array([s.mean() for s in scores]))
        stds.append(
            np.array([s.std(ddof=1) if s.size > 1 else np.nan for s in scores])
        )
        counts.append(np.array([s.size for s in scores]))
    return order, values, means, stds, counts


@_shared_docstrings()
class RobustnessCurveDisplay(_DisplayMixin):
    """A metric (AP, accuracy) against a swept parameter, one curve per method.

    Draws the curves of Figs. 6-7 of arXiv:2603.00717: detection AP or
    accuracy against JPEG quality, Gaussian blur sigma or training-set size,
    with the spread over seeds as a band or error bars. Use
    :meth:`RobustnessCurveDisplay.from_results` to build one from benchmark
    records.

    Parameters
    ----------
    values : list of ndarray
        For each method, the parameter values (x-axis), ascending.

    means : list of ndarray
        For each method, the mean metric at each value.

    stds : list of ndarray, default=None
        For each method, the standard deviation at each value (NaN where
        there is a single record). None draws no spread.

    counts : list of ndarray, default=None
        For each method, the number of records averaged at each value.

    methods : list of str
        Method names, one per curve, for the legend.

    param : str
        Name of the swept parameter, e.g. ``"jpeg_quality"``.

    metric : str
        Name of the metric, e.g. ``"ap"``.

    Attributes
    ----------
    values, means, stds, counts : list of ndarray
        As given (``stds`` and ``counts`` may be None).

    methods : list of str
        As given.

    param, metric : str
        As given.

    lines_ : dict of matplotlib Line2D
        The mean curve of each method, keyed by method.

    spread_ : dict
        Keyed by method: the band (PolyCollection) or the error bars
        (ErrorbarContainer); empty when ``spread=None`` or no spread is known.

    legend_ : matplotlib Legend or None
        The legend, None when ``plot(legend=False)``.

    ax_ : matplotlib Axes
        Axes with the curves.

    figure_ : matplotlib Figure
        Figure containing the curves.

    See Also
    --------
    ScoreScatterDisplay : Two detectors compared sample by sample.

    Notes
    -----
    :meth:`from_results` takes a list of flat dict records, one per
    evaluation (method, parameter setting, seed):

    ``"method"`` : str, required
        Name of the detector; one curve each.
    ``"param"`` : str, required
        Name of the swept parameter: ``"jpeg_quality"`` (JPEG quality factor,
        1-100), ``"blur_sigma"`` (Gaussian blur standard deviation, pixels) or
        ``"train_size"`` (number of training images); other names work and
        are shown as they are.
    ``"value"`` : int or float, required
        The parameter value. Record the unperturbed result at the identity
        point of its sweep (``"blur_sigma"`` 0), or as ``"jpeg_quality"`` 100.
    ``"ap"``, ``"acc"``, ... : float
        One key per metric; the ``metric`` argument picks one. Metrics in
        :math:`[0, 1]`, not percent.
    ``"seed"`` : int, optional
        Replicate index. Not read, but it is what makes the spread.
    any other key, optional
        For example ``"generator"`` or ``"encoder"``; select with ``where``.

    For example ``{"method": "attribution", "param": "jpeg_quality",
    "value": 75, "ap": 0.91, "acc": 0.85, "seed": 0}``. All selected records
    with the same method and value are pooled: the curve is their mean and the
    spread their standard deviation (``ddof=1``). With one record per seed
    that is the spread over seeds; records that also differ in another key
    (say, one per test generator) are pooled too unless ``where`` selects one,
    so average those beforehand if that is the intent.

    References
    ----------
    .. [1] "Single-class attribution modeling for AI-generated image
       detection", arXiv:2603.00717, Figs. 6-7.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from skacd.diagnostics import RobustnessCurveDisplay
    >>> results = [
    ...     {"method": m, "param": "jpeg_quality", "value": q,
    ...      "ap": ap - 0.01 * s, "acc": ap - 0.1, "seed": s}
    ...     for m, drop in [("attribution", 0.001), ("linear probe", 0.004)]
    ...     for q in (60, 75, 90, 100)
    ...     for ap in [1.0 - drop * (100 - q)]
    ...     for s in range(3)
    ... ]
    >>> disp = RobustnessCurveDisplay.from_results(
    ...     results, x="jpeg_quality", metric="ap")
    >>> disp
    <...RobustnessCurveDisplay object at ...>
    >>> disp.means[0].round(3).tolist()
    [0.95, 0.965, 0.98, 0.99]
    """

    def __init__(self, *, values, means, stds=None, counts=None, methods, param,
                 metric):
        self.values = values
        self.means = means
        self.stds = stds
        self.counts = counts
        self.methods = methods
        self.param = param
        self.metric = metric

    def plot(self, ax=None, *, name=None, spread="band", colors=None, markers=None,
             legend=True, **kwargs):
        """Plot the curves.

        Parameters
        ----------
        {ax}

        {name}

        spread : {"band", "errorbar"} or None, default="band"
            How to draw the standard deviation: a shaded band, error bars, or
            not at all.

        colors : dict or list, default=None
            Colour per method: a dict keyed by method or a list in
            ``methods`` order. Default: ``"C0"``, ``"C1"``, ...

        markers : dict or list, default=None
            Marker per method, likewise. Default: ``"o"``, ``"s"``, ...

        legend : bool, default=True
            Whether to draw a legend.

        **kwargs : dict
            Passed to :meth:`matplotlib.axes.Axes.plot` for every curve.

        {returns}
        """
        ax, figure, name = self._validate_plot_params(ax=ax, name=name)
        if spread not in _SPREADS:
            raise ValueError(
                f"spread must be one of {_SPREADS}; got {spread!r}."
            )
        color = _style_map(self.methods, colors, _default_color, "colors")
        marker = _style_map(self.methods, markers, _default_marker, "markers")

        self.lines_, self.spread_ = {}, {}
        for i, method in enumerate(self.methods):
            x = np.asarray(self.values[i], dtype=float)
            mean = np.asarray(self.means[i], dtype=float)
            line_kwargs = {
                "color": color[method],
                "marker": marker[method],
                "label": str(method),
                **kwargs,
            }
            (self.lines_[method],) = ax.plot(x, mean, **line_kwargs)
            if spread is None or self.stds is None:
                continue
            std = np.asarray(self.stds[i], dtype=float)
            if not np.any(np.isfinite(std)):
                continue
            line_color = self.lines_[method].get_color()
            if spread == "band":
                self.spread_[method] = ax.fill_between(
                    x, mean - std, mean + std, color=line_color, alpha=0.2,
                    linewidth=0,
                )
            else:
                self.spread_[method] = ax.errorbar(
                    x, mean, yerr=np.nan_to_num(std), fmt="none",
                    ecolor=line_color, capsize=3,
                )

        ax.set(
            xlabel=PARAM_LABELS.get(self.param, self.param),
            ylabel=METRIC_LABELS.get(self.metric, self.metric),
        )
        return self._finish_plot(ax, figure, legend=legend, name=name)

    @classmethod
    def from_results(
        cls,
        results,
        x="jpeg_quality",
        metric="ap",
        *,
        methods=None,
        where=None,
        ax=None,
        name=None,
        spread="band",
        **kwargs,
    ):
        """Aggregate benchmark records and plot one curve per method.

        Parameters
        ----------
        results : list of dict or pandas.DataFrame
            Records in the format of the Notes of
            :class:`RobustnessCurveDisplay`; a DataFrame is read with
            ``to_dict(orient="records")``.

        x : str, default="jpeg_quality"
            The swept parameter to plot: records with ``"param" == x`` are
            used. Usual values: ``"jpeg_quality"``, ``"blur_sigma"``,
            ``"train_size"``.

        metric : str, default="ap"
            The record key plotted on the y-axis, e.g. ``"ap"`` or ``"acc"``.

        methods : list of str, default=None
            Methods to plot, in this order. Default: all, in order of first
            appearance.

        where : dict, default=None
            Keep only records whose keys equal these values, e.g.
            ``{"generator": "sd14"}``.

        {ax}

        {name}

        spread : {"band", "errorbar"} or None, default="band"
            How to draw the standard deviation over pooled records.

        {plot_kwargs}

        {returns}
        """
        caller = cls._check_constructor("from_results")
        order, values, means, stds, counts = _aggregate(
            results, x, metric, methods, where, caller
        )
        viz = cls(
            values=values,
            means=means,
            stds=stds,
            counts=counts,
            methods=order,
            param=x,
            metric=metric,
        )
        return viz.plot(ax=ax, name=name, spread=spread, **kwargs)
