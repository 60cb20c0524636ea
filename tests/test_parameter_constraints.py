"""``device`` and ``hidden_layer_sizes`` are validated precisely, naming the
parameter."""

import numpy as np
import pytest
import torch
from sklearn.utils._param_validation import InvalidParameterError

from skacd import (
    AttributionClassifier,
    AttributionSpace,
    CLIPFeaturizer,
    TimmFeaturizer,
)
from skacd._constraints import DeviceName, PositiveIntSizes
from skacd.datasets import make_generator_manifolds

FAST = dict(max_epochs=2, random_state=0)


@pytest.fixture(scope="module")
def data():
    X, y = make_generator_manifolds(n_samples=40, n_features=6, random_state=0)
    return X.astype(np.float32), y


def _estimators(**params):
    return [
        AttributionSpace(source_class=0, latent_dim=2, **FAST, **params),
        AttributionClassifier(**FAST, **params),
    ]


@pytest.mark.parametrize("device", ["gpu", "cuda:x", "cuda:", "CPU", "", "cuda:0:1", 0])
def test_unknown_device_is_an_error_naming_the_parameter(data, device):
    X, y = data
    for estimator in _estimators(device=device):
        name = type(estimator).__name__
        with pytest.raises(InvalidParameterError,
                           match=f"The 'device' parameter of {name} must be") as info:
            estimator.fit(X, y)
        assert "cuda:N" in str(info.value) and repr(device) in str(info.value)
        assert "Expected one of" not in str(info.value)  # torch's device-type list


@pytest.mark.parametrize("featurizer", [
    CLIPFeaturizer("skacd-tiny-ViT", pretrained=None, device="gpu"),
    TimmFeaturizer("efficientnet_lite0", device="gpu"),
])
def test_featurizer_unknown_device_is_an_error_naming_the_parameter(featurizer):
    # Validation comes before the encoder or any image is loaded.
    name = type(featurizer).__name__
    with pytest.raises(InvalidParameterError,
                       match=f"The 'device' parameter of {name} must be.*'gpu'"):
        featurizer.fit(["no-such-image.png"])


def test_device_names_skacd_accepts(data):
    X, y = data
    constraint = DeviceName()
    for device in ("auto", "cpu", "cuda", "cuda:0", "cuda:12", "mps"):
        assert constraint.is_satisfied_by(device), device
    for device in ("gpu", "cuda:", "cuda:-1", "cpu:0", "xla", None, 1):
        assert not constraint.is_satisfied_by(device), device
    for device in ("cpu", torch.device("cpu"), "auto"):
        for estimator in _estimators(device=device):
            with pytest.warns(Warning):  # ConvergenceWarning at max_epochs=2
                estimator.fit(X, y)
    if not torch.cuda.is_available():
        # 'cuda:0' passes validation; resolving it on this machine fails.
        with pytest.raises(ValueError, match="CUDA is not available"):
            AttributionClassifier(device="cuda:0", **FAST).fit(X, y)


@pytest.mark.parametrize("sizes", [
    (-3,), (0,), (8, -1), (2.5,), ("8",), (True,), [[8]], 8, "8", None,
])
def test_bad_hidden_layer_sizes_is_an_error_naming_the_parameter(data, sizes):
    X, y = data
    for estimator in _estimators(hidden_layer_sizes=sizes, device="cpu"):
        name = type(estimator).__name__
        with pytest.raises(
            InvalidParameterError,
            match=f"The 'hidden_layer_sizes' parameter of {name} must be an "
                  "array-like of positive ints",
        ):
            estimator.fit(X, y)


def test_hidden_layer_sizes_accepted(data):
    X, y = data
    for sizes in ((8,), [8, 4], np.array([8, 4]), (np.int64(8),)):
        assert PositiveIntSizes().is_satisfied_by(sizes)
        for estimator in _estimators(hidden_layer_sizes=sizes, device="cpu"):
            with pytest.warns(Warning):  # ConvergenceWarning at max_epochs=2
                estimator.fit(X, y)
            assert estimator.module_config_["hidden_layer_sizes"] == [
                int(h) for h in sizes
            ]
    assert PositiveIntSizes().is_satisfied_by(())
    AttributionClassifier(hidden_layer_sizes=(), device="cpu", **FAST).fit(X, y)
