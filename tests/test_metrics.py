import json
import math

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, average_precision_score, f1_score, roc_curve

from skacd.metrics import METRICS, DetectionReport, detection_report

KEYS = list(METRICS)


@pytest.fixture
def data():
    rng = np.random.RandomState(42)
    n = 240
    y_true = rng.randint(0, 2, n)
    y_score = np.clip(0.25 * y_true + rng.uniform(0, 0.75, n), 0, 1)
    groups = rng.choice(["progan", "sd14", "midjourney", "dalle"], n)
    return y_true, y_score, groups


def _reference(y_true, y_score, threshold=0.5):
    y_pred = (y_score > threshold).astype(int)
    return {
        "ap": average_precision_score(y_true, y_score),
        "acc": accuracy_score(y_true, y_pred),
        "real_acc": accuracy_score(y_true[y_true == 0], y_pred[y_true == 0]),
        "fake_acc": accuracy_score(y_true[y_true == 1], y_pred[y_true == 1]),
        "f1": f1_score(y_true, y_pred),
        # brute force: every cut, and "everything fake"
        "acc_oracle": max(
            accuracy_score(y_true, (y_score > t).astype(int))
            for t in [-np.inf, *np.unique(y_score)]
        ),
        **{
            f"tpr_at_fpr_{k}": max(
                tpr for fpr, tpr in zip(*roc_curve(y_true, y_score)[:2])
                if fpr <= k / 100 + 1e-12
            )
            for k in (1, 5)
        },
        "acc_cal": np.nan,
        "real_acc_cal": np.nan,
        "fake_acc_cal": np.nan,
        "n": len(y_true),
        "n_real": int(np.sum(y_true == 0)),
        "n_fake": int(np.sum(y_true == 1)),
    }


def _assert_row(row, ref):
    assert list(row) == KEYS
    for key in KEYS:
        expected = pytest.approx(ref[key], rel=1e-12, abs=1e-12, nan_ok=True)
        assert row[key] == expected, key


def test_matches_sklearn_per_group_mean_and_pooled(data):
    y_true, y_score, groups = data
    report = detection_report(y_true, y_score, groups)
    assert isinstance(report, DetectionReport)
    assert list(report.groups) == sorted(set(groups))
    refs = {}
    for g in set(groups):
        m = groups == g
        refs[g] = _reference(y_true[m], y_score[m])
        _assert_row(report.groups[g], refs[g])
    for key in ["ap", "acc", "real_acc", "fake_acc", "f1"]:
        expected = np.mean([refs[g][key] for g in refs])
        assert report.mean[key] == pytest.approx(expected, rel=1e-12)
    assert report.mean["n"] == len(y_true)
    _assert_row(report.pooled, _reference(y_true, y_score))
    # the unweighted mean differs from the pooled value on unequal groups
    assert report.mean["acc"] != pytest.approx(report.pooled["acc"], rel=1e-9)


def test_threshold_on_decision_values(data):
    y_true, y_score, groups = data
    decision = np.log(y_score + 1e-3) - np.log(1.001 - y_score) - 0.3
    report = detection_report(y_true, decision, groups, threshold=0.0)
    for g in set(groups):
        m = groups == g
        _assert_row(report.groups[g], _reference(y_true[m], decision[m], 0.0))


def test_tie_at_threshold_is_real_like_sklearn_predict():
    # predict_proba of 0.5 -> sklearn's predict picks class 0 (argmax tie)
    report = detection_report([0, 1], [0.5, 0.5])
    assert report.pooled["real_acc"] == 1.0
    assert report.pooled["fake_acc"] == 0.0


def test_string_labels_and_pos_label(data):
    y_true, y_score, groups = data
    names = np.where(y_true == 1, "fake", "real")
    a = detection_report(names, y_score, groups, pos_label="fake").to_dict()
    b = detection_report(y_true, y_score, groups).to_dict()
    a.pop("pos_label"), b.pop("pos_label")
    assert a == b
    with pytest.raises(ValueError, match="pos_label=1 is not a label"):
        detection_report(names, y_score, groups)


def test_no_groups_is_one_group_named_all(data):
    y_true, y_score, _ = data
    report = detection_report(y_true, y_score)
    assert list(report.groups) == ["all"]
    _assert_row(report.groups["all"], _reference(y_true, y_score))
    assert "mean" not in str(report).split("\n")[1]


def test_single_class_group_gives_nan_ap_not_a_crash():
    y_true = np.array([1, 1, 1, 0, 1, 0])
    y_score = np.array([0.9, 0.2, 0.7, 0.1, 0.8, 0.6])
    groups = np.array(["onlyfake"] * 3 + ["mixed"] * 3)
    report = detection_report(y_true, y_score, groups)
    row = report.groups["onlyfake"]
    assert math.isnan(row["ap"]) and math.isnan(row["real_acc"])
    assert row["fake_acc"] == pytest.approx(2 / 3)
    assert row["acc"] == pytest.approx(2 / 3)
    # the mean leaves NaN out
    assert report.mean["ap"] == pytest.approx(report.groups["mixed"]["ap"])
    assert report.mean["real_acc"] == pytest.approx(0.5)
    text = str(report)
    assert "nan" in text and "one class only" in text
    d = report.to_dict()
    assert d["groups"]["onlyfake"]["ap"] is None
    assert json.loads(report.to_json()) == d


def test_undefined_f1_is_nan():
    report = detection_report([0, 0], [0.1, 0.2])
    assert math.isnan(report.pooled["f1"])
    assert report.pooled["real_acc"] == 1.0


def test_table_has_groups_and_summary_rows(data):
    y_true, y_score, groups = data
    report = detection_report(y_true, y_score, groups)
    text = str(report)
    assert repr(report) == text
    lines = text.splitlines()
    assert lines[0].split()[:2] == ["group", "AP"]
    for g in ["progan", "sd14", "midjourney", "dalle"]:
        line = next(line for line in lines if line.startswith(g + " "))
        assert f"{report.groups[g]['ap']:.4f}" in line
        assert line.split()[-3] == str(report.groups[g]["n"])
    assert any(line.startswith("mean ") for line in lines)
    assert any(line.startswith("all ") for line in lines)
    # columns aligned: every table row has the same length
    rows = [line for line in lines[:7] if not line.startswith("-")]
    assert len({len(r) for r in rows}) == 1
    pct = report.to_text(percent=True, digits=2)
    assert f"{100 * report.groups['dalle']['acc']:.2f}" in pct


def test_to_dict_round_trips_through_json(data):
    y_true, y_score, groups = data
    report = detection_report(y_true, y_score, groups, threshold=0.4)
    d = report.to_dict()
    assert json.loads(json.dumps(d)) == d
    assert json.loads(report.to_json(indent=2)) == d
    assert d["threshold"] == 0.4 and d["pos_label"] == 1
    assert set(d) == {"groups", "mean", "pooled", "threshold", "pos_label",
                      "calibration"}
    assert d["calibration"] is None
    for row in [*d["groups"].values(), d["mean"], d["pooled"]]:
        assert type(row["ap"]) is float and type(row["n"]) is int


def test_pos_label_numpy_scalar_is_json_plain(data):
    y_true, y_score, groups = data
    report = detection_report(y_true, y_score, groups, pos_label=np.int64(1))
    assert type(report.to_dict()["pos_label"]) is int
    json.dumps(report.to_dict())


def test_to_markdown(data):
    y_true, y_score, groups = data
    md = detection_report(y_true, y_score, groups).to_markdown()
    lines = md.splitlines()
    assert lines[0].startswith("| group | AP |")
    assert lines[1].startswith("| --- | ---: |")
    assert len(lines) == 2 + 4 + 2
    assert lines[-1].startswith("| **all** |")


def test_to_frame():
    pd = pytest.importorskip("pandas")
    report = detection_report([0, 1, 0, 1], [0.1, 0.9, 0.6, 0.4], ["a", "a", "b", "b"])
    frame = report.to_frame()
    assert isinstance(frame, pd.DataFrame)
    assert list(frame.index) == ["a", "b", "mean", "all"]
    assert frame.loc["a", "ap"] == 1.0


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(y_true=[0, 1, 2], y_score=[0.1, 0.2, 0.3]), "at most two classes"),
        (dict(y_true=[0, 1], y_score=[0.1, np.nan]), "y_score"),
        (dict(y_true=[0, 1], y_score=[0.1, 0.2, 0.3]), "inconsistent"),
        (dict(y_true=[0, 1], y_score=[0.1, 0.2], groups=["a"]), "inconsistent"),
        (dict(y_true=[0, 1], y_score=[[0.9, 0.1], [0.2, 0.8]]), "y_score"),
        (dict(y_true=[0.5, 0.2], y_score=[0.1, 0.2]), "two classes"),
        (dict(y_true=[0, 1], y_score=[0.1, 0.2], threshold="high"), "'threshold'"),
    ],
)
def test_invalid_inputs_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        detection_report(**kwargs)


def test_to_frame_without_pandas_says_so(monkeypatch):
    report = detection_report([0, 1], [0.1, 0.9])
    monkeypatch.setitem(__import__("sys").modules, "pandas", None)  # import fails
    with pytest.raises(ImportError, match="requires pandas"):
        report.to_frame()


# -- operating points --------------------------------------------------------------


def test_calibrated_metrics_use_the_conformal_threshold(data):
    y_true, y_score, groups = data
    rng = np.random.RandomState(1)
    cal = rng.uniform(0, 0.75, 99)  # reals of the same distribution
    report = detection_report(y_true, y_score, groups, calibration_scores=cal,
                              target_fpr=0.05)
    t = np.sort(cal)[94]  # ceil(100 * 0.95) = 95th smallest of 99
    assert report.calibration == {"threshold": t, "target_fpr": 0.05, "n": 99}
    for g in report.groups:
        m = groups == g
        pred = (y_score[m] > t).astype(int)
        row = report.groups[g]
        assert row["acc_cal"] == pytest.approx(accuracy_score(y_true[m], pred))
        assert row["real_acc_cal"] == pytest.approx(np.mean(pred[y_true[m] == 0] == 0))
        assert row["fake_acc_cal"] == pytest.approx(np.mean(pred[y_true[m] == 1] == 1))
        assert row["acc"] == pytest.approx(accuracy_score(y_true[m], y_score[m] > 0.5))
    assert report.mean["acc_cal"] == pytest.approx(
        np.mean([r["acc_cal"] for r in report.groups.values()])
    )
    text = report.to_text()
    assert "cal ACC" in text and "calibrated on 99 held-out known-real images" in text
    assert "oracle ACC" in text and "optimistic bound" in text
    d = report.to_dict()
    assert d["calibration"]["n"] == 99 and json.loads(report.to_json()) == d
    # without calibration the columns are NaN and left out of the table
    plain = detection_report(y_true, y_score, groups)
    assert math.isnan(plain.pooled["acc_cal"]) and "cal ACC" not in str(plain)


def test_too_few_calibration_scores_warn_and_call_everything_real():
    from skacd.exceptions import CalibrationWarning

    with pytest.warns(CalibrationWarning, match="at least 19 are needed"):
        report = detection_report([0, 1], [0.2, 0.9], calibration_scores=[0.1] * 10)
    assert report.pooled["fake_acc_cal"] == 0.0 and report.pooled["real_acc_cal"] == 1.0
    assert report.to_dict()["calibration"]["threshold"] is None


def test_operating_points_undefined_for_one_class_groups():
    report = detection_report(
        [1, 1, 0, 1], [0.9, 0.4, 0.1, 0.8], ["sd", "sd", "r", "r"]
    )
    for key in ("acc_oracle", "tpr_at_fpr_1", "tpr_at_fpr_5"):
        assert math.isnan(report.groups["sd"][key])
    assert report.groups["r"]["acc_oracle"] == 1.0


def test_metrics_selects_columns(data):
    y_true, y_score, groups = data
    report = detection_report(y_true, y_score, groups)
    header = report.to_text(metrics=["ap", "tpr_at_fpr_1"]).splitlines()[0]
    assert header.split() == ["group", "AP", "TPR@1%"]
    assert report.to_markdown(metrics=["acc"]).startswith("| group | ACC |")
    with pytest.raises(ValueError, match="Unknown metric"):
        report.to_text(metrics=["auc"])
