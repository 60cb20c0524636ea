"""Tests for the class-separation measures of skacd.diagnostics (Fig. 2e)."""

import json

import numpy as np
import pytest

from skacd.diagnostics import (
    SeparationReport,
    fisher_ratio,
    inter_class_distance,
    intra_class_variance,
    separation_report,
)

MEASURES = [inter_class_distance, intra_class_variance, fisher_ratio]


# --------------------------------------------------------------------------- #
# Hand computations
# --------------------------------------------------------------------------- #


def test_square_by_hand():
    # class 0 at x=0, class 1 at x=4, each spread +-1 around y=1.
    # mu_0 = (0, 1), mu_1 = (4, 1): D = 4^2 = 16.
    # every point is at squared distance 1 from its mean: S = 1 + 1 = 2.
    X = np.array([[0.0, 0.0], [0.0, 2.0], [4.0, 0.0], [4.0, 2.0]])
    y = np.array([0, 0, 1, 1])
    assert inter_class_distance(X, y) == 16.0
    assert intra_class_variance(X, y) == 2.0
    assert fisher_ratio(X, y) == 8.0


def test_unequal_sizes_string_labels_interleaved_by_hand():
    # "a": x in {1, 3} -> mu = (2, 0), variance (1 + 1) / 2 = 1.
    # "b": x in {10, 10, 13} -> mu = (11, 0), variance (1 + 1 + 4) / 3 = 2.
    # D = (11 - 2)^2 = 81, S = 1 + 2 = 3, F = 27.
    # The constant second column adds nothing.
    X = np.array([[10.0, 5.0], [1.0, 5.0], [13.0, 5.0], [3.0, 5.0], [10.0, 5.0]])
    y = np.array(["b", "a", "b", "a", "b"])
    assert inter_class_distance(X, y) == pytest.approx(81.0)
    assert intra_class_variance(X, y) == pytest.approx(3.0)
    assert fisher_ratio(X, y) == pytest.approx(27.0)


def _loop_measures(X, y):
    """The definitions written as plain loops, one sample at a time."""
    classes = sorted(set(y.tolist()))
    means, variances = [], []
    for c in classes:
        rows = [X[i] for i in range(len(y)) if y[i] == c]
        n, d = len(rows), X.shape[1]
        mean = [sum(row[j] for row in rows) / n for j in range(d)]
        var = sum(sum((row[j] - mean[j]) ** 2 for j in range(d)) for row in rows) / n
        means.append(mean)
        variances.append(var)
    D = sum((a - b) ** 2 for a, b in zip(means[1], means[0]))
    S = variances[0] + variances[1]
    return D, S, D / S


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_against_loop(seed):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(37, 6)) * rng.uniform(0.1, 3, size=6)
    y = rng.randint(0, 2, size=37)
    X[y == 1] += rng.normal(size=6)
    D, S, F = _loop_measures(X, y)
    assert inter_class_distance(X, y) == pytest.approx(D, rel=1e-12)
    assert intra_class_variance(X, y) == pytest.approx(S, rel=1e-12)
    assert fisher_ratio(X, y) == pytest.approx(F, rel=1e-12)


def test_intra_class_variance_is_sum_of_covariance_traces():
    rng = np.random.RandomState(3)
    X = rng.normal(size=(50, 4))
    y = np.repeat([0, 1], [20, 30])
    traces = sum(np.trace(np.cov(X[y == c].T, bias=True)) for c in (0, 1))
    assert intra_class_variance(X, y) == pytest.approx(traces)


def test_return_types_are_python_floats():
    X = np.array([[0.0], [1.0], [3.0], [4.0]], dtype=np.float32)
    y = [0, 0, 1, 1]
    for measure in MEASURES:
        assert type(measure(X, y)) is float


# --------------------------------------------------------------------------- #
# Invariances
# --------------------------------------------------------------------------- #


@pytest.fixture
def random_xy():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(40, 5))
    y = np.repeat(["fake", "real"], [15, 25])
    X[y == "fake"] += 1.5
    return X, y


@pytest.mark.parametrize("scale", [1e-3, 0.5, 7.0, -2.0])
def test_uniform_scaling(random_xy, scale):
    X, y = random_xy
    assert fisher_ratio(scale * X, y) == pytest.approx(fisher_ratio(X, y), rel=1e-10)
    assert inter_class_distance(scale * X, y) == pytest.approx(
        scale**2 * inter_class_distance(X, y), rel=1e-10
    )
    assert intra_class_variance(scale * X, y) == pytest.approx(
        scale**2 * intra_class_variance(X, y), rel=1e-10
    )


def test_swapping_labels(random_xy):
    X, y = random_xy
    swapped = np.where(y == "fake", "real", "fake")
    for measure in MEASURES:
        assert measure(X, swapped) == pytest.approx(measure(X, y), rel=1e-12)


def test_translation_rotation_and_row_order(random_xy):
    X, y = random_xy
    rng = np.random.RandomState(1)
    Q, _ = np.linalg.qr(rng.normal(size=(5, 5)))
    moved = X @ Q + rng.normal(size=5) * 10
    order = rng.permutation(len(y))
    for measure in MEASURES:
        assert measure(moved, y) == pytest.approx(measure(X, y), rel=1e-9)
        assert measure(X[order], y[order]) == pytest.approx(measure(X, y), rel=1e-12)


def test_not_invariant_to_per_feature_scaling(random_xy):
    # Documented: only uniform scaling leaves F unchanged.
    X, y = random_xy
    assert fisher_ratio(X * [1, 1, 1, 1, 100], y) != pytest.approx(fisher_ratio(X, y))


# --------------------------------------------------------------------------- #
# Degenerate cases and errors
# --------------------------------------------------------------------------- #


def test_zero_variance():
    X = np.array([[0.0, 0.0], [0.0, 0.0], [1.0, 2.0]])
    y = [0, 0, 1]
    assert intra_class_variance(X, y) == 0.0
    assert inter_class_distance(X, y) == 5.0
    assert fisher_ratio(X, y) == np.inf
    assert np.isnan(fisher_ratio(np.zeros((3, 2)), y))


@pytest.mark.parametrize("measure", MEASURES + [separation_report])
@pytest.mark.parametrize("y", [[0, 0, 0, 0], [0, 1, 2, 2], ["a", "b", "c", "d"]])
def test_not_two_classes(measure, y):
    X = np.arange(8.0).reshape(4, 2)
    with pytest.raises(ValueError, match="exactly two classes"):
        measure(X, y)


def test_many_classes_message_is_truncated():
    X = np.arange(40.0).reshape(20, 2)
    with pytest.raises(ValueError, match=r"got 20 class\(es\): \[0, 1, .*9\] \.\.\."):
        fisher_ratio(X, np.arange(20))


@pytest.mark.parametrize("measure", MEASURES + [separation_report])
def test_validation(measure):
    with pytest.raises(ValueError, match="The 'X' parameter of"):
        measure("not an array", [0, 1])
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        measure(np.zeros((4, 2)), [0, 1, 1])
    with pytest.raises(ValueError, match="NaN"):
        measure(np.array([[0.0], [np.nan], [1.0]]), [0, 0, 1])


# --------------------------------------------------------------------------- #
# separation_report
# --------------------------------------------------------------------------- #


def _measures_of(A, B):
    X = np.vstack([A, B])
    y = np.repeat([0, 1], [len(A), len(B)])
    return {
        "inter_class_distance": inter_class_distance(X, y),
        "intra_class_variance": intra_class_variance(X, y),
        "fisher_ratio": fisher_ratio(X, y),
    }


def test_report_without_groups(random_xy):
    X, y = random_xy
    report = separation_report(X, y)
    assert isinstance(report, SeparationReport)
    assert report.classes == ["fake", "real"]
    assert report.overall == {
        "n_0": 15,
        "n_1": 25,
        "inter_class_distance": inter_class_distance(X, y),
        "intra_class_variance": intra_class_variance(X, y),
        "fisher_ratio": fisher_ratio(X, y),
    }
    assert report.per_group == [] and report.pairwise == []
    text = str(report)
    assert "overall" in text and "per group" not in text


@pytest.fixture
def grouped():
    """Real images from two sources; fakes from two generators and 'mixed'.

    'mixed' holds both classes, so its row is a within-group contrast.
    """
    rng = np.random.RandomState(0)
    groups = np.repeat(["coco", "laion", "sd14", "mj", "mixed"], [10, 8, 9, 7, 12])
    y = np.array(["real"] * 18 + ["fake"] * 16 + ["real"] * 5 + ["fake"] * 7)
    X = rng.normal(size=(46, 3))
    X[y == "fake"] += 2.0
    X[groups == "mj"] += 3.0
    return X, y, groups


def test_report_per_group(grouped):
    X, y, groups = grouped
    report = separation_report(X, y, groups)
    assert [r["group"] for r in report.per_group] == [
        "coco", "laion", "sd14", "mj", "mixed"
    ]
    fake, real = X[y == "fake"], X[y == "real"]  # class 0 = "fake", 1 = "real"
    expected_sides = {
        "coco": (fake, X[groups == "coco"], True, False),
        "laion": (fake, X[groups == "laion"], True, False),
        "sd14": (X[groups == "sd14"], real, False, True),
        "mj": (X[groups == "mj"], real, False, True),
        "mixed": (
            X[(groups == "mixed") & (y == "fake")],
            X[(groups == "mixed") & (y == "real")],
            False,
            False,
        ),
    }
    for row in report.per_group:
        A, B, pooled_0, pooled_1 = expected_sides[row["group"]]
        assert (row["n_0"], row["n_1"]) == (len(A), len(B))
        assert (row["pooled_0"], row["pooled_1"]) == (pooled_0, pooled_1)
        for key, value in _measures_of(A, B).items():
            assert row[key] == pytest.approx(value, rel=1e-12), (row["group"], key)


def test_report_pairwise(grouped):
    X, y, groups = grouped
    report = separation_report(X, y, groups)
    pairs = [(r["group_a"], r["group_b"], r["class"]) for r in report.pairwise]
    # Only pairs sharing a class: real sources together, fake generators
    # together, and "mixed" with each on the class they share.
    assert pairs == [
        ("coco", "laion", "real"),
        ("coco", "mixed", "real"),
        ("laion", "mixed", "real"),
        ("sd14", "mj", "fake"),
        ("sd14", "mixed", "fake"),
        ("mj", "mixed", "fake"),
    ]
    row = report.pairwise[3]
    A, B = X[groups == "sd14"], X[groups == "mj"]
    assert (row["n_a"], row["n_b"]) == (9, 7)
    for key, value in _measures_of(A, B).items():
        assert row[key] == pytest.approx(value, rel=1e-12)
    # mj was shifted away from sd14: the two generators separate.
    assert row["fisher_ratio"] > report.pairwise[0]["fisher_ratio"]


def test_report_to_dict_and_text(grouped):
    X, y, groups = grouped
    report = separation_report(X, y, groups)
    d = report.to_dict()
    assert set(d) == {"classes", "overall", "per_group", "pairwise"}
    assert json.loads(json.dumps(d)) == d  # plain Python values
    d["overall"]["fisher_ratio"] = -1.0  # a copy
    assert report.overall["fisher_ratio"] > 0
    text = str(report)
    assert repr(report) == text
    for g in ("coco", "laion", "sd14", "mj", "mixed"):
        assert f"\n  {g} " in text
    assert "sd14 vs mj [fake]" in text
    assert "* the group has no sample" in text


def test_report_numpy_labels_become_python():
    X = np.arange(12.0).reshape(6, 2)
    y, groups = np.array([0, 0, 0, 1, 1, 1]), np.array([5, 5, 6, 6, 7, 7])
    report = separation_report(X, y, groups)
    d = report.to_dict()
    assert d["classes"] == [0, 1] and type(d["classes"][0]) is int
    assert [type(r["group"]) for r in d["per_group"]] == [int, int, int]
    json.dumps(d)


def test_report_groups_length_mismatch(random_xy):
    X, y = random_xy
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        separation_report(X, y, groups=np.zeros(len(y) - 1))
