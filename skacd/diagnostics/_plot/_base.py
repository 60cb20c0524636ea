"""Helpers shared by the displays: optional-dependency checks, axes, labels.

matplotlib is imported inside functions only, so that importing
``skacd.diagnostics`` never needs it.
"""

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


def _get_axes(ax):
    """Return ``(ax, figure)``, making a new figure when ``ax`` is None."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots()
    return ax, ax.figure


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
