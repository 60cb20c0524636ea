"""
====================================================================
Why attributions separate the classes: Fisher's ratio, UMAP, violins
====================================================================

The paper's Fig. 2 explains why the detector generalises: in the
attribution space, real and generated images are further apart, relative
to their spread, than in the raw feature space, and images of unseen
generators move away from the real ones too. This example reproduces the
three views with :mod:`skacd.diagnostics`:

- :func:`~skacd.diagnostics.separation_report`: inter-class distance,
  intra-class variance and Fisher's ratio, overall and per generator
  (Fig. 2e);
- :class:`~skacd.diagnostics.EmbeddingDisplay`: UMAP of the raw features and
  of the attributions (Fig. 2a-c);
- :class:`~skacd.diagnostics.DeviationViolinDisplay`: the mean attribution
  per generator and class (Fig. 2d).

**Data: SYNTHETIC features, no images and no encoder**
(:func:`~skacd.datasets.make_generator_manifolds`). The same calls work on
real features, e.g. the output of
``TimmFeaturizer("efficientnet_lite2").fit_transform(paths)``.
"""

# %%
# Fit the attribution space on real images
# ----------------------------------------
#
# As in the quick start: the attribution space models the real rows of the
# training half; the diagnostics look at the held-out half, where ``gen1``
# and ``gen2`` are generators the model never saw.

import os
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.exceptions import ConvergenceWarning

from skacd import AttributionSpace
from skacd.datasets import make_generator_manifolds
from skacd.diagnostics import (
    DeviationViolinDisplay,
    EmbeddingDisplay,
    fisher_ratio,
    separation_report,
)

FAST = os.environ.get("SKACD_EXAMPLES_FAST") == "1"
n_samples = 600 if FAST else 1200

X, y, groups = make_generator_manifolds(
    n_samples=n_samples, n_features=64, n_generators=3, random_state=0,
    return_groups=True,
)
rows = np.arange(n_samples)
train = (rows % 2 == 0) & ((y == 0) | (groups == "gen0"))
test = rows % 2 == 1

space = AttributionSpace(
    source_class=0, hidden_layer_sizes=(64,), latent_dim=8, learning_rate=1e-3,
    batch_size=64, max_epochs=30 if FAST else 60, cv=None, random_state=0,
)
with warnings.catch_warnings():
    # Few epochs, on purpose: training stops at max_epochs.
    warnings.simplefilter("ignore", ConvergenceWarning)
    space.fit(X[train], y[train])

X_test, groups_test = X[test], groups[test]
labels_test = np.where(y[test] == 1, "fake", "real")
A_test = space.transform(X_test)
print(f"Data: SYNTHETIC features; test rows: {len(X_test)}, "
      f"attributions: {A_test.shape}")

# %%
# Fisher's ratio: raw features against attributions
# --------------------------------------------------
#
# :math:`F = D / S`, the squared distance between the class means over the
# sum of the classes' variances (trace of the covariance). It does not change
# when the features are multiplied by a constant, so the two spaces can be
# compared directly, although attributions are much smaller numbers.

print(f"Fisher's ratio, raw features: {fisher_ratio(X_test, labels_test):.3f}")
print(f"Fisher's ratio, attributions: {fisher_ratio(A_test, labels_test):.3f}")

# %%
# Per generator: each group holds its own real and fake rows, so each row of
# the report contrasts a generator's images with the real images of the same
# group.

report_raw = separation_report(X_test, labels_test, groups_test)
report_attr = separation_report(A_test, labels_test, groups_test)
print("Raw features\n" + str(report_raw))
print("\nAttributions\n" + str(report_attr))

# %%

def per_group_fisher(report):
    rows = report.to_dict()["per_group"]
    return {row["group"]: row["fisher_ratio"] for row in rows}


group_names = sorted(per_group_fisher(report_raw))
raw_f = [per_group_fisher(report_raw)[g] for g in group_names]
attr_f = [per_group_fisher(report_attr)[g] for g in group_names]
fig, ax = plt.subplots(figsize=(6, 3.4))
positions = np.arange(len(group_names))
ax.bar(positions - 0.2, raw_f, 0.4, label="raw features")
ax.bar(positions + 0.2, attr_f, 0.4, label="attributions")
ax.set_xticks(positions, [
    f"{g}\n(seen)" if g == "gen0" else f"{g}\n(unseen)" for g in group_names
])
ax.set_ylabel("Fisher's ratio F = D / S")
ax.set_title("SYNTHETIC features: real vs fake separation per generator")
ax.legend()
fig.tight_layout()
plt.show()

# %%
# UMAP of raw features and attributions
# -------------------------------------
#
# ``from_estimator`` runs UMAP once (seeded, so the layout is reproducible)
# and draws into the given axes. With ``transform=False`` it embeds the raw
# features, with ``transform=True`` the attributions ``space.transform(X)``.
# Colours are classes, markers generators.

fig, axes = plt.subplots(1, 2, figsize=(10, 4.4))
umap_args = dict(n_neighbors=15, random_state=0, s=10)
raw_view = EmbeddingDisplay.from_estimator(
    space, X_test, labels_test, groups=groups_test, transform=False,
    ax=axes[0], name="Raw features", **umap_args,
)
attr_view = EmbeddingDisplay.from_estimator(
    space, X_test, labels_test, groups=groups_test, ax=axes[1],
    name="Attributions |x - D(E(x))|", **umap_args,
)
fig.suptitle("SYNTHETIC features: UMAP, attribution space fitted on real rows")
fig.tight_layout()
plt.show()

# %%
# The displays keep what they computed: ``attr_view.embedding_`` holds the 2-D
# coordinates, and ``plot`` redraws without rerunning UMAP, here with other
# colours.

fig, ax = plt.subplots(figsize=(5, 4.4))
attr_view.plot(ax=ax, colors={"real": "tab:green", "fake": "tab:red"})
print(attr_view.embedding_.shape)
plt.show()

# %%
# Deviation per generator
# -----------------------
#
# The deviation of a row is its mean attribution, ``-space.score_samples(X)``.
# Real rows stay low in every group; the fakes of every generator, seen or
# not, lie above them.

fig, ax = plt.subplots(figsize=(6, 3.6))
DeviationViolinDisplay.from_estimator(
    space, X_test, labels_test, groups=groups_test, ax=ax,
    name="SYNTHETIC features: deviation per generator",
)
plt.show()

# sphinx_gallery_thumbnail_number = 2
