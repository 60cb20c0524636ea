"""scikit-learn's estimator checks over every trainable skacd estimator.

Three sets: tiny models (fast), the default architectures with fewer epochs
(inference is batch-invariant at full width: check_methods_subset_invariance
failed there), and the default parameters themselves (marked slow).
"""

import warnings

import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.estimator_checks import parametrize_with_checks

from skacd import AttributionClassifier, AttributionSpace, OneClassDetector
from skacd.fusion import ScoreAveragingClassifier

FAST = dict(max_epochs=30, device="cpu", random_state=0)

CROSS_FIT_REASON = (
    "By design: fit_transform returns out-of-fold (cross-fitted) attributions for "
    "the source rows, so it differs from fit(X).transform(X), as with "
    "sklearn.preprocessing.TargetEncoder. The same checks pass with cv=None."
)


NO_SOURCE_ROW_REASON = (
    "By design: the check passes a y that has no row of source_class, and "
    "AttributionSpace then raises a ValueError naming source_class and the labels "
    "present, rather than fitting on nothing."
)


FIXED_WEIGHTS_REASON = (
    "By design: ScoreAveragingClassifier averages its input columns with fixed "
    "weights (each column is a branch's score, larger meaning the positive class); "
    "on the check's raw blob features an unweighted mean is not a good classifier."
)

ONE_CLASS_REASON = (
    "By design: OneClassDetector fits on the real rows (label 0) only, so it "
    "trains on one class and refuses a y without any 0 (naming the labels "
    "present) rather than fitting on nothing."
)


IDENTITY_REASON = (
    "By design of the one-class score: the default bottleneck (latent_dim=128) is "
    "wider than the check's 2 features, so the autoencoder, trained to "
    "convergence on the real rows, approaches the identity and the other class "
    "reconstructs as well as the real one. It passes with latent_dim < n_features "
    "(the tiny OneClassDetector above)."
)


def _run_quietly(check, estimator):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        check(estimator)


def _expected_failed_checks(estimator):
    failures = {}
    if isinstance(estimator, ScoreAveragingClassifier):
        failures["check_classifiers_train"] = FIXED_WEIGHTS_REASON
    if isinstance(estimator, OneClassDetector):
        failures.update(
            dict.fromkeys(
                [
                    "check_classifiers_one_label",
                    "check_estimators_dtypes",
                    "check_classifier_data_not_an_array",
                    "check_classifiers_classes",
                    "check_fit2d_1feature",
                ],
                ONE_CLASS_REASON,
            )
        )
    if isinstance(estimator, AttributionSpace) and estimator.source_class == 0:
        # Those checks' y has no 0 (they pass with source_class=1).
        failures.update(
            dict.fromkeys(
                [
                    "check_classifier_data_not_an_array",
                    "check_estimators_dtypes",
                    "check_fit2d_1feature",
                ],
                NO_SOURCE_ROW_REASON,
            )
        )
    if isinstance(estimator, AttributionSpace) and estimator.cv is not None:
        failures["check_transformer_general"] = CROSS_FIT_REASON
        failures["check_transformer_data_not_an_array"] = CROSS_FIT_REASON
    return failures


@parametrize_with_checks(
    [
        AttributionSpace(hidden_layer_sizes=(16,), latent_dim=4, **FAST),
        AttributionSpace(hidden_layer_sizes=(16,), latent_dim=4, cv=None, **FAST),
        AttributionSpace(solver="pca", latent_dim=2, **FAST),
        AttributionSpace(solver="pca", latent_dim=0.9, cv=None, **FAST),
        ScoreAveragingClassifier(),
        AttributionClassifier(learning_rate=1e-2, **FAST),
        AttributionClassifier(hidden_layer_sizes=(), learning_rate=1e-2, **FAST),
        OneClassDetector(
            AttributionSpace(hidden_layer_sizes=(16,), latent_dim=4, max_epochs=10,
                             device="cpu"),
            cv=2, random_state=0,
        ),
    ],
    expected_failed_checks=_expected_failed_checks,
)
def test_sklearn_compatible_estimator(estimator, check):
    _run_quietly(check, estimator)


# Default architecture (hidden_layer_sizes=(512,), latent_dim=128 for the
# attribution space, (64,) for the classifier); only fewer epochs.
FEW_EPOCHS = dict(max_epochs=20, random_state=0)


@parametrize_with_checks(
    [
        AttributionSpace(source_class=1, **FEW_EPOCHS),
        AttributionSpace(source_class=1, cv=None, **FEW_EPOCHS),
        AttributionClassifier(random_state=0),
    ],
    expected_failed_checks=_expected_failed_checks,
)
def test_sklearn_compatible_at_default_architecture(estimator, check):
    _run_quietly(check, estimator)


def _expected_failed_checks_at_defaults(estimator):
    failures = _expected_failed_checks(estimator)
    if isinstance(estimator, OneClassDetector):
        failures["check_classifiers_train"] = IDENTITY_REASON
    return failures


# The default parameters (~1 min; the classifier is already at its defaults
# above). source_class=1 because the checks' y often lacks a 0, so more checks
# really run; source_class=0 differs only in the NO_SOURCE_ROW failures.
@pytest.mark.slow
@parametrize_with_checks(
    [
        AttributionSpace(source_class=1, random_state=0),
        OneClassDetector(random_state=0),
    ],
    expected_failed_checks=_expected_failed_checks_at_defaults,
)
def test_sklearn_compatible_at_default_parameters(estimator, check):
    _run_quietly(check, estimator)
