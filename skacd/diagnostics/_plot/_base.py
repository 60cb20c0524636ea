"""Helpers shared by the displays: optional-dependency checks, axes, labels.

matplotlib is imported inside functions only, so that importing
``skacd.diagnostics`` never needs it.
"""

import re
import textwrap

import numpy as np
from sklearn.utils.validation import check_consistent_length, column_or_1d

from ..._compat import _get_response_values_binary

_INSTALL_HINT = 'pip install "skacd[plot]"'


def check_matplotlib_support(caller_name):
    """Raise an ImportError saying how to install matplotlib when it is missing.

    Call it before any computation and before importing matplotlib, as
    scikit-learn's displays do.

    Parameters
    ----------
    caller_name : str
        Name of the caller, used in the message, e.g. ``"EmbeddingDisplay.plot"``.
    """
    try:
        import matplotlib  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            f"{caller_name} requires matplotlib, which is not installed. "
            f"Install the plotting extra with: {_INSTALL_HINT}"
        ) from exc


def check_umap_support(caller_name):
    """Import and return ``umap``, or raise an ImportError saying how to get it."""
    try:
        import umap
    except ImportError as exc:
        raise ImportError(
            f"{caller_name} requires umap-learn, which is not installed. "
            "Install it with: pip install umap-learn"
        ) from exc
    return umap


class _DisplayMixin:
    """The plumbing every skacd display shares.

    As scikit-learn's ``_BinaryClassifierCurveDisplayMixin``: the opening of
    ``plot`` (matplotlib check, axes, title) and of the ``from_*``
    constructors, and the end of ``plot`` (title, legend, ``ax_`` and
    ``figure_``).
    """

    def _validate_plot_params(self, *, ax=None, name=None):
        """Return ``(ax, figure, name)``, making a new figure when ``ax`` is None.

        ``name`` defaults to the display's own ``name``, if it has one.
        """
        check_matplotlib_support(f"{self.__class__.__name__}.plot")
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots()
        if name is None:
            name = getattr(self, "name", None)
        return ax, ax.figure, name

    def _finish_plot(self, ax, figure, *, legend, handles=None, name=None):
        """Set the title and the legend, store the axes; return the display."""
        if name is not None:
            ax.set_title(name)
        self.legend_ = None
        if legend:
            self.legend_ = ax.legend(handles=handles, loc="best", fontsize="small")
        self.ax_ = ax
        self.figure_ = figure
        return self

    @classmethod
    def _check_constructor(cls, constructor):
        """Check matplotlib for ``cls.<constructor>``; return the caller's name."""
        caller = f"{cls.__name__}.{constructor}"
        check_matplotlib_support(caller)
        return caller


_SHARED_DOCS = {
    "y": """\
y : array-like of shape (n_samples,)
    Class of each sample; sets the colour.""",
    "ax": """\
ax : matplotlib Axes, default=None
    Axes to plot on. If None, a new figure and axes is created.""",
    "name": """\
name : str, default=None
    Title of the plot.""",
    "plot_name": """\
name : str, default=None
    Title; overrides the ``name`` given at construction.""",
    "colors": """\
colors : dict or list, default=None
    Colour per class: a dict keyed by class, or a list in
    :func:`numpy.unique` order of the classes. Default: ``"C0"``,
    ``"C1"``, ...""",
    "plot_kwargs": """\
**kwargs : dict
    Passed to :meth:`plot`.""",
    "returns": """\
Returns
-------
display : {cls}
    Object that stores computed values.""",
}

_PLACEHOLDER = re.compile(r"^( *)\{(\w+)\}$", flags=re.MULTILINE)


def _shared_docstrings(**docs):
    """Class decorator: fill ``{key}`` lines in the docstrings of a display.

    A line holding only ``{key}`` is replaced by the text of ``key``, from
    ``docs`` or ``_SHARED_DOCS``, indented as the placeholder (texts may hold
    placeholders too); ``{cls}`` in that text is the class name. The class
    docstring and those of its own methods (classmethods too) are filled, so
    that the parameters every display shares are written once.
    """
    texts = {**_SHARED_DOCS, **docs}

    def fill(doc, cls):
        if doc is None:  # python -OO
            return None

        def text(match):
            block = fill(texts[match[2]].replace("{cls}", cls.__name__), cls)
            return textwrap.indent(block, match[1], lambda line: line.strip())

        return _PLACEHOLDER.sub(text, doc)

    def decorate(cls):
        cls.__doc__ = fill(cls.__doc__, cls)
        for attr in vars(cls).values():
            func = getattr(attr, "__func__", attr)
            if callable(func) and getattr(func, "__doc__", None):
                func.__doc__ = fill(func.__doc__, cls)
        return cls

    return decorate


def _unique_in_order(values):
    """Unique values in order of first appearance."""
    _, first = np.unique(values, return_index=True)
    return values[np.sort(first)]


def _check_labels(y, groups, *others):
    """1-D ``y`` and ``groups`` (or None), consistent with ``others``."""
    y = column_or_1d(y, warn=True)
    if groups is not None:
        groups = column_or_1d(groups, warn=True)
        check_consistent_length(y, groups, *others)
    else:
        check_consistent_length(y, *others)
    return y, groups


def _style_map(keys, style, default, what):
    """Map each key to a style from a dict, a list (in key order) or defaults."""
    keys = list(keys)
    if style is None:
        return {k: default(i) for i, k in enumerate(keys)}
    if isinstance(style, dict):
        missing = [k for k in keys if k not in style]
        if missing:
            raise ValueError(f"{what} has no entry for {missing}.")
        return {k: style[k] for k in keys}
    style = list(style)
    if len(style) < len(keys):
        raise ValueError(
            f"{what} needs at least {len(keys)} entries, one per "
            f"{keys!r}; got {len(style)}."
        )
    return dict(zip(keys, style))


_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">", "h", "p")


def _default_color(i):
    return f"C{i % 10}"


def _default_marker(i):
    return _MARKERS[i % len(_MARKERS)]


def _binary_scores(estimator, X, caller, pos_label=None):
    """Scores of the positive class and their natural threshold.

    scikit-learn's response values of a fitted binary classifier:
    ``predict_proba(X)`` at ``pos_label`` (default ``classes_[1]``) with
    threshold 0.5 when available, otherwise ``decision_function(X)``, negated
    when ``pos_label`` is ``classes_[0]``, with threshold 0.
    """
    if not (
        hasattr(estimator, "predict_proba") or hasattr(estimator, "decision_function")
    ):
        raise TypeError(
            f"{caller} needs a fitted binary classifier with predict_proba or "
            f"decision_function; got {type(estimator).__name__}."
        )
    scores, _, method = _get_response_values_binary(
        estimator,
        X,
        response_method="auto",
        pos_label=pos_label,
        return_response_method_used=True,
    )
    return np.asarray(scores), 0.5 if method == "predict_proba" else 0.0
