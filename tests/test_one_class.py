"""OneClassDetector: a detector from real images alone, thresholded on held-out
reals."""

import pickle
import warnings

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.metrics import average_precision_score
from sklearn.model_selection import KFold

from skacd import AttributionSpace, ConformalThresholdClassifier, OneClassDetector
from skacd.calibration import conformal_p_values, conformal_threshold
from skacd.datasets import make_generator_manifolds
from skacd.exceptions import CalibrationWarning
from skacd.io import load, save


def space():
    return AttributionSpace(hidden_layer_sizes=(32,), latent_dim=4, max_epochs=40,
                            learning_rate=1e-3, device="cpu")


@pytest.fixture(scope="module")
def data():
    X, y = make_generator_manifolds(n_samples=1200, n_features=16, random_state=0)
    real = np.flatnonzero(y == 0)
    train, test = real[:300], np.setdiff1d(np.arange(len(y)), real[:300])
    return X[train], X[test], y[test]


@pytest.fixture(scope="module")
def fitted(data):
    X_real, _, _ = data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        detector = OneClassDetector(space(), target_fpr=0.1, cv=3, random_state=0)
        return detector.fit(X_real)


def test_threshold_is_the_conformal_quantile_of_out_of_fold_deviations(fitted, data):
    X_real, _, _ = data
    # recompute by hand: each fold's space never saw the rows it scores
    rng = np.random.RandomState(0)
    fold_seed = rng.randint(np.iinfo(np.int32).max)
    held_out = np.empty(len(X_real))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for train, test in KFold(3, shuffle=True, random_state=fold_seed).split(X_real):
            s = space().set_params(random_state=rng.randint(np.iinfo(np.int32).max))
            held_out[test] = -s.fit(X_real[train]).score_samples(X_real[test])
    np.testing.assert_allclose(fitted.calibration_scores_, np.sort(held_out), rtol=1e-6)
    assert fitted.threshold_ == pytest.approx(conformal_threshold(held_out, 0.1))
    assert fitted.n_calibration_samples_ == 300
    assert fitted.space_.n_source_samples_ == 300  # the scoring space saw every row


def test_scores_higher_means_more_fake(fitted, data):
    _, X_test, y_test = data
    deviation = fitted.deviation(X_test)
    np.testing.assert_allclose(deviation, -fitted.space_.score_samples(X_test))
    # better than chance (the prevalence of fakes) by a clear margin
    assert average_precision_score(y_test, deviation) > np.mean(y_test) + 0.05
    np.testing.assert_allclose(fitted.decision_function(X_test),
                               deviation - fitted.threshold_)
    np.testing.assert_array_equal(fitted.predict(X_test),
                                  (deviation > fitted.threshold_).astype(int))
    p = fitted.p_real(X_test)
    np.testing.assert_array_equal(p, conformal_p_values(fitted.calibration_scores_,
                                                        deviation))
    np.testing.assert_array_equal(p <= 0.1, fitted.predict(X_test) == 1)


def test_fpr_on_new_reals_is_at_most_target(fitted, data):
    _, X_test, y_test = data
    n = int(np.sum(y_test == 0))
    fpr = np.mean(fitted.predict(X_test[y_test == 0]))
    assert fpr <= 0.1 + 3 * np.sqrt(0.1 * 0.9 / n)
    # it flags fakes more often than reals (cross-fitted calibration is
    # conservative here: the scoring space saw 1.5x the rows of each fold's)
    assert np.mean(fitted.predict(X_test[y_test == 1])) > fpr


def test_y_selects_real_rows(data):
    X_real, X_test, y_test = data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = OneClassDetector(space(), cv=2, random_state=1).fit(X_test, y_test)
        b = OneClassDetector(space(), cv=2, random_state=1).fit(X_test[y_test == 0])
    assert a.n_calibration_samples_ == b.n_calibration_samples_
    np.testing.assert_array_equal(a.calibration_scores_, b.calibration_scores_)
    with pytest.raises(ValueError, match="no row labelled 0"):
        OneClassDetector(space()).fit(X_test[:6], np.ones(6))


def test_seeded_fits_are_reproducible_and_leave_global_rng_alone(data):
    X_real, X_test, _ = data
    state = torch.get_rng_state()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = OneClassDetector(space(), cv=2, random_state=3).fit(X_real[:100])
        b = OneClassDetector(space(), cv=2, random_state=3).fit(X_real[:100])
    assert torch.equal(state, torch.get_rng_state())
    np.testing.assert_array_equal(
        a.decision_function(X_test), b.decision_function(X_test)
    )


def test_too_few_reals_warn_and_flag_nothing(data):
    X_real, X_test, _ = data
    with pytest.warns(CalibrationWarning, match="at least 19 are needed"):
        detector = OneClassDetector(space().set_params(max_epochs=2), cv=2)
        detector.fit(X_real[:10])
    assert detector.threshold_ == np.inf and not detector.predict(X_test).any()
    with pytest.raises(ValueError, match="at least cv=5 real rows"):
        OneClassDetector(space()).fit(X_real[:3])


def test_clone_pickle_save_and_recalibrate(fitted, data, tmp_path):
    X_real, X_test, y_test = data
    assert clone(fitted).get_params()["space"].latent_dim == 4
    again = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(again.predict(X_test), fitted.predict(X_test))
    save(fitted, tmp_path / "one.skacd")
    loaded = load(tmp_path / "one.skacd")
    assert isinstance(loaded, OneClassDetector) and loaded.space.max_epochs == 40
    np.testing.assert_array_equal(loaded.decision_function(X_test),
                                  fitted.decision_function(X_test))
    np.testing.assert_array_equal(loaded.p_real(X_test), fitted.p_real(X_test))
    assert loaded.calibration_fingerprint_ == fitted.calibration_fingerprint_
    # exact split-conformal guarantee: recalibrate on reals held out of fit
    reals = X_test[y_test == 0]
    cal = ConformalThresholdClassifier(fitted, target_fpr=0.1).fit(reals[:200])
    assert cal.response_method_ == "decision_function"
    np.testing.assert_array_equal(cal.p_real(reals[200:]) <= 0.1,
                                  cal.predict(reals[200:]) == 1)
