"""Inference is batch-invariant: a row's output does not depend on its batch.

float32 matrix products give results that depend on the shape of the batch, so
the torch estimators run inference in fixed-shape chunks (``predict_batches``).
These tests check that the outputs are bit-identical, at the default
architecture, whatever the number of CPU threads.
"""

import warnings

import numpy as np
import pytest
import torch
from sklearn.exceptions import ConvergenceWarning

from skacd import AttributionClassifier, AttributionSpace, OneClassDetector
from skacd.datasets import make_generator_manifolds

QUICK = dict(max_epochs=2, device="cpu", random_state=0)

ESTIMATORS = {
    "space": AttributionSpace(cv=None, **QUICK),
    "space-gelu": AttributionSpace(cv=None, activation="gelu", **QUICK),
    "space-tanh": AttributionSpace(cv=None, activation="tanh", **QUICK),
    "space-pca": AttributionSpace(solver="pca", cv=None, **QUICK),
    "classifier": AttributionClassifier(**QUICK),
    "classifier-dropout": AttributionClassifier(dropout=0.5, **QUICK),
    "one-class": OneClassDetector(AttributionSpace(**QUICK), cv=2, random_state=0),
}

METHODS = [
    "transform",
    "score_samples",
    "decision_function",
    "predict",
    "predict_proba",
    "predict_log_proba",
    "deviation",
    "p_real",
]


@pytest.fixture(scope="module")
def data():
    return make_generator_manifolds(n_samples=1000, n_features=64, random_state=0)


@pytest.fixture(scope="module")
def fitted(data):
    X, y = data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return {name: est.fit(X, y) for name, est in ESTIMATORS.items()}


@pytest.fixture(params=[1, 2, 3], ids=lambda n: f"{n}-threads")
def num_threads(request):
    before = torch.get_num_threads()
    torch.set_num_threads(request.param)
    yield request.param
    torch.set_num_threads(before)


def _methods(estimator):
    return [m for m in METHODS if hasattr(estimator, m)]


@pytest.mark.parametrize("name", list(ESTIMATORS))
def test_a_row_alone_equals_the_row_in_a_batch_of_1000(fitted, data, name, num_threads):
    X, _ = data
    estimator = fitted[name]
    rows = [0, 1, 17, 500, 998, 999]
    for method in _methods(estimator):
        full = getattr(estimator, method)(X)
        for i in rows:
            alone = getattr(estimator, method)(X[i : i + 1])
            assert np.array_equal(alone[0], full[i]), (method, i)
        subset = getattr(estimator, method)(X[::7])
        assert np.array_equal(subset, full[::7]), method


@pytest.mark.parametrize("name", ["space", "classifier"])
def test_rows_across_inference_chunks(fitted, data, name):
    # 2 500 rows: two full chunks of 1 024 and a padded last one.
    X, _ = data
    X_big = np.concatenate([X[::-1], X, X[:500]])
    estimator = fitted[name]
    for method in _methods(estimator):
        full = getattr(estimator, method)(X_big)
        for i in [0, 1023, 1024, 2047, 2048, 2499]:
            alone = getattr(estimator, method)(X_big[i : i + 1])
            assert np.array_equal(alone[0], full[i]), (method, i)


@pytest.mark.parametrize("name", ["space", "classifier"])
def test_padded_chunk_is_float32_whatever_torch_default_dtype(fitted, data, name):
    X, _ = data
    estimator = fitted[name]
    method = _methods(estimator)[1]
    expected = getattr(estimator, method)(X[:5])  # one padded chunk
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        got = getattr(estimator, method)(X[:5])
    finally:
        torch.set_default_dtype(before)
    assert np.array_equal(got, expected)
