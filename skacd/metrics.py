"""Detection metrics per generator, as reported in the AI-generated image literature."""

import json
import math
from fractions import Fraction
from numbers import Real

import numpy as np
from sklearn.metrics import average_precision_score
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import (
    assert_all_finite,
    check_consistent_length,
    column_or_1d,
)

from ._compat import Interval, validate_params
from ._json import json_safe, to_builtin

__all__ = ["DetectionReport", "detection_report"]

#: Every metric of a row, in table order: its header in the tables of
#: :class:`DetectionReport`, and the longer one of the benchmark's tables
#: (:class:`skacd.evaluation.CrossGeneratorResult`).
_COLUMNS = {
    "ap": ("AP", "AP"),
    "acc": ("ACC", "ACC"),
    "real_acc": ("real ACC", "real ACC"),
    "fake_acc": ("fake ACC", "fake ACC"),
    "f1": ("F1", "F1"),
    "acc_oracle": ("oracle ACC", "ACC (oracle)"),
    "tpr_at_fpr_1": ("TPR@1%", "TPR@1%FPR"),
    "tpr_at_fpr_5": ("TPR@5%", "TPR@5%FPR"),
    "acc_cal": ("cal ACC", "ACC (cal.)"),
    "real_acc_cal": ("cal real", "real ACC (cal.)"),
    "fake_acc_cal": ("cal fake", "fake ACC (cal.)"),
    "n": ("n", "n"),
    "n_real": ("n real", "n real"),
    "n_fake": ("n fake", "n fake"),
}
#: Metric keys of every row, in table order.
METRICS = tuple(_COLUMNS)
_HEADERS = {key: short for key, (short, _) in _COLUMNS.items()}
_LONG_HEADERS = {key: long for key, (_, long) in _COLUMNS.items()}
#: Metrics at the decision threshold (undefined for a bare deviation score).
AT_THRESHOLD = ("acc", "real_acc", "fake_acc", "f1")
_COUNTS = ("n", "n_real", "n_fake")
#: Metrics at the threshold calibrated on known-real images (NaN without them).
CALIBRATED = ("acc_cal", "real_acc_cal", "fake_acc_cal")
#: The false-positive rates of the ``tpr_at_fpr_*`` metrics, in percent.
_TPR_AT_FPR = {"tpr_at_fpr_1": 1, "tpr_at_fpr_5": 5}


class DetectionReport:
    """Per-group detection metrics, with their mean and the pooled scores.

    Returned by :func:`detection_report`; not meant to be built by hand. Every
    row is a dict with the keys ``"ap"`` (average precision), ``"acc"``
    (accuracy at the threshold), ``"real_acc"`` (accuracy on real images,
    the true negative rate), ``"fake_acc"`` (accuracy on generated images,
    the true positive rate), ``"f1"`` (F1 score of the "fake" class),
    ``"acc_oracle"`` (accuracy at the best threshold for the group),
    ``"tpr_at_fpr_1"`` and ``"tpr_at_fpr_5"`` (fake ACC at the threshold that
    calls at most 1% / 5% of the group's real images fake), ``"acc_cal"``,
    ``"real_acc_cal"`` and ``"fake_acc_cal"`` (ACC, real ACC and fake ACC at
    the threshold calibrated on held-out known-real images, NaN without
    them), and the counts ``"n"``, ``"n_real"`` and ``"n_fake"``. Metrics are
    floats in [0, 1], NaN where undefined; counts are ints.

    Parameters
    ----------
    groups : dict of str to dict
        One row per group, in sorted group order.
    mean : dict
        The unweighted mean of each metric over the groups.
    pooled : dict
        The metrics computed on all samples at once.
    threshold : float
        The decision threshold applied to the scores.
    pos_label : int, float, bool or str
        The label of the generated ("fake") class.
    calibration : dict or None, default=None
        ``{"threshold", "target_fpr", "n"}`` of the calibrated threshold.

    Attributes
    ----------
    groups : dict of str to dict
        One row per group, keyed by the group name (converted to ``str``).
    mean : dict
        The unweighted mean over groups, NaN values left out, as papers report
        it. Its counts are the totals.
    pooled : dict
        Every sample pooled into one group ("all" in the table).
    threshold : float
        The decision threshold.
    pos_label : int, float, bool or str
        The positive ("fake") label.
    calibration : dict or None
        The threshold calibrated on known-real images (``"threshold"``), its
        ``"target_fpr"`` and the number ``"n"`` of calibration images; None
        when :func:`detection_report` had no ``calibration_scores``.

    See Also
    --------
    detection_report : Build a report from labels, scores and groups.

    Examples
    --------
    >>> from skacd.metrics import detection_report
    >>> report = detection_report(
    ...     [0, 1, 0, 1], [0.2, 0.9, 0.6, 0.7], groups=["a", "a", "b", "b"])
    >>> report.groups["b"]["acc"]
    0.5
    >>> report.mean["acc"], report.pooled["acc"]
    (0.75, 0.75)
    """

    def __init__(self, groups, mean, pooled, threshold, pos_label, calibration=None):
        self.groups = groups
        self.mean = mean
        self.pooled = pooled
        self.threshold = threshold
        self.pos_label = pos_label
        self.calibration = calibration

    def _metrics(self, metrics):
        if metrics is None:
            calibrated = self.calibration is not None
            return [m for m in METRICS if calibrated or m not in CALIBRATED]
        unknown = [m for m in metrics if m not in METRICS]
        if unknown:
            raise ValueError(
                f"Unknown metric(s) {unknown}; choose from {list(METRICS)}."
            )
        return list(metrics)

    def _rows(self):
        rows = list(self.groups.items())
        if len(rows) > 1:
            rows += [("mean", self.mean), ("all", self.pooled)]
        return rows

    def _cells(self, digits, percent, metrics):
        scale = 100.0 if percent else 1.0
        header = ["group"] + [_HEADERS[m] for m in metrics]
        body = []
        for name, row in self._rows():
            cells = [str(name)]
            for m in metrics:
                value = row[m]
                if m in _COUNTS:
                    cells.append(str(value))
                elif math.isnan(value):
                    cells.append("nan")
                else:
                    cells.append(f"{value * scale:.{digits}f}")
            body.append(cells)
        return header, body

    def _footnotes(self, metrics):
        notes = []
        if len(self.groups) > 1:
            notes.append(
                "mean: unweighted mean over groups (NaN left out); "
                "all: every sample pooled."
            )
        if any(math.isnan(row["ap"]) for _, row in self._rows()):
            notes.append("AP is nan for a group holding one class only.")
        if "acc_oracle" in metrics:
            notes.append(
                "oracle ACC: ACC at the best threshold for each group, chosen on its "
                "test labels (an optimistic bound, as UnivFD reports it)."
            )
        if any(m in metrics for m in _TPR_AT_FPR):
            notes.append(
                "TPR@k%: fake ACC at the threshold that calls at most k% of the "
                "group's real images fake (chosen on them)."
            )
        if self.calibration is not None and any(m in metrics for m in CALIBRATED):
            c = self.calibration
            notes.append(
                f"cal: ACC / real ACC / fake ACC at score > {c['threshold']:g}, "
                f"calibrated on {c['n']} held-out known-real images at target FPR "
                f"{c['target_fpr']:g} (no test label used)."
            )
        return notes

    def to_text(self, *, digits=4, percent=False, metrics=None):
        """Format the report as an aligned plain-text table.

        Parameters
        ----------
        digits : int, default=4
            Decimals of each metric.
        percent : bool, default=False
            Show metrics in percent, as papers do, rather than in [0, 1].
        metrics : sequence of str or None, default=None
            The columns, from :data:`METRICS`; None shows all of them (the
            calibrated ones only when the report has a calibration).

        Returns
        -------
        text : str
            One line per group, then the ``mean`` and ``all`` rows when there
            are several groups, then notes.
        """
        metrics = self._metrics(metrics)
        header, body = self._cells(digits, percent, metrics)
        widths = [max(len(r[i]) for r in [header] + body) for i in range(len(header))]

        def line(cells):
            first = cells[0].ljust(widths[0])
            rest = [c.rjust(w) for c, w in zip(cells[1:], widths[1:])]
            return "  ".join([first] + rest).rstrip()

        lines = [line(header)]
        n_groups = len(self.groups)
        for i, cells in enumerate(body):
            if n_groups > 1 and i == n_groups:
                lines.append("-" * len(lines[0]))
            lines.append(line(cells))
        lines.append(f"threshold: score > {self.threshold:g} is fake")
        lines.extend(self._footnotes(metrics))
        return "\n".join(lines)

    def to_markdown(self, *, digits=4, percent=False, metrics=None):
        """Format the report as a Markdown (GitHub) table.

        Parameters
        ----------
        digits : int, default=4
            Decimals of each metric.
        percent : bool, default=False
            Show metrics in percent rather than in [0, 1].
        metrics : sequence of str or None, default=None
            The columns, as for :meth:`to_text`.

        Returns
        -------
        markdown : str
            The table, the ``mean`` and ``all`` rows in bold.
        """
        header, body = self._cells(digits, percent, self._metrics(metrics))
        n_groups = len(self.groups)
        lines = [
            "| " + " | ".join(header) + " |",
            "| " + " | ".join(["---"] + ["---:"] * (len(header) - 1)) + " |",
        ]
        for i, cells in enumerate(body):
            if i >= n_groups:
                cells = [f"**{c}**" for c in cells]
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines)

    def to_dict(self):
        """Return the report as plain, JSON-serialisable Python objects.

        Returns
        -------
        report : dict
            Keys ``"groups"`` (group name to row), ``"mean"``, ``"pooled"``,
            ``"threshold"``, ``"pos_label"`` and ``"calibration"`` (None, or
            the calibrated ``"threshold"`` (None if infinite), ``"target_fpr"``
            and ``"n"``). Metrics are Python floats,
            counts Python ints, and undefined metrics (NaN) are ``None``, so
            ``json.loads(json.dumps(d)) == d``.
        """

        def row(r):
            return {m: json_safe(r[m]) for m in METRICS}

        return {
            "groups": {name: row(r) for name, r in self.groups.items()},
            "mean": row(self.mean),
            "pooled": row(self.pooled),
            "threshold": float(self.threshold),
            "pos_label": to_builtin(self.pos_label),
            "calibration": None if self.calibration is None else {
                "threshold": (
                    float(self.calibration["threshold"])
                    if math.isfinite(self.calibration["threshold"])
                    else None
                ),
                "target_fpr": float(self.calibration["target_fpr"]),
                "n": int(self.calibration["n"]),
            },
        }

    def to_json(self, **kwargs):
        """Return the report as a JSON string (strict JSON: NaN becomes null).

        Parameters
        ----------
        **kwargs : dict
            Passed to :func:`json.dumps`, such as ``indent=2``.

        Returns
        -------
        text : str
            ``json.dumps(self.to_dict(), allow_nan=False, **kwargs)``.
        """
        return json.dumps(self.to_dict(), allow_nan=False, **kwargs)

    def to_frame(self):
        """Return the report as a pandas DataFrame (requires pandas).

        Returns
        -------
        frame : pandas.DataFrame
            One row per group, then ``mean`` and ``all`` when there are
            several groups; one column per metric; NaN where undefined.
        """
        try:
            import pandas as pd
        except ImportError as exc:  # pragma: no cover - depends on the env
            raise ImportError(
                "DetectionReport.to_frame requires pandas: pip install pandas"
            ) from exc
        names, rows = zip(*self._rows())
        frame = pd.DataFrame(list(rows), index=list(names), columns=list(METRICS))
        frame.index.name = "group"
        return frame

    def __str__(self):
        return self.to_text()

    def __repr__(self):
        return self.to_text()


def _at_threshold(positive, y_score, threshold):
    """(ACC, real ACC, fake ACC) when ``y_score > threshold`` is called fake."""
    pred = y_score > threshold
    n_fake = int(positive.sum())
    n_real = positive.size - n_fake
    tp = int(np.sum(pred & positive))
    tn = int(np.sum(~pred & ~positive))
    nan = float("nan")
    return (
        (tp + tn) / positive.size,
        tn / n_real if n_real else nan,
        tp / n_fake if n_fake else nan,
    )


def _oracle_accuracy(positive, y_score):
    """The best ACC over every threshold (``score > t`` is fake), NaN for one class."""
    real = np.sort(y_score[~positive])
    fake = np.sort(y_score[positive])
    if not real.size or not fake.size:
        return float("nan")
    cuts = np.unique(y_score)
    real_below = np.searchsorted(real, cuts, side="right")  # called real: s <= t
    fake_above = fake.size - np.searchsorted(fake, cuts, side="right")
    best = max(int(np.max(real_below + fake_above)), fake.size)  # t = -inf: all fake
    return best / y_score.size


def _tpr_at_fpr(positive, y_score, percent):
    """TPR at the threshold that calls at most ``percent``% of the reals fake."""
    real = np.sort(y_score[~positive])[::-1]
    fake = y_score[positive]
    if not real.size or not fake.size:
        return float("nan")
    allowed = math.floor(Fraction(percent, 100) * real.size)  # false positives
    threshold = real[allowed] if allowed < real.size else -np.inf
    return float(np.mean(fake > threshold))


def _scores(positive, y_score, threshold, calibrated=None):
    """One row of metrics from a boolean target and its scores."""
    pred = y_score > threshold
    n = int(positive.size)
    n_fake = int(positive.sum())
    n_real = n - n_fake
    tp = int(np.sum(pred & positive))
    tn = int(np.sum(~pred & ~positive))
    fp = n_real - tn
    fn = n_fake - tp
    nan = float("nan")
    if n_real and n_fake:
        ap = float(average_precision_score(positive, y_score))
    else:
        ap = nan
    denom = 2 * tp + fp + fn
    if calibrated is None:
        cal = (nan, nan, nan)
    else:
        cal = _at_threshold(positive, y_score, calibrated)
    return {
        "ap": ap,
        "acc": (tp + tn) / n,
        "real_acc": tn / n_real if n_real else nan,
        "fake_acc": tp / n_fake if n_fake else nan,
        "f1": 2 * tp / denom if denom else nan,
        "acc_oracle": _oracle_accuracy(positive, y_score),
        **{k: _tpr_at_fpr(positive, y_score, p) for k, p in _TPR_AT_FPR.items()},
        "acc_cal": cal[0],
        "real_acc_cal": cal[1],
        "fake_acc_cal": cal[2],
        "n": n,
        "n_real": n_real,
        "n_fake": n_fake,
    }


def _nanmean(values):
    values = [v for v in values if not math.isnan(v)]
    return float(sum(values) / len(values)) if values else float("nan")


@validate_params(
    {
        "y_true": ["array-like"],
        "y_score": ["array-like"],
        "groups": ["array-like", None],
        "threshold": [Real],
        "pos_label": [Real, str],
        "calibration_scores": ["array-like", None],
        "target_fpr": [Interval(Real, 0, 1, closed="neither")],
    },
    prefer_skip_nested_validation=True,
)
def detection_report(y_true, y_score, groups=None, threshold=0.5, *, pos_label=1,
                     calibration_scores=None, target_fpr=0.05):
    """Average precision and accuracies per group, as in detection papers.

    For each group (generator or subset) this computes the metrics of
    Tables 1-2 of the single-class attribution paper and of ForenSynths and
    UnivFD: average precision (AP), accuracy at a threshold (ACC), accuracy on
    real images (real ACC) and on generated images (fake ACC), plus F1 and
    the counts; then their unweighted mean over groups, and the same metrics
    on all samples pooled.

    Beside ACC at the fixed threshold it reports three operating points: ACC
    at the *oracle* threshold (the best one for each group, chosen on its
    test labels: the optimistic bound UnivFD reports), the true-positive
    rate at a false-positive rate of 1% and 5% (thresholds chosen on the
    group's real images), and, given ``calibration_scores`` of held-out
    known-real images, ACC, real ACC and fake ACC at the threshold
    calibrated on them (:func:`~skacd.calibration.conformal_threshold`):
    the one operating point that uses no test label.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels: ``pos_label`` for a generated ("fake") image, any other
        single value for a real one. At most two distinct values.

    y_score : array-like of shape (n_samples,)
        Scores, larger meaning more likely generated: the probability of the
        fake class (``predict_proba(X)[:, 1]``) or a decision value
        (``decision_function(X)``). Must be finite.

    groups : array-like of shape (n_samples,), default=None
        The group of each sample, such as the ``groups`` of
        :func:`~skacd.datasets.load_image_folder`. None puts every sample in
        one group named ``"all"``.

    threshold : float, default=0.5
        A sample is predicted fake when ``y_score > threshold``, applied to
        ``y_score`` exactly as given. Use 0.5 for probabilities and 0.0 for
        decision values; both match a scikit-learn classifier's ``predict``
        (which picks the first class on a tie). AP ignores the threshold.

    pos_label : int, float, bool or str, default=1
        The label of the generated class in ``y_true``.

    calibration_scores : array-like of shape (n_calibration,), default=None
        Scores, by the same detector, of known-real images that it was not
        fitted on and that are not in ``y_score`` (e.g. real training images
        held out of the fit). Sets the calibrated threshold of the
        ``*_cal`` metrics; None leaves them NaN.

    target_fpr : float in (0, 1), default=0.05
        The target false-positive rate of the calibrated threshold.

    Returns
    -------
    report : DetectionReport
        ``report.groups[name]``, ``report.mean`` and ``report.pooled`` are
        dicts with keys ``"ap"``, ``"acc"``, ``"real_acc"``, ``"fake_acc"``,
        ``"f1"``, ``"acc_oracle"``, ``"tpr_at_fpr_1"``, ``"tpr_at_fpr_5"``,
        ``"acc_cal"``, ``"real_acc_cal"``, ``"fake_acc_cal"``, ``"n"``,
        ``"n_real"``, ``"n_fake"`` (see :class:`DetectionReport`). Printing
        it shows an
        aligned table; see also ``to_dict``, ``to_json``, ``to_markdown``
        and, with pandas, ``to_frame``.

    See Also
    --------
    sklearn.metrics.average_precision_score : AP of one set of scores.
    sklearn.metrics.accuracy_score : Accuracy of one set of predictions.
    skacd.model_selection.CrossGeneratorSplit : Train on one generator, test on
        the others.
    skacd.calibration.conformal_threshold : The calibrated threshold.

    Notes
    -----
    AP is :func:`~sklearn.metrics.average_precision_score`, which needs both
    classes. For a group holding one class only (say, a folder of generated
    images alone) AP is undefined and reported as NaN, without a warning;
    likewise real ACC without real images, fake ACC without generated images,
    and F1 when there is no true and no predicted generated image. The table
    says so in a note.

    The ``mean`` row is the unweighted mean over groups with NaN values left
    out, so every generator counts the same however many images it has; this
    is the "mean" column of papers. Its counts are totals. The pooled ("all")
    row weights every image the same instead.

    TPR at FPR :math:`k\\%` uses the threshold :math:`t` that is the
    :math:`(\\lfloor k n_\\text{real} / 100 \\rfloor + 1)`-th largest real
    score, so that at most :math:`k\\%` of the group's real images score
    above it, and reports the share of generated images above it (no
    interpolation between ROC points). Oracle ACC and TPR at FPR choose
    their thresholds on the test images themselves and are upper bounds of
    what a deployed detector achieves; the calibrated ACC is not.

    Examples
    --------
    >>> import numpy as np
    >>> from skacd.metrics import detection_report
    >>> rng = np.random.RandomState(0)
    >>> y_true = np.tile([0, 1], 30)
    >>> y_score = np.clip(0.3 * y_true + rng.uniform(0, 0.7, 60), 0, 1)
    >>> groups = np.repeat(["biggan", "dalle", "midjourney"], 20)
    >>> report = detection_report(y_true, y_score, groups)
    >>> print(report.to_text(metrics=["ap", "acc", "real_acc", "fake_acc", "f1",
    ...                              "n", "n_real", "n_fake"]))
    group           AP     ACC  real ACC  fake ACC      F1   n  n real  n fake
    biggan      0.9414  0.8000    0.7000    0.9000  0.8182  20      10      10
    dalle       0.9833  0.9000    0.8000    1.0000  0.9091  20      10      10
    midjourney  0.7242  0.6500    0.9000    0.4000  0.5333  20      10      10
    --------------------------------------------------------------------------
    mean        0.8830  0.7833    0.8000    0.7667  0.7535  60      30      30
    all         0.8958  0.7833    0.8000    0.7667  0.7797  60      30      30
    threshold: score > 0.5 is fake
    mean: unweighted mean over groups (NaN left out); all: every sample pooled.
    >>> report.groups["dalle"]["ap"]
    0.983...
    >>> report.groups["dalle"]["acc_oracle"]
    0.95
    >>> report.to_dict()["groups"]["dalle"]["n"]
    20

    The operating points: the oracle threshold, TPR at 5% FPR, and a
    threshold calibrated on 200 other real images at a 10% target FPR:

    >>> cal = np.clip(rng.uniform(0, 0.7, 200), 0, 1)
    >>> report = detection_report(y_true, y_score, groups, calibration_scores=cal,
    ...                           target_fpr=0.1)
    >>> print(report.to_text(metrics=["ap", "acc", "acc_oracle", "tpr_at_fpr_5",
    ...                               "acc_cal", "real_acc_cal"], digits=2))
    group         AP   ACC  oracle ACC  TPR@5%  cal ACC  cal real
    biggan      0.94  0.80        0.90    0.70     0.85      0.90
    dalle       0.98  0.90        0.95    0.90     0.85      0.80
    midjourney  0.72  0.65        0.75    0.10     0.50      0.90
    -------------------------------------------------------------
    mean        0.88  0.78        0.87    0.57     0.73      0.87
    all         0.90  0.78        0.82    0.53     0.73      0.87
    threshold: score > 0.5 is fake
    mean: unweighted mean over groups (NaN left out); all: every sample pooled.
    oracle ACC: ACC at the best threshold for each group, chosen on its test ...
    TPR@k%: fake ACC at the threshold that calls at most k% of the group's ...
    cal: ACC / real ACC / fake ACC at score > 0.62..., calibrated on 200 ...

    A group of one class gets NaN AP:

    >>> detection_report([1, 1, 0, 1], [0.9, 0.4, 0.1, 0.8],
    ...                  groups=["sd", "sd", "real", "real"]).groups["sd"]["ap"]
    nan
    """
    y_true = column_or_1d(y_true, input_name="y_true")
    y_score = np.asarray(y_score)
    if y_score.ndim == 2 and y_score.shape[1] != 1:
        raise ValueError(
            "y_score must be 1d: one score per sample, larger meaning more likely "
            f"fake; got shape {y_score.shape}. For predict_proba output pass "
            "proba[:, 1]."
        )
    y_score = column_or_1d(y_score, input_name="y_score")
    if y_score.dtype.kind not in "biuf":
        raise ValueError(f"y_score must be numeric, got dtype {y_score.dtype}.")
    y_score = y_score.astype(np.float64)
    assert_all_finite(y_score, input_name="y_score")
    if groups is None:
        groups = np.full(y_true.shape[0], "all", dtype=object)
    else:
        groups = column_or_1d(groups, input_name="groups")
    check_consistent_length(y_true, y_score, groups)
    if y_true.shape[0] == 0:
        raise ValueError("detection_report needs at least one sample.")

    target_type = type_of_target(y_true, input_name="y_true")
    if target_type not in ("binary", "multiclass") or np.unique(y_true).size > 2:
        raise ValueError(
            "y_true must hold at most two classes (real and fake); got "
            f"target type {target_type!r} with labels {np.unique(y_true).tolist()}."
        )
    labels = np.unique(y_true)
    if labels.size == 2 and pos_label not in labels.tolist():
        raise ValueError(
            f"pos_label={pos_label!r} is not a label of y_true: {labels.tolist()}."
        )
    positive = y_true == pos_label

    calibration = None
    if calibration_scores is not None:
        from .calibration import conformal_threshold

        calibration_scores = column_or_1d(
            calibration_scores, input_name="calibration_scores"
        ).astype(np.float64)
        if calibration_scores.size == 0:
            raise ValueError("calibration_scores is empty.")
        assert_all_finite(calibration_scores, input_name="calibration_scores")
        calibration = {
            "threshold": conformal_threshold(calibration_scores, target_fpr),
            "target_fpr": float(target_fpr),
            "n": int(calibration_scores.size),
        }
    cal_threshold = None if calibration is None else calibration["threshold"]

    names = np.unique(groups)
    rows = {}
    for name in names:
        mask = groups == name
        key = str(to_builtin(name))
        if key in rows:
            raise ValueError(f"Two groups both read as {key!r} once made strings.")
        rows[key] = _scores(positive[mask], y_score[mask], threshold, cal_threshold)
    mean = {
        m: _nanmean([r[m] for r in rows.values()]) for m in METRICS if m not in _COUNTS
    }
    for m in _COUNTS:
        mean[m] = int(sum(r[m] for r in rows.values()))
    pooled = _scores(positive, y_score, threshold, cal_threshold)
    return DetectionReport(
        groups=rows,
        mean={m: mean[m] for m in METRICS},
        pooled=pooled,
        threshold=float(threshold),
        pos_label=pos_label,
        calibration=calibration,
    )
