"""The featurizers as scikit-learn estimators: parameters, names, checks."""

import pathlib

import numpy as np
import pytest
from sklearn.utils._param_validation import InvalidParameterError

from skacd import CLIPFeaturizer, TimmFeaturizer
from skacd.cache import FeatureCache


def _tiny_clip(**params):
    return CLIPFeaturizer(
        "skacd-tiny-ViT", pretrained=None, device="cpu", num_workers=0, **params
    )


def _tiny_timm(**params):
    return TimmFeaturizer("test_vit", pretrained=False, device="cpu", num_workers=0,
                          **params)


IMAGES = np.random.RandomState(0).randint(0, 256, (3, 40, 40, 3), dtype=np.uint8)


@pytest.mark.parametrize("make", [_tiny_clip, _tiny_timm])
@pytest.mark.parametrize("cache", [1, b"/tmp/cache", object(), {"dir": "x"}])
def test_cache_of_a_wrong_type_is_an_error_naming_the_parameter(make, cache):
    featurizer = make(cache=cache)
    name = type(featurizer).__name__
    with pytest.raises(InvalidParameterError,
                       match=f"The 'cache' parameter of {name} must be"):
        featurizer.transform(IMAGES)


@pytest.mark.parametrize("kind", ["str", "path", "FeatureCache"])
def test_cache_as_a_directory_or_a_feature_cache(tmp_path, kind):
    directory = tmp_path / "features"
    cache = {
        "str": str(directory),
        "path": pathlib.Path(directory),
        "FeatureCache": FeatureCache(directory),
    }[kind]
    first = _tiny_clip(cache=cache).featurize(IMAGES)
    again = _tiny_clip(cache=cache).featurize(IMAGES)
    assert first.n_cached == 0 and again.n_cached == len(IMAGES)
    np.testing.assert_array_equal(first.features, again.features)


# -- get_feature_names_out never loads the encoder ------------------------------


@pytest.fixture
def empty_encoder_cache(monkeypatch):
    from collections import OrderedDict

    from skacd.featurizers import _base, _encoder

    monkeypatch.setattr(_encoder, "_ENCODER_CACHE", OrderedDict())
    monkeypatch.setattr(_base, "_OUTPUT_COLUMNS", {})
    return _encoder._ENCODER_CACHE


@pytest.mark.parametrize("make, layers", [
    (_tiny_clip, None),
    (_tiny_clip, [0, 1, "embedding"]),
    (_tiny_timm, None),
    (_tiny_timm, [1, "embedding"]),
])
def test_feature_names_load_no_encoder_and_match_the_loaded_one(
    empty_encoder_cache, make, layers
):
    from sklearn.base import clone

    featurizer = make(layers=layers)
    names = featurizer.get_feature_names_out()
    assert len(empty_encoder_cache) == 0  # nothing loaded, not even random weights
    fitted = clone(featurizer).fit()
    assert len(empty_encoder_cache) == 1
    assert names.dtype == object
    assert names.tolist() == fitted.get_feature_names_out().tolist()
    assert len(names) == fitted.n_features_out_ == fitted.transform(IMAGES).shape[1]
    encoder = fitted._get_encoder()
    if layers is not None:
        assert names.tolist() == encoder.feature_names


def test_feature_names_read_no_weights_file(empty_encoder_cache, monkeypatch):
    from skacd.featurizers import _timm

    def no_weights(*args, **kwargs):
        raise AssertionError("the weights file was looked up")

    monkeypatch.setattr(_timm, "efficientnet_lite_weights_path", no_weights)
    featurizer = TimmFeaturizer("efficientnet_lite0", layers=[0, 1, 2, 3], device="cpu")
    names = featurizer.get_feature_names_out()
    assert names[[0, 16, 32]].tolist() == [
        "stage0_mean0", "stage0_std0", "stage1_mean0"
    ]
    assert len(names) == 320 and len(empty_encoder_cache) == 0
    with pytest.raises(AssertionError, match="weights file was looked up"):
        featurizer.fit()


def test_feature_names_of_a_clip_tag_need_no_download(empty_encoder_cache,
                                                       monkeypatch):
    # Offline, loading these weights fails; naming the columns does not need them.
    monkeypatch.setenv("SKACD_OFFLINE", "1")
    featurizer = CLIPFeaturizer("ViT-B-32", pretrained="openai", device="cpu",
                                cache_dir="/nonexistent-skacd-cache")
    names = featurizer.get_feature_names_out()
    assert names.tolist() == [f"clipfeaturizer{i}" for i in range(512)]
    featurizer.set_params(layers=[11, "embedding"])
    with_layers = featurizer.get_feature_names_out()
    assert with_layers[0] == "block11_cls0" and len(with_layers) == 768 + 512
    assert len(empty_encoder_cache) == 0


# -- scikit-learn's estimator checks, run explicitly ----------------------------
#
# check_estimator skips the featurizers (their tags say they take images, not
# 2-D arrays), so the checks that apply to a transformer of images run here one
# by one, on the tiny models. A check that feeds numeric arrays to transform
# cannot apply: its image counterpart is test_transform_on_images_is_...

APPLICABLE_CHECKS = [
    "check_estimator_cloneable",
    "check_estimator_repr",
    "check_estimator_tags_renamed",
    "check_valid_tag_types",
    "check_mixin_order",
    "check_no_attributes_set_in_init",
    "check_parameters_default_constructible",
    "check_do_not_raise_errors_in_init_or_set_params",
    "check_get_params_invariance",
    "check_set_params",
    "check_param_validation",
    "check_dont_overwrite_parameters",
    "check_estimators_overwrite_params",
    "check_estimators_fit_returns_self",
    "check_fit_check_is_fitted",
    "check_requires_y_none",
    "check_transformer_n_iter",
]

NUMERIC_X = (
    "Feeds numeric arrays to transform; a featurizer takes images (paths, PIL "
    "images, uint8 arrays) and refuses a 2-D float array with a ValueError naming "
    "the accepted inputs. Its image counterpart is in this file."
)
SKIPPED_CHECKS = {
    "check_estimators_pickle": NUMERIC_X,
    "check_fit_idempotent": NUMERIC_X,
    "check_methods_subset_invariance": NUMERIC_X,
    "check_methods_sample_order_invariance": NUMERIC_X,
    "check_transformer_general": NUMERIC_X,
    "check_transformers_unfitted_stateless": NUMERIC_X,
    "check_pipeline_consistency": NUMERIC_X,
    "check_dict_unchanged": NUMERIC_X,
    "check_transformer_preserve_dtypes": NUMERIC_X,
    "check_n_features_in": (
        "Images have no number of input features: n_features_in_ is never set "
        "(as for scikit-learn's text vectorizers)."
    ),
    "check_get_feature_names_out_error": (
        "By design: a featurizer is stateless (requires_fit=False), so its output "
        "names are known before fit, from the architecture alone."
    ),
}


@pytest.mark.parametrize("make", [_tiny_clip, _tiny_timm],
                         ids=["CLIPFeaturizer", "TimmFeaturizer"])
@pytest.mark.parametrize("check_name", APPLICABLE_CHECKS + sorted(SKIPPED_CHECKS))
def test_sklearn_estimator_checks(make, check_name):
    import warnings

    from sklearn.utils import estimator_checks

    if check_name in SKIPPED_CHECKS:
        pytest.skip(SKIPPED_CHECKS[check_name])
    check = getattr(estimator_checks, check_name)
    estimator = make()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        check(type(estimator).__name__, estimator)


@pytest.mark.parametrize("make", [_tiny_clip, _tiny_timm],
                         ids=["CLIPFeaturizer", "TimmFeaturizer"])
def test_transform_on_images_is_idempotent_invariant_and_picklable(make):
    import pickle

    from numpy.testing import assert_allclose, assert_array_equal
    from sklearn.base import clone

    images = np.random.RandomState(1).randint(0, 256, (7, 40, 40, 3), dtype=np.uint8)
    featurizer = make(batch_size=4).fit()
    reference = featurizer.transform(images)
    # check_fit_idempotent: refitting changes nothing.
    assert_array_equal(clone(featurizer).fit().fit().transform(images), reference)
    # check_estimators_pickle: the unpickled featurizer gives the same rows.
    restored = pickle.loads(pickle.dumps(featurizer))
    assert_array_equal(restored.transform(images), reference)
    # check_methods_subset_invariance / sample_order_invariance, up to float
    # rounding of batches of other shapes.
    assert_allclose(featurizer.transform(images[2:5]), reference[2:5], atol=1e-5)
    order = np.random.RandomState(0).permutation(len(images))
    assert_allclose(featurizer.transform(images[order]), reference[order], atol=1e-5)
    # check_transformer_general: fit_transform is fit then transform.
    assert_array_equal(clone(featurizer).fit_transform(images), reference)


# -- encoder_identity_ ----------------------------------------------------------


@pytest.mark.parametrize("make, layers", [
    (_tiny_clip, None), (_tiny_timm, None), (_tiny_clip, [1, "embedding"]),
])
def test_encoder_identity_is_a_fitted_attribute_of_json_values(make, layers):
    import json

    featurizer = make(layers=layers)
    assert not hasattr(featurizer, "encoder_identity_")
    identity = featurizer.fit().encoder_identity_
    assert json.loads(json.dumps(identity)) == identity
    assert identity == featurizer._get_encoder().identity
    assert identity is not featurizer._get_encoder().identity  # a copy
    assert identity["preprocessing"] == featurizer.preprocessing_
    assert identity["featurizer"] == type(featurizer).__name__
    assert identity["precision"] == featurizer.precision_ == "float32"
    assert identity["device_type"] == "cpu"
    assert ("layers" in identity) == (layers is not None)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_encoder_identity_is_saved_with_a_detector(tmp_path):
    import skacd

    from conftest import tiny_detector

    images = np.random.RandomState(0).randint(0, 256, (8, 40, 40, 3), dtype=np.uint8)
    detector = tiny_detector().fit(images, np.repeat([0, 1], 4))
    skacd.save(detector, tmp_path / "detector.skacd")
    loaded = skacd.load(tmp_path / "detector.skacd")
    assert loaded[0].encoder_identity_ == detector[0].encoder_identity_
