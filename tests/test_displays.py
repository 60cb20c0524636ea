"""Tests for the diagnostics displays (Figs. 2a-d, 5, 6-7 of arXiv:2603.00717)."""

import functools
import subprocess
import sys
import textwrap

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.colors import to_rgba  # noqa: E402
from sklearn.base import BaseEstimator, TransformerMixin  # noqa: E402
from sklearn.decomposition import PCA  # noqa: E402
from sklearn.linear_model import LogisticRegression, RidgeClassifier  # noqa: E402
from sklearn.utils.validation import check_is_fitted, validate_data  # noqa: E402

from skacd.diagnostics import (  # noqa: E402
    DeviationViolinDisplay,
    EmbeddingDisplay,
    RobustnessCurveDisplay,
    ScoreScatterDisplay,
)

UMAP_FAST = {"n_neighbors": 10, "n_epochs": 20}


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


class PCAResidualSpace(TransformerMixin, BaseEstimator):
    """An attribution space with PCA in place of the autoencoder.

    Fitted on the ``source_class`` rows only; ``transform`` gives the
    attribution ``|x - reconstruct(x)|`` and ``score_samples`` its negative
    mean, the same contract as ``skacd.AttributionSpace``.
    """

    def __init__(self, source_class=0, n_components=2):
        self.source_class = source_class
        self.n_components = n_components

    def fit(self, X, y):
        X = validate_data(self, X)
        self.pca_ = PCA(n_components=self.n_components)
        self.pca_.fit(X[np.asarray(y) == self.source_class])
        return self

    def transform(self, X):
        check_is_fitted(self)
        X = validate_data(self, X, reset=False)
        return np.abs(X - self.pca_.inverse_transform(self.pca_.transform(X)))

    def score_samples(self, X):
        return -self.transform(X).mean(axis=1)


@pytest.fixture(scope="module")
def data():
    """60 samples: 30 real ("coco") near a 2-D subspace, 30 fake off it."""
    rng = np.random.RandomState(0)
    basis = rng.normal(size=(2, 6))
    real = rng.normal(size=(30, 2)) @ basis + 0.05 * rng.normal(size=(30, 6))
    fake = rng.normal(size=(30, 2)) @ basis + 0.8 * rng.normal(size=(30, 6))
    X = np.vstack([real, fake])
    y = np.repeat(["real", "fake"], 30)
    groups = np.repeat(["coco", "sd14", "mj"], [30, 15, 15])
    return X, y, groups


@pytest.fixture(scope="module")
def space(data):
    X, y, _ = data
    return PCAResidualSpace(source_class="real").fit(X, y)


@pytest.fixture
def count_calls(monkeypatch):
    """Wrap ``owner.name`` so that its calls are counted."""

    def wrap(owner, name):
        original = getattr(owner, name)
        calls = []

        # wraps keeps the method's name, by which scikit-learn's response
        # helper tells predict_proba from decision_function.
        @functools.wraps(original)
        def counted(*args, **kwargs):
            calls.append(1)
            return original(*args, **kwargs)

        monkeypatch.setattr(owner, name, counted)
        return calls

    return wrap


# --------------------------------------------------------------------------- #
# EmbeddingDisplay
# --------------------------------------------------------------------------- #


def test_embedding_from_features_plots_into_ax(data):
    X, y, groups = data
    fig, ax = plt.subplots()
    disp = EmbeddingDisplay.from_features(X, y, groups=groups, ax=ax, **UMAP_FAST)
    assert isinstance(disp, EmbeddingDisplay)
    assert disp.ax_ is ax and disp.figure_ is fig
    assert disp.embedding_.shape == (60, 2)
    np.testing.assert_array_equal(disp.y, y)
    np.testing.assert_array_equal(disp.groups, groups)
    assert disp.umap_params["random_state"] == 0
    assert disp.umap_params["n_neighbors"] == 10
    assert set(disp.scatter_) == {("real", "coco"), ("fake", "sd14"), ("fake", "mj")}
    for (c, g), scatter in disp.scatter_.items():
        mask = (y == c) & (groups == g)
        np.testing.assert_allclose(scatter.get_offsets(), disp.embedding_[mask])
    labels = [t.get_text() for t in disp.legend_.get_texts()]
    assert labels == ["fake", "real", "coco", "sd14", "mj"]
    assert ax.get_xlabel() == "UMAP 1" and ax.get_ylabel() == "UMAP 2"


def test_embedding_is_reproducible(data):
    X, y, groups = data
    first = EmbeddingDisplay.from_features(X, y, random_state=0, **UMAP_FAST)
    second = EmbeddingDisplay.from_features(X, y, random_state=0, **UMAP_FAST)
    other = EmbeddingDisplay.from_features(X, y, random_state=1, **UMAP_FAST)
    np.testing.assert_array_equal(first.embedding_, second.embedding_)
    assert not np.array_equal(first.embedding_, other.embedding_)


def test_embedding_from_estimator_embeds_transform(data, space):
    X, y, groups = data
    disp = EmbeddingDisplay.from_estimator(space, X, y, groups=groups, **UMAP_FAST)
    direct = EmbeddingDisplay.from_features(space.transform(X), y, **UMAP_FAST)
    np.testing.assert_array_equal(disp.embedding_, direct.embedding_)
    assert disp.name == "PCAResidualSpace.transform"
    assert disp.ax_.get_title() == "PCAResidualSpace.transform"

    raw = EmbeddingDisplay.from_estimator(space, X, y, transform=False, **UMAP_FAST)
    np.testing.assert_array_equal(
        raw.embedding_, EmbeddingDisplay.from_features(X, y, **UMAP_FAST).embedding_
    )
    assert raw.name == "Features"


def test_embedding_restyle_does_not_rerun_umap(data, count_calls):
    import umap

    X, y, groups = data
    calls = count_calls(umap.UMAP, "fit_transform")
    disp = EmbeddingDisplay.from_features(X, y, groups=groups, **UMAP_FAST)
    assert len(calls) == 1
    embedding = disp.embedding_
    for colors in (["red", "blue"], {"real": "green", "fake": "black"}):
        _, ax = plt.subplots()
        out = disp.plot(ax=ax, colors=colors, markers=["x", "+", "*"], s=40, name="new")
        assert out is disp and disp.ax_ is ax and ax.get_title() == "new"
        assert disp.embedding_ is embedding
    assert len(calls) == 1
    np.testing.assert_allclose(
        disp.scatter_[("real", "coco")].get_facecolor()[0], to_rgba("green", 0.75)
    )


def test_embedding_without_groups_and_legend(data):
    X, y, _ = data
    disp = EmbeddingDisplay.from_features(X, y, legend=False, **UMAP_FAST)
    assert disp.groups is None and disp.legend_ is None
    assert set(disp.scatter_) == {("fake", None), ("real", None)}
    disp.plot()
    assert [t.get_text() for t in disp.legend_.get_texts()] == ["fake", "real"]


def test_embedding_errors(data):
    X, y, groups = data
    with pytest.raises(TypeError, match="transform method"):
        EmbeddingDisplay.from_estimator(LogisticRegression(), X, y)
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        EmbeddingDisplay.from_features(X, y[:-1], **UMAP_FAST)
    disp = EmbeddingDisplay(embedding=np.zeros((60, 2)), y=y, groups=groups)
    with pytest.raises(ValueError, match="colors needs at least 2"):
        disp.plot(colors=["red"])
    with pytest.raises(ValueError, match="markers has no entry"):
        disp.plot(markers={"coco": "o"})


# --------------------------------------------------------------------------- #
# DeviationViolinDisplay
# --------------------------------------------------------------------------- #


def test_violin_from_estimator_plots_into_ax(data, space):
    X, y, groups = data
    fig, ax = plt.subplots()
    disp = DeviationViolinDisplay.from_estimator(
        space, X, y, groups=groups, ax=ax, name="PCA residuals"
    )
    assert disp.ax_ is ax and disp.figure_ is fig
    np.testing.assert_allclose(disp.deviation, -space.score_samples(X))
    np.testing.assert_allclose(disp.deviation, space.transform(X).mean(axis=1))
    np.testing.assert_array_equal(disp.y, y)
    np.testing.assert_array_equal(disp.groups, groups)
    assert set(disp.violins_) == {("coco", "real"), ("sd14", "fake"), ("mj", "fake")}
    assert [t.get_text() for t in ax.get_xticklabels()] == ["coco", "sd14", "mj"]
    assert ax.get_title() == "PCA residuals"
    body = disp.violins_[("coco", "real")]["bodies"][0]
    np.testing.assert_allclose(body.get_facecolor()[0][:3], to_rgba("C1")[:3])
    # The source class lies on the PCA subspace: it deviates least.
    assert disp.deviation[y == "real"].mean() < disp.deviation[y == "fake"].mean()


def test_violin_mixed_group_and_single_value():
    deviation = np.array([0.1, 0.2, 0.3, 0.8, 0.9, 1.0, 0.5])
    y = np.array([0, 0, 0, 1, 1, 1, 1])
    groups = np.array(["a", "a", "a", "a", "a", "a", "b"])
    disp = DeviationViolinDisplay.from_predictions(deviation, y, groups=groups)
    assert set(disp.violins_) == {("a", 0), ("a", 1), ("b", 1)}
    # Two classes share position 0, side by side; "b" has one sample: points.
    x0 = disp.violins_[("a", 0)]["bodies"][0].get_paths()[0].vertices[:, 0].mean()
    x1 = disp.violins_[("a", 1)]["bodies"][0].get_paths()[0].vertices[:, 0].mean()
    assert -0.4 < x0 < 0 < x1 < 0.4
    assert disp.violins_[("b", 1)]["bodies"] == []
    np.testing.assert_allclose(
        disp.violins_[("b", 1)]["points"].get_offsets(), [[1.0, 0.5]]
    )


def test_violin_without_groups():
    rng = np.random.RandomState(0)
    disp = DeviationViolinDisplay.from_predictions(
        rng.gamma(2, size=20), np.repeat([0, 1], 10), showmeans=True
    )
    assert disp.groups is None
    assert set(disp.violins_) == {(None, 0), (None, 1)}
    assert "cmeans" in disp.violins_[(None, 0)]
    assert [t.get_text() for t in disp.ax_.get_xticklabels()] == ["all"]


def test_violin_restyle_does_not_rescore(data, space, count_calls):
    X, y, groups = data
    fitted = PCAResidualSpace(source_class="real").fit(X, y)
    calls = count_calls(fitted, "score_samples")
    disp = DeviationViolinDisplay.from_estimator(fitted, X, y, groups=groups)
    deviation = disp.deviation
    for colors in (["red", "blue"], {"real": "k", "fake": "m"}):
        _, ax = plt.subplots()
        assert disp.plot(ax=ax, colors=colors, legend=False) is disp
        assert disp.ax_ is ax and disp.legend_ is None
    assert len(calls) == 1 and disp.deviation is deviation


def test_violin_errors(data):
    X, y, _ = data
    with pytest.raises(TypeError, match="score_samples"):
        DeviationViolinDisplay.from_estimator(LogisticRegression(), X, y)
    with pytest.raises(ValueError, match="NaN"):
        DeviationViolinDisplay.from_predictions([0.1, np.nan], [0, 1])
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        DeviationViolinDisplay.from_predictions([0.1, 0.2], [0, 1, 1])


# --------------------------------------------------------------------------- #
# The real AttributionSpace
# --------------------------------------------------------------------------- #


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_displays_with_attribution_space(data):
    pytest.importorskip("torch")
    from skacd.attribution import AttributionSpace

    X, y, groups = data
    space = AttributionSpace(
        source_class="real",
        hidden_layer_sizes=(16,),
        latent_dim=2,
        max_epochs=5,
        cv=None,
        device="cpu",
        random_state=0,
    ).fit(X, y)
    violin = DeviationViolinDisplay.from_estimator(space, X, y, groups=groups)
    np.testing.assert_allclose(
        violin.deviation, space.transform(X).mean(axis=1), rtol=1e-5
    )
    embedding = EmbeddingDisplay.from_estimator(space, X, y, groups=groups, **UMAP_FAST)
    again = EmbeddingDisplay.from_features(space.transform(X), y, **UMAP_FAST)
    np.testing.assert_array_equal(embedding.embedding_, again.embedding_)
    assert embedding.name == "AttributionSpace.transform"


# --------------------------------------------------------------------------- #
# ScoreScatterDisplay
# --------------------------------------------------------------------------- #


def test_scatter_from_predictions_plots_into_ax():
    rng = np.random.RandomState(0)
    y = np.repeat([0, 1], 20)
    score_x, score_y = rng.uniform(size=40), rng.uniform(size=40)
    fig, ax = plt.subplots()
    disp = ScoreScatterDisplay.from_predictions(
        score_x, score_y, y, threshold_x=0.3, threshold_y=0.7,
        names=("baseline", "ours"), ax=ax,
    )
    assert disp.ax_ is ax and disp.figure_ is fig
    np.testing.assert_array_equal(disp.score_x, score_x)
    np.testing.assert_array_equal(disp.score_y, score_y)
    assert (disp.threshold_x, disp.threshold_y) == (0.3, 0.7)
    vline, hline = disp.threshold_lines_
    assert list(vline.get_xdata()) == [0.3, 0.3]
    assert list(hline.get_ydata()) == [0.7, 0.7]
    assert set(disp.scatter_) == {0, 1}
    np.testing.assert_allclose(
        disp.scatter_[1].get_offsets(), np.c_[score_x[y == 1], score_y[y == 1]]
    )
    assert ax.get_xlabel() == "Score of baseline" and ax.get_ylabel() == "Score of ours"


def test_scatter_from_estimators(data):
    X, y, _ = data
    proba = LogisticRegression().fit(X, y)
    decision = RidgeClassifier().fit(X[:, :3], y)
    disp = ScoreScatterDisplay.from_estimators(proba, decision, X, X[:, :3], y)
    np.testing.assert_allclose(disp.score_x, proba.predict_proba(X)[:, 1])
    np.testing.assert_allclose(disp.score_y, decision.decision_function(X[:, :3]))
    assert (disp.threshold_x, disp.threshold_y) == (0.5, 0.0)
    assert disp.names == ("LogisticRegression", "RidgeClassifier")

    same = ScoreScatterDisplay.from_estimators(
        proba, LogisticRegression(C=0.01).fit(X, y), X, X, y, threshold_y=0.4
    )
    assert same.names == ("LogisticRegression (x)", "LogisticRegression (y)")
    assert same.threshold_y == 0.4


def test_scatter_from_estimators_pos_label(data):
    X, y, _ = data
    proba = LogisticRegression().fit(X, y)
    decision = RidgeClassifier().fit(X[:, :3], y)
    assert proba.classes_.tolist() == ["fake", "real"]
    disp = ScoreScatterDisplay.from_estimators(
        proba, decision, X, X[:, :3], y, pos_label="fake"
    )
    np.testing.assert_allclose(disp.score_x, proba.predict_proba(X)[:, 0])
    np.testing.assert_allclose(disp.score_y, -decision.decision_function(X[:, :3]))
    assert (disp.threshold_x, disp.threshold_y) == (0.5, 0.0)
    with pytest.raises(ValueError, match="pos_label=cat is not a valid label"):
        ScoreScatterDisplay.from_estimators(proba, decision, X, X[:, :3], y,
                                            pos_label="cat")


def test_scatter_needs_classifiers(data):
    X, y, _ = data

    class Scorer(BaseEstimator):
        """Has a decision_function but is no classifier."""

        def fit(self, X, y=None):
            self.fitted_ = True
            return self

        def decision_function(self, X):
            return np.asarray(X)[:, 0]

    scorer = Scorer().fit(X)
    with pytest.raises(ValueError, match="binary classifier. Got Scorer"):
        ScoreScatterDisplay.from_estimators(scorer, scorer, X, X, y)


def test_scatter_restyle_does_not_rescore(data, count_calls):
    X, y, _ = data
    clf = LogisticRegression().fit(X, y)
    calls = count_calls(clf, "predict_proba")
    disp = ScoreScatterDisplay.from_estimators(clf, clf, X, X, y)
    assert len(calls) == 2
    for names in (("a", "b"), ("c", "d")):
        _, ax = plt.subplots()
        disp.plot(ax=ax, names=names, colors=["k", "r"], threshold_kw={"color": "g"})
        assert disp.ax_ is ax and ax.get_xlabel() == f"Score of {names[0]}"
        assert disp.threshold_lines_[0].get_color() == "g"
    assert len(calls) == 2


def test_scatter_errors(data):
    X, y, _ = data
    with pytest.raises(TypeError, match="predict_proba or decision_function"):
        ScoreScatterDisplay.from_estimators(PCA().fit(X), PCA().fit(X), X, X, y)
    three = LogisticRegression().fit(X, np.arange(60) % 3)
    with pytest.raises(ValueError, match="binary classifier"):
        ScoreScatterDisplay.from_estimators(three, three, X, X, y)
    with pytest.raises(ValueError, match="names must be a pair"):
        ScoreScatterDisplay.from_predictions([0.1, 0.9], [0.2, 0.8], [0, 1], names="ab")
    with pytest.raises(ValueError, match="threshold_x must be a finite number"):
        ScoreScatterDisplay.from_predictions(
            [0.1, 0.9], [0.2, 0.8], [0, 1], threshold_x=np.nan
        )
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        ScoreScatterDisplay.from_predictions([0.1, 0.9], [0.2], [0, 1])


# --------------------------------------------------------------------------- #
# RobustnessCurveDisplay
# --------------------------------------------------------------------------- #


def _records():
    rng = np.random.RandomState(0)
    records = []
    for method in ("attribution", "linear probe"):
        for generator in ("sd14", "mj"):
            for q in (100, 60, 90, 75):  # unsorted on purpose
                for seed in range(3):
                    ap = 1 - 0.002 * (100 - q) + 0.01 * rng.randn()
                    records.append(
                        {"method": method, "param": "jpeg_quality", "value": q,
                         "ap": ap, "acc": ap - 0.1, "seed": seed,
                         "generator": generator}
                    )
        for sigma in (0, 1, 2):
            records.append(
                {"method": method, "param": "blur_sigma", "value": sigma,
                 "ap": 0.9 - 0.1 * sigma, "acc": 0.8, "seed": 0}
            )
    return records


def test_robustness_aggregates_records():
    records = _records()
    fig, ax = plt.subplots()
    disp = RobustnessCurveDisplay.from_results(
        records, x="jpeg_quality", metric="acc", where={"generator": "mj"}, ax=ax
    )
    assert disp.ax_ is ax and disp.figure_ is fig
    assert disp.methods == ["attribution", "linear probe"]
    assert (disp.param, disp.metric) == ("jpeg_quality", "acc")
    for i, method in enumerate(disp.methods):
        np.testing.assert_array_equal(disp.values[i], [60, 75, 90, 100])
        for j, q in enumerate((60, 75, 90, 100)):
            picked = [
                r["acc"] for r in records
                if r["method"] == method and r["param"] == "jpeg_quality"
                and r["value"] == q and r["generator"] == "mj"
            ]
            assert len(picked) == 3 and disp.counts[i][j] == 3
            assert disp.means[i][j] == pytest.approx(np.mean(picked))
            assert disp.stds[i][j] == pytest.approx(np.std(picked, ddof=1))
        line = disp.lines_[method]
        np.testing.assert_array_equal(line.get_xdata(), disp.values[i])
        np.testing.assert_allclose(line.get_ydata(), disp.means[i])
    assert set(disp.spread_) == set(disp.methods)
    assert ax.get_xlabel() == "JPEG quality" and ax.get_ylabel() == "Accuracy (ACC)"
    assert [t.get_text() for t in disp.legend_.get_texts()] == disp.methods


def test_robustness_pooling_methods_order_and_spread_modes():
    records = _records()
    pooled = RobustnessCurveDisplay.from_results(
        records, methods=["linear probe", "attribution"], spread="errorbar"
    )
    assert pooled.methods == ["linear probe", "attribution"]
    assert list(pooled.counts[0]) == [6, 6, 6, 6]  # both generators pooled
    assert type(pooled.spread_["attribution"]).__name__ == "ErrorbarContainer"

    blur = RobustnessCurveDisplay.from_results(records, x="blur_sigma")
    np.testing.assert_allclose(blur.means[0], [0.9, 0.8, 0.7])
    assert np.isnan(blur.stds[0]).all() and blur.spread_ == {}  # one seed
    assert blur.ax_.get_xlabel() == "Gaussian blur sigma"

    other = [dict(r, param="n_views") for r in records if r["param"] == "blur_sigma"]
    shown = RobustnessCurveDisplay.from_results(
        other, x="n_views", metric="ap", spread=None
    )
    assert shown.ax_.get_xlabel() == "n_views" and shown.spread_ == {}


def test_robustness_restyle_keeps_data():
    disp = RobustnessCurveDisplay.from_results(_records())
    means = [m.copy() for m in disp.means]
    for spread in ("errorbar", None):
        _, ax = plt.subplots()
        disp.plot(ax=ax, spread=spread, colors=["k", "r"], linestyle="--", name="t")
        assert disp.ax_ is ax and ax.get_title() == "t"
        assert disp.lines_["attribution"].get_linestyle() == "--"
    for before, after in zip(means, disp.means):
        np.testing.assert_array_equal(before, after)


def test_robustness_dataframe():
    pd = pytest.importorskip("pandas")
    records = _records()
    disp = RobustnessCurveDisplay.from_results(pd.DataFrame(records))
    ref = RobustnessCurveDisplay.from_results(records)
    np.testing.assert_allclose(disp.means[0], ref.means[0])


def test_robustness_errors():
    records = _records()
    with pytest.raises(ValueError, match=r"no record matches param='train_size'.*"
                       r"Params present: \['blur_sigma', 'jpeg_quality'\]"):
        RobustnessCurveDisplay.from_results(records, x="train_size")
    with pytest.raises(ValueError, match=r"lacks the key\(s\) \['value'\]"):
        RobustnessCurveDisplay.from_results([{"method": "m", "param": "jpeg_quality"}])
    with pytest.raises(ValueError, match="has no 'auc' key"):
        RobustnessCurveDisplay.from_results(records, metric="auc")
    bad = [dict(records[0], ap=float("nan"))]
    with pytest.raises(ValueError, match="non-finite or non-numeric 'ap'"):
        RobustnessCurveDisplay.from_results(bad)
    with pytest.raises(ValueError, match=r"no matching record for method\(s\) \['x'\]"):
        RobustnessCurveDisplay.from_results(records, methods=["attribution", "x"])
    with pytest.raises(TypeError, match="list of dict records"):
        RobustnessCurveDisplay.from_results(records[0])
    with pytest.raises(ValueError, match="spread must be one of"):
        RobustnessCurveDisplay.from_results(records, spread="shade")


# --------------------------------------------------------------------------- #
# matplotlib is optional
# --------------------------------------------------------------------------- #


def test_missing_matplotlib_says_how_to_install(monkeypatch, data):
    X, y, groups = data
    built = [
        EmbeddingDisplay(embedding=np.zeros((60, 2)), y=y),
        DeviationViolinDisplay(deviation=np.zeros(60), y=y),
        ScoreScatterDisplay(score_x=np.zeros(60), score_y=np.zeros(60), y=y),
        RobustnessCurveDisplay(
            values=[np.arange(2)], means=[np.ones(2)], methods=["m"],
            param="jpeg_quality", metric="ap",
        ),
    ]
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    calls = [
        lambda: EmbeddingDisplay.from_features(X, y),
        lambda: DeviationViolinDisplay.from_predictions(np.zeros(60), y),
        lambda: ScoreScatterDisplay.from_predictions(np.zeros(60), np.zeros(60), y),
        lambda: RobustnessCurveDisplay.from_results(_records()),
    ] + [display.plot for display in built]
    for call in calls:
        with pytest.raises(ImportError, match=r'pip install "skacd\[plot\]"'):
            call()


def test_import_and_measures_without_matplotlib():
    code = textwrap.dedent(
        """
        import sys
        sys.modules["matplotlib"] = None
        import skacd.diagnostics as d
        assert "umap" not in sys.modules
        print(d.fisher_ratio([[0.0], [1.0], [3.0], [4.0]], [0, 0, 1, 1]))
        try:
            d.ScoreScatterDisplay.from_predictions([0.1, 0.9], [0.2, 0.8], [0, 1])
        except ImportError as exc:
            print(exc)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "18.0"  # D = (3.5 - 0.5)^2 = 9, S = 0.25 + 0.25 = 0.5
    assert 'pip install "skacd[plot]"' in lines[1]
    assert lines[1].startswith(
        "ScoreScatterDisplay.from_predictions requires matplotlib"
    )
