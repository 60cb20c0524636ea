"""AttributionClassifier: labels, probabilities, determinism, errors."""

import pickle

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose, assert_array_equal

from skacd import AttributionClassifier
from skacd.datasets import make_generator_manifolds

FAST = dict(max_epochs=60, learning_rate=1e-2, device="cpu", random_state=0)


@pytest.fixture(scope="module")
def data():
    return make_generator_manifolds(n_samples=200, n_features=16, random_state=1)


def test_string_labels_probabilities_and_predictions(data):
    X, y = data
    labels = np.where(y == 1, "fake", "real")
    clf = AttributionClassifier(**FAST).fit(X, labels)
    assert_array_equal(clf.classes_, ["fake", "real"])
    proba = clf.predict_proba(X)
    assert proba.shape == (len(X), 2)
    assert_allclose(proba.sum(1), 1.0)
    assert_array_equal(clf.predict(X), clf.classes_[(proba[:, 1] > 0.5).astype(int)])
    assert_allclose(np.exp(clf.predict_log_proba(X)), proba, rtol=1e-6)
    assert clf.score(X, labels) > 0.9


def test_logistic_head_is_linear(data):
    X, y = data
    clf = AttributionClassifier(hidden_layer_sizes=(), **FAST).fit(X, y)
    linear = [m for m in clf.module_.modules() if isinstance(m, torch.nn.Linear)]
    assert len(linear) == 1
    # A linear logit: the decision function of a midpoint is the mean of the ends.
    d = clf.decision_function(np.vstack([X[0], X[1], (X[0] + X[1]) / 2]))
    assert_allclose(d[2], (d[0] + d[1]) / 2, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    "labels, message",
    [(np.zeros(200, dtype=int), "1 class"), (np.arange(200) % 3, "3 class")],
)
def test_needs_exactly_two_classes(data, labels, message):
    X, _ = data
    with pytest.raises(ValueError, match=f"Only binary classification.*{message}"):
        AttributionClassifier(**FAST).fit(X, labels)


def test_determinism_and_pickling(data):
    X, y = data
    first = AttributionClassifier(**FAST).fit(X, y)
    second = AttributionClassifier(**FAST).fit(X, y)
    assert_array_equal(first.predict_proba(X), second.predict_proba(X))
    restored = pickle.loads(pickle.dumps(first))
    assert_array_equal(restored.predict_proba(X), first.predict_proba(X))
    assert first.loss_curve_[-1] < first.loss_curve_[0]


def test_early_stopping_keeps_best_validation_weights(data):
    X, y = data
    clf = AttributionClassifier(
        early_stopping=True, n_iter_no_change=3, **dict(FAST, max_epochs=300)
    ).fit(X, y)
    assert clf.n_iter_ < 300
    assert len(clf.validation_scores_) == clf.n_iter_
