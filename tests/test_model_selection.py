import numpy as np
import pytest
from sklearn import config_context
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, cross_validate

from skacd.model_selection import CrossGeneratorSplit


@pytest.fixture
def data():
    rng = np.random.RandomState(0)
    groups = np.repeat(["sd", "progan", "dalle", "biggan"], [40, 30, 20, 30])
    rng.shuffle(groups)
    y = np.tile([0, 1], 60)
    X = rng.normal(size=(120, 5)) + y[:, None] * np.linspace(0.5, 2, 5)
    return X, y, groups


def _idx(groups, names):
    return np.flatnonzero(np.isin(groups, names))


def test_default_trains_on_each_group_tests_on_the_rest(data):
    X, y, groups = data
    cv = CrossGeneratorSplit()
    splits = list(cv.split(X, y, groups))
    assert cv.get_n_splits(X, y, groups) == len(splits) == 4
    for (train, test), g in zip(splits, sorted(set(groups))):
        np.testing.assert_array_equal(train, _idx(groups, [g]))
        np.testing.assert_array_equal(test, np.flatnonzero(groups != g))


def test_named_source_test_all(data):
    X, y, groups = data
    splits = list(CrossGeneratorSplit(train_groups="sd").split(X, y, groups))
    assert len(splits) == 1
    train, test = splits[0]
    np.testing.assert_array_equal(train, _idx(groups, ["sd"]))
    np.testing.assert_array_equal(test, np.flatnonzero(groups != "sd"))


def test_named_source_test_each(data):
    X, y, groups = data
    cv = CrossGeneratorSplit(train_groups=["sd"], test="each")
    splits = list(cv.split(X, y, groups))
    assert cv.get_n_splits(groups=groups) == len(splits) == 3
    for (train, test), g in zip(splits, ["biggan", "dalle", "progan"]):
        np.testing.assert_array_equal(train, _idx(groups, ["sd"]))
        np.testing.assert_array_equal(test, _idx(groups, [g]))


def test_union_source_and_list_of_sources(data):
    X, y, groups = data
    cv = CrossGeneratorSplit(train_groups=["sd", "progan"])
    ((train, test),) = cv.split(X, y, groups)
    np.testing.assert_array_equal(train, _idx(groups, ["sd", "progan"]))
    np.testing.assert_array_equal(test, _idx(groups, ["dalle", "biggan"]))

    cv = CrossGeneratorSplit(train_groups=[["dalle"], ["sd", "progan"]], test="each")
    splits = list(cv.split(X, y, groups))
    assert cv.get_n_splits(groups=groups) == len(splits) == 3 + 2
    np.testing.assert_array_equal(splits[0][0], _idx(groups, ["dalle"]))
    np.testing.assert_array_equal(splits[3][0], _idx(groups, ["sd", "progan"]))
    assert [set(groups[test]) for _, test in splits[3:]] == [{"biggan"}, {"dalle"}]


def test_default_each_is_every_ordered_pair(data):
    X, y, groups = data
    cv = CrossGeneratorSplit(test="each")
    pairs = []
    for train, test in cv.split(X, y, groups):
        (src,) = set(groups[train])
        (dst,) = set(groups[test])
        pairs.append((src, dst))
    assert cv.get_n_splits(groups=groups) == len(pairs) == 12
    assert len(set(pairs)) == 12 and all(s != d for s, d in pairs)


def test_inside_cross_validate(data):
    X, y, groups = data
    cv = CrossGeneratorSplit(train_groups="sd", test="each")
    result = cross_validate(
        LogisticRegression(), X, y, groups=groups, cv=cv,
        return_indices=True, return_train_score=True,
    )
    assert result["test_score"].shape == (3,)
    assert np.all(result["test_score"] > 0.6)
    for train, test, g in zip(result["indices"]["train"], result["indices"]["test"],
                              ["biggan", "dalle", "progan"]):
        np.testing.assert_array_equal(train, _idx(groups, ["sd"]))
        np.testing.assert_array_equal(test, _idx(groups, [g]))
    # the score is the model fitted on "sd" alone, evaluated on one unseen group
    model = LogisticRegression().fit(X[groups == "sd"], y[groups == "sd"])
    m = groups == "dalle"
    assert result["test_score"][1] == pytest.approx(model.score(X[m], y[m]))


def test_inside_grid_search(data):
    X, y, groups = data
    cv = CrossGeneratorSplit(train_groups="sd", test="each")
    search = GridSearchCV(
        LogisticRegression(), {"C": [1e-4, 1.0]}, cv=cv, refit=False
    ).fit(X, y, groups=groups)
    assert len(search.cv_results_["split2_test_score"]) == 2
    assert search.n_splits_ == 3
    assert search.best_params_ == {"C": 1.0}
    # mean over unseen groups, each group weighted the same
    scores = [search.cv_results_[f"split{i}_test_score"][1] for i in range(3)]
    assert search.cv_results_["mean_test_score"][1] == pytest.approx(np.mean(scores))


def test_metadata_routing_passes_groups(data):
    X, y, groups = data
    with config_context(enable_metadata_routing=True):
        result = cross_validate(
            LogisticRegression(), X, y, cv=CrossGeneratorSplit(),
            params={"groups": groups},
        )
    assert result["test_score"].shape == (4,)


def test_train_size_subsamples_the_source_stratified(data):
    X, y, groups = data
    cv = CrossGeneratorSplit(train_groups="sd", test="each", train_size=0.5,
                             random_state=0)
    splits = list(cv.split(X, y, groups))
    source = _idx(groups, ["sd"])
    train0 = splits[0][0]
    assert len(train0) == 20 and np.isin(train0, source).all()
    assert np.sum(y[train0]) == np.sum(y[source]) / 2  # class balance kept
    for train, _ in splits:  # same subsample for every test group
        np.testing.assert_array_equal(train, train0)
    again = list(cv.split(X, y, groups))[0][0]
    np.testing.assert_array_equal(again, train0)  # int random_state: repeatable
    other = CrossGeneratorSplit(train_groups="sd", train_size=0.5, random_state=1)
    assert not np.array_equal(next(other.split(X, y, groups))[0], train0)
    # an int size, no y
    train, _ = next(CrossGeneratorSplit(train_groups="sd", train_size=7,
                                        random_state=0).split(X, None, groups))
    assert len(train) == 7 and np.isin(train, source).all()


def test_groups_none_raises(data):
    X, y, _ = data
    cv = CrossGeneratorSplit()
    with pytest.raises(ValueError, match="'groups' parameter should not be None"):
        next(cv.split(X, y))
    with pytest.raises(ValueError, match="'groups' parameter should not be None"):
        cv.get_n_splits(X, y)


def test_absent_train_group_raises_and_lists_groups(data):
    X, y, groups = data
    cv = CrossGeneratorSplit(train_groups=["sd", "midjourney"])
    with pytest.raises(ValueError, match=r"\['midjourney'\] not found.*'biggan'"):
        next(cv.split(X, y, groups))
    with pytest.raises(ValueError, match="not found"):
        cv.get_n_splits(groups=groups)


@pytest.mark.parametrize(
    "kwargs, groups, match",
    [
        ({}, ["a", "a"], "at least two distinct groups"),
        ({"train_groups": ["a", "b"]}, ["a", "b"], "cover every group"),
        ({"test": "one"}, ["a", "b"], "'test' parameter"),
        ({"train_size": 0}, ["a", "b"], "'train_size' parameter"),
        ({"train_size": 1.5}, ["a", "b"], "'train_size' parameter"),
        ({"train_size": 3, "train_groups": "a"}, ["a", "b"], "larger than"),
        ({"train_groups": []}, ["a", "b"], "empty"),
        ({"train_groups": ["a", ["b"]]}, ["a", "b", "c"], "mixes"),
    ],
)
def test_invalid_settings_raise(kwargs, groups, match):
    X = np.zeros((len(groups), 1))
    with pytest.raises(ValueError, match=match):
        list(CrossGeneratorSplit(**kwargs).split(X, None, groups))


def test_inconsistent_lengths_raise():
    with pytest.raises(ValueError, match="inconsistent"):
        list(CrossGeneratorSplit().split(np.zeros((3, 1)), None, ["a", "b"]))


def test_integer_groups():
    groups = np.array([0, 0, 1, 1, 2, 2])
    ((train, test),) = CrossGeneratorSplit(train_groups=1).split(np.zeros(6), None,
                                                                 groups)
    np.testing.assert_array_equal(train, [2, 3])
    np.testing.assert_array_equal(test, [0, 1, 4, 5])


def test_repr():
    assert repr(CrossGeneratorSplit("sd", test="each")).startswith(
        "CrossGeneratorSplit(")
