"""The design snippet, end to end on images: featurizer, attribution space, head."""

import warnings

import numpy as np
import pytest
from numpy.testing import assert_array_equal
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline

from skacd import (
    AttributionClassifier,
    AttributionSpace,
    CLIPFeaturizer,
    TimmFeaturizer,
)

SMALL = dict(
    attributionspace__max_epochs=15,
    attributionspace__cv=2,
    attributionclassifier__max_epochs=30,
    attributionclassifier__learning_rate=1e-2,
    attributionspace__random_state=0,
    attributionclassifier__random_state=0,
)


@pytest.fixture(autouse=True)
def _quiet_convergence():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


def _design_pipeline(featurizer):
    pipe = make_pipeline(featurizer, AttributionSpace(), AttributionClassifier())
    return pipe.set_params(**SMALL)


def test_design_snippet_with_random_clip(image_folder):
    _, image_paths, y, _ = image_folder
    pipe = _design_pipeline(
        CLIPFeaturizer(pretrained=None, model_name="skacd-tiny-ViT", num_workers=0)
    )
    pipe.fit(image_paths, y)
    p_fake = pipe.predict_proba(image_paths)[:, 1]
    assert p_fake.shape == (len(image_paths),)
    assert np.all((p_fake >= 0) & (p_fake <= 1))

    search = GridSearchCV(
        pipe,
        {
            "attributionspace__source_class": [0, 1],
            "attributionspace__latent_dim": [64, 128],
        },
        cv=2,
    ).fit(image_paths, y)
    assert len(search.cv_results_["params"]) == 4
    assert search.best_params_["attributionspace__source_class"] in (0, 1)
    assert search.predict_proba(image_paths[:3]).shape == (3, 2)


def test_same_random_state_same_predictions(image_folder):
    _, image_paths, y, _ = image_folder

    def fitted():
        featurizer = CLIPFeaturizer("skacd-tiny-ViT", pretrained=None, num_workers=0)
        return _design_pipeline(featurizer).fit(image_paths, y)

    assert_array_equal(
        fitted().predict_proba(image_paths), fitted().predict_proba(image_paths)
    )


def test_design_snippet_with_efficientnet_lite(image_folder):
    _, image_paths, y, _ = image_folder
    pipe = _design_pipeline(TimmFeaturizer("efficientnet_lite0", num_workers=0))
    scores = cross_val_score(pipe, image_paths, y, cv=2, scoring="roc_auc")
    # The two made image families (smooth vs. periodic patterns) are easy for
    # real ImageNet features: a broken encoder or pipeline gives ~0.5.
    assert scores.mean() > 0.9
