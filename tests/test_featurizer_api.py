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
