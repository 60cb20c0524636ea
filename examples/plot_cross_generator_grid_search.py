"""
=================================================================
Choosing the source class and the bottleneck on unseen generators
=================================================================

Which class should the attribution space model, the real photos or the
generated images, and how narrow should its bottleneck be? Cross-validation
answers, provided it validates on generators the model did not see:
:class:`~skacd.model_selection.CrossGeneratorSplit` trains on one generator
and tests on the others, and scikit-learn's
:class:`~sklearn.model_selection.GridSearchCV` does the rest.

**Data: SYNTHETIC features, no images and no encoder**
(:func:`~skacd.datasets.make_generator_manifolds`), so that the search runs
in well under a minute on a CPU. With images, featurize once
(``X = TimmFeaturizer("efficientnet_lite2").fit_transform(paths)``) and
search on ``X``: the frozen encoder learns nothing, so it need not be inside
the search.
"""

# %%
# Three generators, real images spread over them
# ----------------------------------------------
#
# ``groups`` names the generator of each fake row; the real rows are spread
# over the same three groups, as in ForenSynths, where each generator comes
# with its own real photos.

import os
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline

from skacd import AttributionClassifier, AttributionSpace
from skacd.datasets import make_generator_manifolds
from skacd.metrics import detection_report
from skacd.model_selection import CrossGeneratorSplit

FAST = os.environ.get("SKACD_EXAMPLES_FAST") == "1"

X, y, groups = make_generator_manifolds(
    n_samples=600 if FAST else 900, n_features=64, n_generators=3,
    random_state=1, return_groups=True,
)
print(f"Data: SYNTHETIC features, X.shape = {X.shape}")
for g in sorted(set(groups)):
    print(f"  group {g}: {np.sum((groups == g) & (y == 0))} real, "
          f"{np.sum((groups == g) & (y == 1))} fake")

# %%
# Train on one generator, test on the others
# ------------------------------------------
#
# With its defaults, :class:`~skacd.model_selection.CrossGeneratorSplit`
# makes one split per group: train on that group's rows, test on the rows
# of every other group. ``test="each"`` would instead score each unseen
# generator separately.

cv = CrossGeneratorSplit()
for k, (train_idx, test_idx) in enumerate(cv.split(X, y, groups)):
    print(f"split {k}: train on {sorted(set(groups[train_idx]))}, "
          f"test on {sorted(set(groups[test_idx]))}")

# %%
# The grid
# --------
#
# Two source classes (0: the real images, 1: the training generator's
# images) and two bottleneck widths: four candidates, each fitted once per
# split. ``AttributionSpace`` is reached through the pipeline's step name,
# ``attributionspace__``. Scores: average precision and accuracy on the
# unseen generators. ``refit=False``: refitting the best candidate on all of
# ``X`` would train it on the test generators too.

pipe = make_pipeline(
    AttributionSpace(
        hidden_layer_sizes=(64,), learning_rate=1e-3, batch_size=64,
        max_epochs=15 if FAST else 40, cv=3, random_state=0,
    ),
    AttributionClassifier(
        learning_rate=1e-3, max_epochs=40 if FAST else 80, random_state=0
    ),
)
param_grid = {
    "attributionspace__source_class": [0, 1],
    "attributionspace__latent_dim": [4, 16],
}
search = GridSearchCV(
    pipe,
    param_grid,
    cv=cv,
    scoring={"ap": "average_precision", "acc": "accuracy"},
    refit=False,
)
with warnings.catch_warnings():
    # Few epochs to stay fast: training stops at max_epochs.
    warnings.simplefilter("ignore", ConvergenceWarning)
    search.fit(X, y, groups=groups)

results = search.cv_results_
print("source_class  latent_dim  AP (unseen)    ACC (unseen)")
for i, params in enumerate(results["params"]):
    ap, ap_std = results["mean_test_ap"][i], results["std_test_ap"][i]
    acc, acc_std = results["mean_test_acc"][i], results["std_test_acc"][i]
    print(
        f"{params['attributionspace__source_class']:>12}  "
        f"{params['attributionspace__latent_dim']:>10}  "
        f"{ap:.3f} ± {ap_std:.3f}  {acc:.3f} ± {acc_std:.3f}"
    )

# %%
# Each bar is the mean over the three splits, each error bar the spread
# across them, i.e. across which generator was the training source.

source_names = {0: "real", 1: "fake"}
labels = [
    f"source={source_names[p['attributionspace__source_class']]}\n"
    f"latent={p['attributionspace__latent_dim']}"
    for p in results["params"]
]
fig, axes = plt.subplots(1, 2, figsize=(9, 3.6), sharey=True)
metrics = [("ap", "Average precision"), ("acc", "Accuracy")]
for ax, (key, title) in zip(axes, metrics):
    ax.bar(
        np.arange(len(labels)), results[f"mean_test_{key}"],
        yerr=results[f"std_test_{key}"], capsize=4,
        color=["C0" if p["attributionspace__source_class"] == 0 else "C1"
               for p in results["params"]],
    )
    ax.set_xticks(np.arange(len(labels)), labels, fontsize=8)
    ax.set_title(f"{title} on unseen generators")
    ax.axhline(0.5, color="0.5", linewidth=0.8, linestyle="--")
    ax.set_ylim(0, 1.05)
fig.suptitle("SYNTHETIC features: GridSearchCV with CrossGeneratorSplit")
fig.tight_layout()
plt.show()

# %%
# The final model
# ---------------
#
# Fit the best candidate on one source generator only, as a deployed
# detector would be, and report per unseen generator.

best = results["params"][int(np.argmax(results["mean_test_ap"]))]
print("best by AP on unseen generators:", best)
source = groups == "gen0"
final = pipe.set_params(**best)
with warnings.catch_warnings():
    warnings.simplefilter("ignore", ConvergenceWarning)
    final.fit(X[source], y[source])
print(detection_report(
    y[~source], final.predict_proba(X[~source])[:, 1], groups[~source]
).to_text(digits=3))
