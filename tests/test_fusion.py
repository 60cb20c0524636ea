"""Late fusion: BlockSelector, ScoreAveragingClassifier and make_detector."""

import json
import pickle
import zipfile

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, cross_validate

import skacd
from skacd import BlockSelector, make_detector
from skacd.fusion import ScoreAveragingClassifier, make_branch
from skacd.io import DetectorFileError

NAMES = [f"stage0_mean{i}" for i in range(3)] + [f"stage1_std{i}" for i in range(2)]
NAMES += [f"embedding{i}" for i in range(4)]


def test_block_selector_keeps_the_named_blocks_in_input_order():
    X = np.arange(18.0).reshape(2, 9)
    selector = BlockSelector(["embedding", "stage0"], feature_names=NAMES).fit(X)
    assert_array_equal(selector.columns_, [0, 1, 2, 5, 6, 7, 8])
    assert_array_equal(selector.transform(X), X[:, selector.columns_])
    assert selector.get_feature_names_out().tolist() == NAMES[:3] + NAMES[5:]


def test_block_selector_reads_dataframe_column_names():
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(np.ones((3, 9)), columns=NAMES)
    selected = BlockSelector(["stage1"]).fit_transform(frame)
    assert selected.shape == (3, 2)


@pytest.mark.parametrize(
    "params, X, match",
    [
        ({"blocks": ["stage3"], "feature_names": NAMES}, np.ones((2, 9)), "stage3"),
        ({"blocks": ["stage0"], "feature_names": NAMES}, np.ones((2, 5)), "5 columns"),
        ({"blocks": ["stage0"]}, np.ones((2, 9)), "feature_names="),
    ],
)
def test_block_selector_missing_columns_get_a_clear_error(params, X, match):
    with pytest.raises(ValueError, match=match):
        BlockSelector(**params).fit(X)


def test_score_averaging_weighs_standardised_scores_equally():
    rng = np.random.RandomState(0)
    y = np.r_[np.zeros(50), np.ones(50)]
    small = y + rng.normal(0, 0.3, 100)  # informative, small scale
    large = 100 * rng.normal(0, 1, 100)  # noise on a large scale
    X = np.c_[small, large]
    combiner = ScoreAveragingClassifier().fit(X, y)
    assert_allclose(combiner.scale_, X.std(0))
    assert_allclose(combiner.weights_, [0.5, 0.5])
    expected = combiner.calibration_.decision_function(
        ((X / X.std(0)) @ [0.5, 0.5])[:, None]
    )
    assert_allclose(combiner.decision_function(X), expected)
    only_first = ScoreAveragingClassifier(weights=[1, 0]).fit(X, y)
    assert only_first.score(X, y) > combiner.score(X, y)
    with pytest.raises(ValueError, match="non-negative"):
        ScoreAveragingClassifier(weights=[1, -1]).fit(X, y)


@pytest.fixture(scope="module")
def made_images():
    """Smooth 'real' images and 'fake' ones with a periodic pixel pattern."""
    rng = np.random.RandomState(0)
    yy, xx = np.mgrid[0:64, 0:64] / 64
    images, labels = [], []
    for i in range(32):
        wave = rng.uniform(-1, 1) * xx + rng.uniform(-1, 1) * yy
        base = 128 + 80 * np.sin(3 * wave)
        image = np.repeat(base[..., None], 3, axis=2) + rng.normal(0, 3, (64, 64, 3))
        if i % 2:
            image[::2, ::2] += 40
        images.append(np.clip(image, 0, 255).astype(np.uint8))
        labels.append(i % 2)
    return np.stack(images), np.asarray(labels)


@pytest.fixture(scope="module")
def fitted_detector(made_images):
    images, y = made_images
    detector = make_detector(
        "efficientnet_lite0", latent_dim=4, cv=3, random_state=0, device="cpu",
        num_workers=0,
    )
    return detector.fit(images, y)


def test_make_detector_builds_a_stacked_pipeline(fitted_detector, made_images):
    images, y = made_images
    featurizer = fitted_detector.named_steps["featurizer"]
    assert featurizer.layers == [0, 1, 2, 3, "embedding"] and featurizer.crop_pct == 1.0
    fusion = fitted_detector.named_steps["fusion"]
    assert isinstance(fusion.final_estimator_, ScoreAveragingClassifier)
    assert list(fusion.named_estimators_) == ["early", "embedding"]
    early = fusion.named_estimators_["early"]
    assert early.named_steps["attribution"].solver == "pca"
    assert set(early.named_steps["select"].get_feature_names_out().tolist()) == {
        n for n in featurizer.get_feature_names_out() if not n.startswith("embedding")
    }
    proba = fitted_detector.predict_proba(images)[:, 1]
    assert ((proba > 0.5) == y).mean() >= 0.9


def test_the_combiner_is_fitted_on_out_of_fold_branch_scores(
    fitted_detector, made_images
):
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    images, y = made_images
    fusion = fitted_detector.named_steps["fusion"]
    X = fitted_detector.named_steps["featurizer"].transform(images)
    oof = np.column_stack(
        [
            cross_val_predict(
                clone(branch), X, y, cv=StratifiedKFold(3), method="decision_function"
            )
            for _, branch in fusion.estimators
        ]
    )
    assert_allclose(fusion.final_estimator_.scale_, oof.std(0), rtol=1e-5)
    in_sample = fusion.transform(X)
    assert not np.allclose(fusion.final_estimator_.scale_, in_sample.std(0), rtol=1e-3)


def test_fused_detector_clone_pickle_and_save_load(
    fitted_detector, made_images, tmp_path
):
    images, _ = made_images
    expected = fitted_detector.predict_proba(images)
    unpickled = pickle.loads(pickle.dumps(fitted_detector))
    assert_array_equal(unpickled.predict_proba(images), expected)
    path = tmp_path / "fused.skacd"
    skacd.save(fitted_detector, path)
    loaded = skacd.load(path)
    assert_array_equal(loaded.predict_proba(images), expected)
    fusion = loaded.named_steps["fusion"]
    assert list(fusion.named_estimators_) == ["early", "embedding"]
    params = clone(fitted_detector).get_params()
    assert params["fusion__early__attribution__solver"] == "pca"


def test_a_detector_file_naming_another_class_inside_stacking_is_refused(
    fitted_detector, tmp_path
):
    path = tmp_path / "fused.skacd"
    skacd.save(fitted_detector, path)
    with zipfile.ZipFile(path) as zf:
        manifest = json.loads(zf.read("manifest.json"))
        tensors = zf.read("tensors.safetensors")
    fusion = manifest["estimator"]["steps"][1][1]
    fusion["params"]["final_estimator"]["__estimator__"]["class"] = "os.system"
    forged = tmp_path / "forged.skacd"
    with zipfile.ZipFile(forged, "w") as zf:
        zf.writestr("manifest.json", json.dumps(manifest))
        zf.writestr("tensors.safetensors", tensors)
    with pytest.raises(DetectorFileError, match="allow-list"):
        skacd.load(forged)


def test_fused_branch_in_grid_search_and_cross_validate():
    from sklearn.ensemble import StackingClassifier

    # Real rows lie near a line in each block; fake rows leave it.
    rng = np.random.RandomState(0)
    y = np.r_[np.zeros(30), np.ones(30)].astype(int)
    t = rng.normal(size=(60, 1))
    X = t * rng.normal(size=(1, 9)) + 0.05 * rng.normal(size=(60, 9))
    X[y == 1] += 0.8 * rng.normal(size=(30, 9))
    X = X.astype(np.float32)

    stacked = StackingClassifier(
        [
            ("early", make_branch(["stage0", "stage1"], NAMES, latent_dim=2)),
            ("embedding", make_branch(["embedding"], NAMES, latent_dim=2)),
        ],
        final_estimator=ScoreAveragingClassifier(),
        cv=3,
        stack_method="decision_function",
    )
    search = GridSearchCV(
        stacked, {"early__attribution__latent_dim": [1, 3]}, cv=3, scoring="roc_auc"
    ).fit(X, y)
    assert search.best_score_ > 0.8
    scores = cross_validate(stacked, X, y, cv=3, scoring="roc_auc")
    assert scores["test_score"].mean() > 0.8


def test_a_branch_reading_blocks_the_featurizer_lacks_fails_clearly(made_images):
    images, y = made_images
    detector = make_detector(
        "efficientnet_lite0", branches={"late": ["stage5"]}, device="cpu", num_workers=0
    )
    detector.set_params(featurizer__layers=[0, 1])
    with pytest.raises(ValueError, match=r"BlockSelector was given|stage5"):
        detector.fit(images[:8], y[:8])
