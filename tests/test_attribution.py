"""AttributionSpace: one-class fitting, cross-fitting, determinism, pickling."""

import pickle
import warnings

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.pipeline import make_pipeline

from skacd import AttributionClassifier, AttributionSpace
from skacd.datasets import make_generator_manifolds
from skacd.exceptions import DeviceWarning

FAST = dict(hidden_layer_sizes=(32,), latent_dim=8, max_epochs=40, device="cpu")


@pytest.fixture(scope="module")
def data():
    return make_generator_manifolds(n_samples=300, n_features=24, random_state=0)


@pytest.fixture(autouse=True)
def _quiet_convergence():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


def test_fits_only_the_source_class(data):
    X, y = data
    space = AttributionSpace(random_state=0, **FAST).fit(X, y)
    assert space.n_source_samples_ == int((y == 0).sum())
    source_mean = X[y == 0].mean(0)
    assert_allclose(space.module_.standardize.mean.numpy(), source_mean, rtol=1e-5)
    flipped = AttributionSpace(source_class=1, random_state=0, **FAST).fit(X, y)
    assert flipped.n_source_samples_ == int((y == 1).sum())


def test_attribution_is_the_absolute_residual(data):
    X, y = data
    space = AttributionSpace(random_state=0, **FAST).fit(X, y)
    A = space.transform(X)
    with torch.inference_mode():
        reconstruction = space.module_.reconstruct(torch.from_numpy(X)).numpy()
    assert A.shape == X.shape and A.dtype == np.float32
    assert_allclose(A, np.abs(X - reconstruction), atol=1e-6)
    assert_allclose(space.score_samples(X), -A.mean(axis=1), rtol=1e-5)


def test_other_class_deviates_more(data):
    X, y = data
    space = AttributionSpace(random_state=0, cv=None, **FAST).fit(X, y)
    scores = space.score_samples(X)
    assert scores[y == 0].mean() > scores[y == 1].mean()
    assert set(np.unique(space.predict(X))) == {-1, 1}
    assert_allclose(space.decision_function(X), scores - space.offset_)


def test_cross_fitted_fit_transform_differs_only_on_source_rows(data):
    X, y = data
    cross_fitted = AttributionSpace(random_state=0, cv=3, **FAST).fit_transform(X, y)
    space = AttributionSpace(random_state=0, cv=3, **FAST).fit(X, y)
    plain = space.transform(X)
    assert_array_equal(cross_fitted[y == 1], plain[y == 1])
    assert not np.allclose(cross_fitted[y == 0], plain[y == 0])
    # Out-of-fold residuals of source rows are larger than in-sample ones.
    assert cross_fitted[y == 0].mean() > plain[y == 0].mean()


def test_cv_none_is_the_plain_scheme(data):
    X, y = data
    space = AttributionSpace(random_state=0, cv=None, **FAST)
    assert_array_equal(space.fit_transform(X, y), space.transform(X))


def test_pipeline_trains_the_classifier_on_out_of_fold_attributions(data):
    X, y = data
    pipe = make_pipeline(
        AttributionSpace(random_state=0, cv=3, **FAST),
        AttributionClassifier(max_epochs=5, random_state=0, device="cpu"),
    ).fit(X, y)
    seen_mean = pipe[1].module_.standardize.mean.numpy()
    out_of_fold = AttributionSpace(random_state=0, cv=3, **FAST).fit_transform(X, y)
    assert_allclose(seen_mean, out_of_fold.mean(0), rtol=1e-5)
    assert not np.allclose(seen_mean, pipe[0].transform(X).mean(0), rtol=1e-3)


def test_no_source_rows_is_a_clear_error(data):
    X, y = data
    with pytest.raises(ValueError, match="source_class=7.*labels present: \\[0, 1\\]"):
        AttributionSpace(source_class=7, **FAST).fit(X, y)


def test_string_labels_and_y_none(data):
    X, y = data
    labels = np.where(y == 1, "fake", "real")
    space = AttributionSpace(source_class="real", random_state=0, **FAST).fit(X, labels)
    assert space.n_source_samples_ == int((y == 0).sum())
    everything = AttributionSpace(random_state=0, **FAST).fit(X)
    assert everything.n_source_samples_ == len(X)


def test_same_random_state_same_result_and_rng_untouched(data):
    X, y = data
    torch_before = torch.get_rng_state()
    numpy_before = np.random.get_state()[1].copy()
    first = AttributionSpace(random_state=3, **FAST).fit_transform(X, y)
    second = AttributionSpace(random_state=3, **FAST).fit_transform(X, y)
    assert_array_equal(first, second)
    assert torch.equal(torch_before, torch.get_rng_state())
    assert_array_equal(numpy_before, np.random.get_state()[1])
    other = AttributionSpace(random_state=4, **FAST).fit_transform(X, y)
    assert not np.allclose(first, other)


def test_early_stopping_and_convergence_warning(data):
    X, y = data
    patient = AttributionSpace(
        random_state=0, n_iter_no_change=2, tol=10.0, **dict(FAST, max_epochs=100)
    ).fit(X, y)
    assert patient.n_iter_ == 3
    assert len(patient.validation_scores_) == patient.n_iter_
    with pytest.warns(ConvergenceWarning, match="max_epochs=2"):
        AttributionSpace(random_state=0, **dict(FAST, max_epochs=2)).fit(X, y)


def test_pickle_round_trip_and_cuda_fallback(data):
    X, y = data
    space = AttributionSpace(random_state=0, **FAST).fit(X, y)
    restored = pickle.loads(pickle.dumps(space))
    assert_array_equal(restored.transform(X), space.transform(X))
    if not torch.cuda.is_available():
        space.device_ = "cuda"  # as if fitted on a GPU machine
        with pytest.warns(DeviceWarning, match="loaded on the CPU"):
            moved = pickle.loads(pickle.dumps(space))
        assert moved.device_ == "cpu"
        assert_array_equal(moved.transform(X), restored.transform(X))


def test_feature_names_out(data):
    X, y = data
    space = AttributionSpace(random_state=0, **FAST).fit(X, y)
    names = space.get_feature_names_out()
    assert names[0] == "attribution_x0" and len(names) == X.shape[1]


def test_set_output_pandas(data):
    pd = pytest.importorskip("pandas")
    X, y = data
    frame = pd.DataFrame(X, columns=[f"clip{i}" for i in range(X.shape[1])])
    space = AttributionSpace(random_state=0, **FAST).set_output(transform="pandas")
    out = space.fit(frame, y).transform(frame)
    assert list(out.columns[:2]) == ["attribution_clip0", "attribution_clip1"]


def test_too_few_rows_for_the_folds(data):
    X, y = data
    y = y.copy()
    y[np.flatnonzero(y == 0)[3:]] = 1
    with pytest.raises(ValueError, match="cv=5 folds need at least 5 rows"):
        AttributionSpace(random_state=0, **FAST).fit_transform(X, y)


def test_pca_solver_equals_sklearn_pca_on_standardised_source_rows():
    from sklearn.decomposition import PCA

    rng = np.random.RandomState(0)
    X = (rng.randn(120, 16) @ rng.randn(16, 16) + 3).astype(np.float32)
    y = np.r_[np.zeros(70), np.ones(50)]
    space = AttributionSpace(solver="pca", latent_dim=5, device="cpu").fit(X, y)
    source = X[y == 0].astype(np.float64)
    mean, scale = source.mean(0), source.std(0)
    pca = PCA(5).fit((source - mean) / scale)
    Z = (X - mean) / scale
    expected = np.abs(X - (pca.inverse_transform(pca.transform(Z)) * scale + mean))
    assert_allclose(space.transform(X), expected, rtol=1e-4, atol=1e-4)
    assert space.n_components_ == 5 and space.n_iter_ == 1
    # A share of variance picks as many axes as PCA(n_components=share).
    share = AttributionSpace(solver="pca", latent_dim=0.9, device="cpu").fit(X, y)
    assert share.n_components_ == PCA(0.9).fit((source - mean) / scale).n_components_


def test_pca_solver_is_deterministic_cross_fitted_and_pickles():
    X, y = make_generator_manifolds(n_samples=200, n_features=24, random_state=0)
    space = AttributionSpace(solver="pca", latent_dim=6, random_state=0, device="cpu")
    A = space.fit_transform(X, y)
    assert_array_equal(A, clone(space).fit_transform(X, y))
    plain = space.transform(X)
    source = y == 0
    assert not np.allclose(A[source], plain[source])  # out-of-fold on source rows
    assert_array_equal(A[~source], plain[~source])
    restored = pickle.loads(pickle.dumps(space))
    assert_array_equal(restored.transform(X), plain)
    # Fewer source rows than axes: the bottleneck shrinks to the rank.
    small = AttributionSpace(solver="pca", latent_dim=50, device="cpu")
    small.fit(X[:12], None)
    assert small.n_components_ == 11


def test_share_of_variance_needs_the_pca_solver():
    X, y = make_generator_manifolds(n_samples=60, n_features=8, random_state=0)
    with pytest.raises(ValueError, match="needs solver='pca'"):
        AttributionSpace(latent_dim=0.5, max_epochs=1).fit(X, y)
