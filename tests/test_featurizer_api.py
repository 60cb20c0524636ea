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

    from skacd.featurizers import _base

    monkeypatch.setattr(_base, "_ENCODER_CACHE", OrderedDict())
    monkeypatch.setattr(_base, "_OUTPUT_COLUMNS", {})
    return _base._ENCODER_CACHE


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
    assert names[[0, 16, 32]].tolist() == ["stage0_mean0", "stage0_std0", "stage1_mean0"]
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
    with_layers = featurizer.set_params(layers=[11, "embedding"]).get_feature_names_out()
    assert with_layers[0] == "block11_cls0" and len(with_layers) == 768 + 512
    assert len(empty_encoder_cache) == 0
