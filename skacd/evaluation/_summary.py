"""Statistics over seeds and test groups."""

import math

import numpy as np

from ._methods import METRICS


def _finite(values):
    return [v for v in values if v is not None and not math.isnan(v)]


def _stats(values):
    """Mean and sample standard deviation (ddof=1) over seeds."""
    kept = _finite(values)
    if not kept:
        return {"mean": None, "std": None, "n": 0}
    mean = float(np.mean(kept))
    std = float(np.std(kept, ddof=1)) if len(kept) > 1 else None
    return {"mean": mean, "std": std, "n": len(kept)}


def _mean_or_none(values):
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


def _root_means(groups):
    """``{"mean <root>": [its groups]}`` for test roots with several groups.

    With ``--test sd-coco/val forensynths`` the groups are ``sd-coco/val``
    and ``forensynths/<generator>``: ``"mean forensynths"`` is then the mean
    over the unseen generators alone.
    """
    by_root = {}
    for group in groups:
        root, sep, _ = group.partition("/")
        if sep:
            by_root.setdefault(root, []).append(group)
    return {f"mean {root}": members for root, members in by_root.items()
            if len(members) > 1 and len(members) < len(groups)}


def _summarise(methods, runs, test_groups):
    """``summary[method][group][metric]``: ``{"mean", "std", "n"}`` over seeds,
    per test group, for the mean over groups and per multi-group test root."""
    summary = {}
    for name in methods:
        reports = [r["report"] for r in runs if r["method"] == name]
        summary[name] = {
            group: {
                k: _stats([rep["groups"][group][k] for rep in reports]) for k in METRICS
            }
            for group in test_groups
        }
        summary[name]["mean"] = {
            k: _stats([rep["mean"][k] for rep in reports]) for k in METRICS
        }
        for label, members in _root_means(test_groups).items():
            summary[name][label] = {
                k: _stats(
                    [
                        _mean_or_none([rep["groups"][g][k] for g in members])
                        for rep in reports
                    ]
                )
                for k in METRICS
            }
    return summary
