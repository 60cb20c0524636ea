"""skacd.calibration: conformal thresholds and p-values set on known-real images."""

import math
import pickle
import warnings

import numpy as np
import pytest
from scipy import stats
from sklearn.base import clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.exceptions import NotFittedError
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score
from sklearn.model_selection import (
    FixedThresholdClassifier,
    TunedThresholdClassifierCV,
    train_test_split,
)
from sklearn.pipeline import make_pipeline

from skacd import AttributionClassifier, AttributionSpace, ConformalThresholdClassifier
from skacd.calibration import (
    calibration_fingerprint,
    conformal_p_values,
    conformal_threshold,
    min_calibration_samples,
)
from skacd.datasets import make_generator_manifolds
from skacd.exceptions import CalibrationWarning, ImageLoadError, ImageLoadWarning
from skacd.io import load, save

from conftest import tiny_detector, write_labelled_folder

# -- the conformal threshold -------------------------------------------------------


@pytest.mark.parametrize("n", [19, 20, 57, 99, 100, 1000])
@pytest.mark.parametrize("target", [0.01, 0.05, 0.1, 0.25])
def test_threshold_is_the_conformal_order_statistic(n, target):
    scores = np.random.RandomState(n).normal(size=n)
    if (n + 1) * target < 1:
        with pytest.warns(CalibrationWarning):
            assert conformal_threshold(scores, target) == np.inf
        return
    # direct: the ceil((n + 1)(1 - target))-th smallest score (1-based), by brute
    # force over candidate ranks rather than the closed form
    k = min(r for r in range(1, n + 1) if r >= (n + 1) * (1 - target) - 1e-9)
    expected = np.sort(scores)[k - 1]
    assert conformal_threshold(scores, target) == expected
    # at most floor((n + 1) * target) - 1 calibration scores lie above it
    assert np.sum(scores > expected) <= math.floor((n + 1) * target + 1e-9) - 1


def test_decimal_targets_are_exact():
    # (19 + 1) * 0.05 is exactly 1: one rank above the threshold, the maximum
    scores = np.arange(19.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert conformal_threshold(scores, 0.05) == 18.0
    assert min_calibration_samples(0.05) == 19
    assert min_calibration_samples(0.01) == 99
    assert min_calibration_samples(0.3) == 3


def test_too_few_images_warn_naming_the_minimum():
    message = r"10 known-real .* at least 19 are needed"
    with pytest.warns(CalibrationWarning, match=message):
        assert conformal_threshold(np.arange(10.0), 0.05) == np.inf


@pytest.mark.parametrize("bad, message", [
    ([0.1, np.nan], "NaN"),
    (np.zeros((3, 2)), "1-D"),
])
def test_bad_scores_are_refused(bad, message):
    with pytest.raises(ValueError, match=message):
        conformal_threshold(bad, 0.1)


def test_target_fpr_is_validated():
    with pytest.raises(ValueError, match="target_fpr"):
        conformal_threshold([0.1, 0.2], 1.5)


@pytest.mark.parametrize("n, target", [(19, 0.05), (50, 0.05), (200, 0.1), (500, 0.01)])
def test_fpr_guarantee_by_simulation(n, target):
    """Averaged over calibration draws, fresh reals are flagged at most target."""
    rng = np.random.RandomState(0)
    draws, fresh = 4000, 200
    fpr = np.empty(draws)
    for i in range(draws):
        cal = rng.standard_t(3, n)  # heavy tails: the guarantee is distribution-free
        t = conformal_threshold(cal, target)
        fpr[i] = np.mean(rng.standard_t(3, fresh) > t)
    # the exact expectation is floor((n + 1) target) / (n + 1) <= target
    exact = math.floor((n + 1) * target + 1e-9) / (n + 1)
    se = fpr.std(ddof=1) / np.sqrt(draws)
    assert fpr.mean() <= target + 3 * se
    assert abs(fpr.mean() - exact) < 4 * se
    # and it is not trivially conservative: close to the target
    assert fpr.mean() > target - 1 / (n + 1) - 4 * se


# -- p-values --------------------------------------------------------------------


def test_p_values_by_direct_count():
    cal = np.array([0.3, 0.1, 0.2, 0.2, 0.5])
    s = np.array([0.0, 0.2, 0.25, 0.5, 0.9])
    expected = [(1 + np.sum(cal >= v)) / 6 for v in s]
    np.testing.assert_allclose(conformal_p_values(cal, s), expected)


def test_p_values_are_uniform_on_exchangeable_reals():
    rng = np.random.RandomState(1)
    n, draws = 99, 3000
    p = np.array([
        conformal_p_values(rng.normal(size=n), rng.normal(size=1))[0]
        for _ in range(draws)
    ])
    # discrete uniform on {1, ..., n + 1} / (n + 1): jitter within each step, then KS
    jittered = p - rng.uniform(0, 1 / (n + 1), draws)
    assert stats.kstest(jittered, "uniform").pvalue > 0.01
    for a in (0.01, 0.05, 0.2, 0.5):
        assert np.mean(p <= a) <= a + 3 * np.sqrt(a * (1 - a) / draws)


def test_p_values_of_fakes_are_small():
    rng = np.random.RandomState(2)
    p = conformal_p_values(rng.normal(size=200), rng.normal(3, 1, 500))
    assert stats.kstest(p, "uniform").pvalue < 1e-6 and np.median(p) < 0.05


def test_flagged_exactly_when_p_real_at_most_target():
    rng = np.random.RandomState(3)
    cal = np.round(rng.normal(size=300), 1)  # many ties
    new = np.round(rng.normal(size=2000), 1)
    for target in (0.01, 0.05, 0.1, 0.3):
        t = conformal_threshold(cal, target)
        np.testing.assert_array_equal(new > t, conformal_p_values(cal, new) <= target)


# -- fingerprints ------------------------------------------------------------------


def test_fingerprint_of_files_ignores_order_and_sees_content(tmp_path):
    paths, _, _ = write_labelled_folder(tmp_path, n_per_class=3)
    a = calibration_fingerprint(paths)
    assert a.startswith("sha256:") and len(a) == 7 + 64
    assert calibration_fingerprint(paths[::-1]) == a
    assert calibration_fingerprint(paths[:-1]) != a
    with open(paths[0], "ab") as fh:
        fh.write(b"\0")
    assert calibration_fingerprint(paths) != a


# -- ConformalThresholdClassifier ----------------------------------------------------


@pytest.fixture(scope="module")
def features():
    X, y = make_generator_manifolds(n_samples=900, n_features=8, random_state=0)
    X_fit, X_rest, y_fit, y_rest = train_test_split(X, y, test_size=2 / 3,
                                                    random_state=0, stratify=y)
    X_cal, X_test, y_cal, y_test = train_test_split(X_rest, y_rest, test_size=0.5,
                                                    random_state=0, stratify=y_rest)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        detector = make_pipeline(
            AttributionSpace(latent_dim=4, max_epochs=30, random_state=0),
            AttributionClassifier(max_epochs=100, learning_rate=1e-3, random_state=0),
        ).fit(X_fit, y_fit)
    return detector, X_cal[y_cal == 0], X_test, y_test


def test_classifier_threshold_matches_the_function(features):
    detector, X_real, X_test, y_test = features
    cal = ConformalThresholdClassifier(detector, target_fpr=0.1).fit(X_real)
    scores = detector.predict_proba(X_real)[:, 1]
    assert cal.threshold_ == conformal_threshold(scores, 0.1)
    np.testing.assert_array_equal(cal.calibration_scores_, np.sort(scores))
    assert cal.n_calibration_samples_ == len(X_real) == 150
    assert cal.response_method_ == "predict_proba"
    assert cal.calibration_fingerprint_ == calibration_fingerprint(X_real)
    assert cal.n_features_in_ == 8
    np.testing.assert_array_equal(cal.classes_, [0, 1])
    test_scores = detector.predict_proba(X_test)[:, 1]
    np.testing.assert_array_equal(
        cal.predict(X_test), (test_scores > cal.threshold_) * 1
    )
    np.testing.assert_array_equal(cal.p_real(X_test),
                                  conformal_p_values(scores, test_scores))
    # probabilities are the detector's own; only the threshold moved
    np.testing.assert_array_equal(
        cal.predict_proba(X_test), detector.predict_proba(X_test)
    )
    # the same as scikit-learn's FixedThresholdClassifier at that threshold
    fixed = FixedThresholdClassifier(
        detector, threshold=np.nextafter(cal.threshold_, 1),
        response_method="predict_proba",
    )
    np.testing.assert_array_equal(fixed.predict(X_test), cal.predict(X_test))
    assert cal.score(X_test, y_test) == pytest.approx(
        np.mean(cal.predict(X_test) == y_test))


def test_fpr_on_held_out_reals_is_near_target(features):
    detector, X_real, X_test, y_test = features
    cal = ConformalThresholdClassifier(detector, target_fpr=0.1).fit(X_real)
    fpr = np.mean(cal.predict(X_test[y_test == 0]) == 1)
    assert fpr <= 0.1 + 3 * np.sqrt(0.1 * 0.9 / np.sum(y_test == 0))


def test_y_selects_the_real_rows(features):
    detector, X_real, X_test, y_test = features
    with_y = ConformalThresholdClassifier(detector).fit(X_test, y_test)
    reals = ConformalThresholdClassifier(detector).fit(X_test[y_test == 0])
    assert with_y.threshold_ == reals.threshold_
    with pytest.raises(ValueError, match="no real image"):
        ConformalThresholdClassifier(detector).fit(X_test[:3], [1, 1, 1])


def test_decision_function_and_pos_label(features):
    detector, X_real, X_test, _ = features
    cal = ConformalThresholdClassifier(
        detector, response_method="decision_function"
    ).fit(X_real)
    assert cal.response_method_ == "decision_function"
    by_proba = ConformalThresholdClassifier(detector).fit(X_real)
    # a monotone change of score gives the same decisions
    np.testing.assert_array_equal(cal.predict(X_test), by_proba.predict(X_test))
    np.testing.assert_array_equal(cal.p_real(X_test), by_proba.p_real(X_test))
    with pytest.raises(ValueError, match="pos_label=7"):
        ConformalThresholdClassifier(detector, pos_label=7).fit(X_real)


def test_unfitted_detector_is_refused(features):
    detector, X_real, _, _ = features
    with pytest.raises(NotFittedError, match="already fitted detector"):
        ConformalThresholdClassifier(clone(detector)).fit(X_real)
    with pytest.raises(NotFittedError):
        ConformalThresholdClassifier(detector).predict(X_real)


def test_too_few_calibration_rows_warn(features):
    detector, X_real, X_test, _ = features
    with pytest.warns(CalibrationWarning, match="at least 99 are needed"):
        cal = ConformalThresholdClassifier(detector, target_fpr=0.01).fit(X_real[:50])
    assert cal.threshold_ == np.inf and not cal.predict(X_test).any()


def test_clone_pickle_and_save_round_trip(features, tmp_path):
    detector, X_real, X_test, _ = features
    cal = ConformalThresholdClassifier(detector, target_fpr=0.2).fit(X_real)
    assert clone(cal).get_params()["target_fpr"] == 0.2
    again = pickle.loads(pickle.dumps(cal))
    np.testing.assert_array_equal(again.p_real(X_test), cal.p_real(X_test))
    save(cal, tmp_path / "cal.skacd")
    loaded = load(tmp_path / "cal.skacd")
    assert isinstance(loaded, ConformalThresholdClassifier)
    for name in ("threshold_", "n_calibration_samples_", "calibration_fingerprint_",
                 "response_method_", "target_fpr"):
        assert getattr(loaded, name) == getattr(cal, name), name
    np.testing.assert_array_equal(loaded.calibration_scores_, cal.calibration_scores_)
    np.testing.assert_array_equal(loaded.predict(X_test), cal.predict(X_test))
    np.testing.assert_array_equal(loaded.p_real(X_test), cal.p_real(X_test))


def test_scikit_learn_threshold_and_probability_tools_work_on_a_detector(features):
    detector, _, X_test, y_test = features
    X, y = make_generator_manifolds(n_samples=300, n_features=8, random_state=5)
    # probabilities recalibrated on labelled data, the detector kept as is
    calibrated = CalibratedClassifierCV(FrozenEstimator(detector), method="sigmoid")
    calibrated.fit(X, y)
    proba = calibrated.predict_proba(X_test)
    assert proba.shape == (len(X_test), 2) and np.allclose(proba.sum(axis=1), 1)
    # a threshold tuned on both classes, also with the detector frozen
    tuned = TunedThresholdClassifierCV(
        detector, cv="prefit", refit=False, scoring="balanced_accuracy"
    ).fit(X, y)
    assert balanced_accuracy_score(y, tuned.predict(X)) >= balanced_accuracy_score(
        y, detector.predict(X)) - 1e-12
    # and the raw head works inside CalibratedClassifierCV's cross-validation
    head = AttributionClassifier(max_epochs=20, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cv = CalibratedClassifierCV(head, cv=2).fit(X, y)
    assert cv.predict_proba(X_test).shape == (len(X_test), 2)


def test_logistic_regression_detector():
    X, y = make_generator_manifolds(n_samples=400, n_features=6, random_state=1)
    clf = LogisticRegression().fit(X[:200], y[:200])
    cal = ConformalThresholdClassifier(clf, target_fpr=0.1).fit(X[200:][y[200:] == 0])
    assert cal.predict(X).shape == (400,)


# -- images: pipelines that start with a featurizer -----------------------------------


@pytest.fixture(scope="module")
def image_detector(tmp_path_factory):
    root = tmp_path_factory.mktemp("calibration-images")
    paths, y, _ = write_labelled_folder(root / "train", n_per_class=10, size=32)
    cal_paths, cal_y, _ = write_labelled_folder(root / "cal", n_per_class=20, seed=1,
                                                size=32)
    pipe = tiny_detector()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pipe.fit(paths, y)
    reals = [p for p, t in zip(cal_paths, cal_y) if t == 0]
    return root, pipe, reals


def test_images_calibrate_through_the_featurizer(image_detector):
    root, pipe, reals = image_detector
    cal = ConformalThresholdClassifier(pipe, target_fpr=0.1).fit(reals)
    assert cal.n_calibration_samples_ == 20
    assert cal.calibration_fingerprint_ == calibration_fingerprint(reals)
    scores = pipe.predict_proba(reals)[:, 1]
    assert cal.threshold_ == conformal_threshold(scores, 0.1)
    np.testing.assert_array_equal(cal.p_real(reals), conformal_p_values(scores, scores))


def test_unreadable_calibration_image_follows_on_error(image_detector, tmp_path):
    root, pipe, reals = image_detector
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not an image")
    with pytest.raises(ImageLoadError, match="broken.png"):
        ConformalThresholdClassifier(pipe, target_fpr=0.1).fit([*reals, str(bad)])
    skipping = clone(pipe).set_params(clipfeaturizer__on_error="skip")
    skipping = make_pipeline(skipping[0], pipe[1], pipe[2])
    message = r"(?s)1 calibration image\(s\).*broken.png"
    with pytest.warns(ImageLoadWarning, match=message) as w:
        cal = ConformalThresholdClassifier(skipping, target_fpr=0.1).fit(
            [*reals, str(bad)])
    assert [e.source for e in w[0].message.errors] == [str(bad)]
    assert cal.n_calibration_samples_ == 20
    assert cal.calibration_fingerprint_ == calibration_fingerprint(reals)
