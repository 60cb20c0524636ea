"""Scoring one fitted method on a test set: its report and its sweep records."""

import math

from ._methods import _AP_ONLY, METRICS


def _fake_scores(name, model, X):
    """Scores, larger meaning more likely fake, and whether ACC is defined."""
    if name in _AP_ONLY:
        return -model.score_samples(X), False
    if name == "one_class":  # its deviation; fake above threshold_ (see _report)
        return model[-1].deviation(model[0].transform(X)), True
    return model.predict_proba(X)[:, 1], True


def _threshold(name, model):
    """The decision threshold of a method's scores: 0.5, or the one it set itself."""
    if name == "one_class":  # cross-fitted on the real training rows
        return float(model[-1].threshold_)
    return 0.5


def _report(name, model, X, y, groups, keep_scores=False, X_cal=None):
    """Per-group metrics of one fitted method as a plain dict.

    ``X_cal``: held-out real training rows; their scores set the calibrated
    threshold of the ``*_cal`` metrics (see :func:`skacd.metrics.detection_report`).
    """
    from ..metrics import AT_THRESHOLD, detection_report

    scores, has_acc = _fake_scores(name, model, X)
    cal = None if X_cal is None else _fake_scores(name, model, X_cal)[0]
    report = detection_report(
        y, scores, groups, threshold=_threshold(name, model), calibration_scores=cal
    ).to_dict()
    if not has_acc:  # a deviation score has no calibrated threshold
        for row in [*report["groups"].values(), report["mean"], report["pooled"]]:
            for key in AT_THRESHOLD:
                row[key] = None
        report["threshold"] = None
    if keep_scores:
        return report, [round(float(v), 6) for v in scores]
    return report


def _records(report, method, param, value, seed, encoder, extra=None):
    """RobustnessCurveDisplay records (mean over groups, then per group)."""
    base = {"method": method, "param": param, "value": value, "seed": seed,
            "encoder": encoder, **(extra or {})}
    keys = ("ap",) if method in _AP_ONLY else METRICS

    def record(group, row):
        r = dict(base, group=group)
        for k in keys:
            v = row.get(k)
            if v is not None and math.isfinite(v):  # the display needs finite values
                r[k] = float(v)
        return r

    mean = record("mean", report["mean"])
    per_group = [record(g, row) for g, row in report["groups"].items()]
    return mean, per_group
