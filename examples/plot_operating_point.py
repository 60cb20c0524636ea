"""
===========================================================
Choosing an operating point: at most 5% of MY reals flagged
===========================================================

A detector trained on one generator and tested on another often calls many
real photos fake at its default threshold (probability 0.5). What a
trust-and-safety team needs instead is a guarantee on *its own* real images:
"at most 1 in 20 of our real photos is flagged".

:class:`~skacd.ConformalThresholdClassifier` sets such a threshold from a
folder of known-real images alone (no generated image needed): the conformal
quantile of their scores (:func:`~skacd.calibration.conformal_threshold`).
For a new real image from the same distribution, the probability of being
called fake is then at most the target. Each image also gets a p-value,
``p_real``: the share of the calibration reals that score at least as fake.

**Data: SYNTHETIC features, no images and no encoder.**
:func:`~skacd.datasets.make_generator_manifolds` draws stand-ins for encoder
features of real images and of two generators; the detector is trained on
one and tested on the other. With images, put a featurizer in front and
calibrate on image paths, or run ``skacd calibrate``.
"""

# %%
# A detector trained on one generator
# -----------------------------------
#
# Real images and generator ``gen0`` train the detector; ``gen1`` is never
# seen. The training set has four generated images for each real one (as when
# fakes are cheap to make and real photos are not), which pushes the scores of
# real images up. A separate set of known-real images is kept for
# calibration, and another for testing. ``SKACD_EXAMPLES_FAST=1`` (set by the
# test suite) shrinks the data.

import os
import warnings

import matplotlib.pyplot as plt
import numpy as np
from scipy.stats import binomtest
from sklearn.exceptions import ConvergenceWarning
from sklearn.pipeline import make_pipeline

from skacd import AttributionClassifier, AttributionSpace, ConformalThresholdClassifier
from skacd.datasets import make_generator_manifolds

FAST = os.environ.get("SKACD_EXAMPLES_FAST") == "1"
n_samples = 3000 if FAST else 6000

X, y, groups = make_generator_manifolds(
    n_samples=n_samples, n_features=64, n_generators=2, random_state=0,
    return_groups=True,
)
print(f"Data: SYNTHETIC features, X.shape = {X.shape}")
rng = np.random.RandomState(0)
real = rng.permutation(np.flatnonzero(y == 0))
train_real, cal_real, test_real = np.array_split(real, 3)
gen0 = np.flatnonzero((y == 1) & (groups == "gen0"))
gen1 = np.flatnonzero((y == 1) & (groups == "gen1"))
train = np.concatenate([train_real[: gen0.size // 4], gen0])

with warnings.catch_warnings():
    warnings.simplefilter("ignore", ConvergenceWarning)
    detector = make_pipeline(
        AttributionSpace(latent_dim=16, max_epochs=60, random_state=0),
        AttributionClassifier(max_epochs=100, learning_rate=1e-3, random_state=0),
    ).fit(X[train], y[train])

# %%
# The default threshold on the unseen generator
# ---------------------------------------------
#
# At probability 0.5 the false-positive rate on new real images is whatever
# the training happened to produce; nothing bounds it.

proba_real = detector.predict_proba(X[test_real])[:, 1]
proba_fake = detector.predict_proba(X[gen1])[:, 1]
print(f"at 0.5: FPR on new reals {np.mean(proba_real > 0.5):.1%}, "
      f"fakes of the unseen generator caught {np.mean(proba_fake > 0.5):.1%}")

# %%
# Calibrate on known-real images only
# -----------------------------------
#
# ``fit`` sees the calibration reals and nothing else; the detector itself is
# not refitted. The threshold is the ``ceil((n + 1) * 0.95)``-th smallest of
# their scores.

calibrated = ConformalThresholdClassifier(detector, target_fpr=0.05)
calibrated.fit(X[cal_real])
print(f"calibrated threshold: prob_fake > {calibrated.threshold_:.4f} "
      f"({calibrated.n_calibration_samples_} known-real images)")

flagged = calibrated.predict(X[test_real]) == 1
ci = binomtest(int(flagged.sum()), flagged.size).proportion_ci(method="exact")
caught = np.mean(calibrated.predict(X[gen1]) == 1)
print(f"calibrated: FPR on new reals {flagged.mean():.1%} (95% CI "
      f"{ci.low:.1%}-{ci.high:.1%}; target 5%), fakes caught {caught:.1%}")

# %%
# Score histograms, with both thresholds
# --------------------------------------
#
# The calibrated threshold sits where 5% of the calibration reals lie above
# it; new reals from the same distribution fall above it about as often.

fig, ax = plt.subplots(figsize=(7, 3.8))
bins = np.linspace(0, 1, 41)
ax.hist(detector.predict_proba(X[cal_real])[:, 1], bins=bins, alpha=0.5,
        label="calibration reals", color="tab:green")
ax.hist(proba_real, bins=bins, alpha=0.5, label="new reals", color="tab:blue")
ax.hist(proba_fake, bins=bins, alpha=0.5, label="unseen generator", color="tab:red")
ax.axvline(0.5, color="grey", linestyle=":", label="default threshold 0.5")
ax.axvline(calibrated.threshold_, color="black", linestyle="--",
           label=f"calibrated, target FPR 5% ({calibrated.threshold_:.3f})")
ax.set_xlabel("prob_fake")
ax.set_ylabel("images")
ax.set_yscale("log")
ax.legend(fontsize=8, loc="upper center")
ax.set_title("Threshold set on known-real images")
fig.tight_layout()

# %%
# Per-image p-values
# ------------------
#
# ``p_real`` is small for images unlike the calibration reals. On new real
# images it is uniform (every value equally likely), so flagging at
# ``p_real <= 0.05`` is exactly the calibrated threshold.

p_new_real = calibrated.p_real(X[test_real])
p_fake = calibrated.p_real(X[gen1])
assert np.array_equal(p_new_real <= 0.05, flagged)
fig, ax = plt.subplots(figsize=(7, 3))
ax.hist(p_new_real, bins=20, range=(0, 1), alpha=0.6, label="new reals",
        color="tab:blue", density=True)
ax.hist(p_fake, bins=20, range=(0, 1), alpha=0.6, label="unseen generator",
        color="tab:red", density=True)
ax.axvline(0.05, color="black", linestyle="--", label="0.05")
ax.set_xlabel("p_real")
ax.set_ylabel("density")
ax.legend(fontsize=8)
fig.tight_layout()
plt.show()
