"""The cross-generator benchmark run."""

import os
import sys
import time
import warnings
from collections import namedtuple
from datetime import datetime, timezone

import numpy as np

from ._environment import _machine, _versions
from ._featurization import (
    _configure_featurizer,
    _featurize_sets,
    _open_cache,
    _sweep_values,
    _transform_for,
)
from ._methods import (
    _METHOD_NOTES,
    HEAD_METHODS,
    METHODS,
    _check_methods,
    _is_timm_spec,
    _space_of_attribution_real,
    make_method,
)
from ._results import CrossGeneratorResult
from ._scoring import _records, _report
from ._summary import _summarise


def _fit_methods(methods, X, y, seed, *, device, max_epochs, log, label="",
                 feature_names=None, solver="adam"):
    """Fit every method for one seed; return models, seconds and warnings."""
    models, seconds, caught = {}, {}, {}
    for name in methods:
        if name == "deviation" and "attribution_real" in models:
            # The attribution space of attribution_real *is* the source-real
            # space, fitted on all real rows with the same seed.
            models[name] = _space_of_attribution_real(models["attribution_real"])
            seconds[name], caught[name] = 0.0, []
            continue
        estimator = make_method(
            name, seed, device=device, max_epochs=max_epochs,
            feature_names=feature_names, solver=solver,
        )
        start = time.perf_counter()
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            estimator.fit(X, y)
        seconds[name] = round(time.perf_counter() - start, 3)
        caught[name] = sorted({f"{w.category.__name__}: {w.message}" for w in record})
        models[name] = estimator
    log(
        f"  {label}seed {seed}: fitted "
        + ", ".join(f"{m} {seconds[m]:.1f} s" for m in methods)
        + (
            f" ({sum(len(v) for v in caught.values())} distinct warning(s), "
            "kept in the JSON)"
            if any(caught.values())
            else ""
        )
    )
    return models, seconds, caught


def _calibration_split(y, fraction, seed):
    """(fit rows, held-out real rows) for the calibrated threshold."""
    rows = np.arange(y.size)
    real = np.flatnonzero(y == 0)
    n_cal = int(round(fraction * real.size))
    if n_cal == 0:
        return rows, rows[:0]
    cal = np.sort(np.random.RandomState(seed).choice(real, n_cal, replace=False))
    return np.setdiff1d(rows, cal), cal


def _subsample(y, n_per_class, seed):
    rng = np.random.RandomState(seed)
    keep = []
    for cls in np.unique(y):
        rows = np.flatnonzero(y == cls)
        if n_per_class < rows.size:
            rows = np.sort(rng.choice(rows, size=n_per_class, replace=False))
        keep.append(rows)
    return np.sort(np.concatenate(keep))


def cross_generator_benchmark(
    train,
    test,
    *,
    encoder="efficientnet_lite2",
    seeds=(0, 1, 2),
    methods="auto",
    cache="default",
    jpeg_qualities=(),
    blur_sigmas=(),
    resize_factors=(),
    train_sizes=(),
    cost_images=0,
    layers=None,
    pooling=None,
    solver="adam",
    max_epochs=None,
    device="auto",
    batch_size=32,
    num_workers="auto",
    torch_threads=None,
    verbose=1,
    calibration_fraction=0.0,
):
    """Train on one source, test on every group of the test roots, side by side.

    Featurizes the training and test images once (through the feature cache),
    then, for every seed, fits each method on the same training features and
    reports AP, ACC, real ACC and fake ACC per test group and their mean
    over groups, with mean ± std over seeds.

    Parameters
    ----------
    train : str, path-like or list of them
        The training folder(s), read with
        :func:`~skacd.datasets.load_image_folder`; all their images form the
        one training source.
    test : str, path-like or list of them
        The test folder(s); every group of every root is a test group
        (several roots name their groups by relative path, e.g.
        ``"forensynths/cyclegan"``).
    encoder : str or featurizer, default="efficientnet_lite2"
        The frozen encoder; see :func:`make_featurizer`.
    seeds : sequence of int, default=(0, 1, 2)
        ``random_state`` of every fit (and of the training-set subsamples).
    methods : "auto" or sequence of str, default="auto"
        Any of :data:`METHODS`, reported in that order. ``"auto"``: all of
        them for a timm CNN (whose stages 0-3 the early-stage methods read),
        the head methods (``linear_probe``, ``attribution_real``,
        ``attribution_fake``, ``deviation``) for other encoders.
    cache : "default", str, path-like, FeatureCache or None, default="default"
        The persistent feature cache: ``"default"`` is
        :func:`default_cache_dir`, ``None`` disables it.
    jpeg_qualities : sequence of int, default=()
        JPEG re-compression qualities applied to the *test* images (100 is
        a real re-compression at quality 100, not the original file).
    blur_sigmas : sequence of float, default=()
        Gaussian blur sigmas (pixels) applied to the *test* images; 0 reuses
        the clean features.
    resize_factors : sequence of float, default=()
        Bicubic rescaling factors of the *test* images' sides
        (:class:`~skacd.featurizers.Resize`; 0.5 halves them); 1 reuses the
        clean features.
    train_sizes : sequence of int, default=()
        Training images *per class* for the training-set-size curve; each
        seed draws its own subsample (the whole class when larger).
    cost_images : int, default=0
        When positive and the featurizer reads intermediate layers, time the
        featurization of this many test images (no cache) for each
        configuration the methods use (embedding only, stages 0-3 pruned,
        both); ``featurization["cost"]`` and the Markdown report give the
        images per second.
    layers : list of int and/or "embedding", or None, default=None
        The featurizer's ``layers`` (for an encoder given by name); None reads
        stages 0-3 and the embedding when a method needs them, else the
        embedding alone.
    pooling : str or None, default=None
        The featurizer's ``pooling``; None keeps its default.
    solver : {"adam", "pca"}, default="adam"
        The attribution space of ``attribution_real``, ``attribution_fake``
        and ``deviation``.
    max_epochs : int or None, default=None
        Overrides ``max_epochs`` of the torch estimators (for quick runs);
        None keeps the defaults.
    device : {"auto", "cpu", "cuda"}, default="auto"
        Device of the featurizer built from a string and of the torch
        estimators.
    batch_size : int, default=32
        Featurizer batch size (for a featurizer built from a string).
    num_workers : int or "auto", default="auto"
        Featurizer DataLoader workers (for a featurizer built from a string).
    torch_threads : int or None, default=None
        ``torch.set_num_threads`` for the run (restored afterwards); None
        keeps the current setting. On a shared, loaded machine 1 avoids
        oversubscription, which slows the small torch fits many-fold.
    verbose : int, default=1
        Print progress to stderr when positive.
    calibration_fraction : float in [0, 1), default=0.0
        Share of the real training images held out of every fit (drawn per
        seed); their scores set the threshold of ``acc_cal`` /
        ``real_acc_cal``, calibrated at a 5% target FPR with no test label.
        0 fits on every training image and leaves those metrics undefined.

        .. versionadded:: 0.1

    Returns
    -------
    result : CrossGeneratorResult
        Configuration, featurization statistics, per-seed reports, the
        summary over seeds and the sweep records; see
        :meth:`CrossGeneratorResult.to_markdown`, ``to_json`` and ``write``.

    Raises
    ------
    ValueError
        For an unknown method or encoder, no seed, a training set without
        both classes, or a test image that is also a training image.

    See Also
    --------
    skacd.metrics.detection_report : The per-group metrics.
    skacd.diagnostics.RobustnessCurveDisplay : Plots ``result.records``.

    Notes
    -----
    Hyper-parameters are the estimators' defaults for every method (the
    linear probe: standardised features, ``LogisticRegression(C=1.0)``);
    nothing is tuned, least of all per test group. ``deviation`` reuses the
    attribution space of ``attribution_real`` when both are run (it is the
    same model: same seed, fitted on all real training rows).

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> import numpy as np
    >>> from PIL import Image
    >>> from skacd.evaluation import cross_generator_benchmark
    >>> tmp = Path(tempfile.mkdtemp())
    >>> rng = np.random.RandomState(0)
    >>> for split, n in [("train", 12), ("test/gan", 6)]:
    ...     for cls, level in [("0_real", 40), ("1_fake", 200)]:
    ...         (tmp / split / cls).mkdir(parents=True)
    ...         for i in range(n):
    ...             pixels = rng.randint(level - 30, level + 30, (32, 32, 3))
    ...             Image.fromarray(pixels.astype(np.uint8)).save(
    ...                 tmp / split / cls / f"{i}.png")
    >>> result = cross_generator_benchmark(
    ...     tmp / "train", tmp / "test", encoder="clip:skacd-tiny-ViT:none",
    ...     seeds=[0], cache=None, max_epochs=5, num_workers=0, torch_threads=1,
    ...     verbose=0)
    >>> result
    <CrossGeneratorResult: 4 methods x 1 groups x 1 seeds, 0 sweep records>
    >>> sorted(result.summary["linear_probe"])
    ['gan', 'mean']
    """
    import torch

    previous_threads = torch.get_num_threads()
    if torch_threads is not None:
        if int(torch_threads) < 1:
            raise ValueError(f"torch_threads must be >= 1; got {torch_threads!r}.")
        torch.set_num_threads(int(torch_threads))
    try:
        return _benchmark(
            train, test, encoder=encoder, seeds=seeds, methods=methods, cache=cache,
            jpeg_qualities=jpeg_qualities, blur_sigmas=blur_sigmas,
            resize_factors=resize_factors,
            train_sizes=train_sizes, cost_images=cost_images, layers=layers,
            pooling=pooling, solver=solver, max_epochs=max_epochs, device=device,
            batch_size=batch_size, num_workers=num_workers, verbose=verbose,
            calibration_fraction=calibration_fraction,
        )
    finally:
        torch.set_num_threads(previous_threads)


def _benchmark(train, test, *, encoder, seeds, methods, cache, jpeg_qualities,
               blur_sigmas, train_sizes, cost_images, layers, pooling, solver,
               max_epochs, device, batch_size, num_workers, verbose,
               calibration_fraction=0.0, resize_factors=()):
    """The run, step by step: check, load, featurize, fit per seed, sweep,
    summarise, describe."""
    from ..featurizers import to_spec

    run_start = time.perf_counter()
    started = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    load_start = _load_average()
    log = (lambda msg: print(msg, file=sys.stderr, flush=True)) if verbose else (
        lambda msg: None
    )
    if isinstance(methods, str) and methods == "auto":
        methods = METHODS if _is_timm_spec(encoder) else HEAD_METHODS
    methods = _check_methods(methods)
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("seeds is empty: give at least one seed.")
    train_sizes = [int(n) for n in train_sizes]
    if any(n < 1 for n in train_sizes):
        raise ValueError(f"train_sizes must be positive ints; got {train_sizes}.")
    if not 0 <= calibration_fraction < 1:
        raise ValueError(
            f"calibration_fraction must be in [0, 1); got {calibration_fraction!r}."
        )
    sweeps = _sweep_values(jpeg_qualities, blur_sigmas, resize_factors)
    for param, value in sweeps:  # a bad value fails now, not after featurizing
        _transform_for(param, value)
    data = _load_data(train, test)

    cache_obj = _open_cache(cache)
    featurizer = _configure_featurizer(
        encoder, methods, cache_obj, layers=layers, pooling=pooling, device=device,
        batch_size=batch_size, num_workers=num_workers,
    )
    encoder_spec = to_spec(featurizer)
    log(f"skacd evaluate: encoder {encoder_spec}, cache "
        f"{cache_obj.directory if cache_obj is not None else 'disabled'}")
    features = _featurize_sets(
        featurizer, cache_obj, data.train_paths, data.test_paths, methods, sweeps,
        cost_images, log,
    )

    log("fitting:")
    encoder_name = features.identity.get("model_name", encoder_spec)
    fit = {"device": device, "max_epochs": max_epochs, "log": log,
           "feature_names": features.feature_names, "solver": solver}
    runs, records, group_records, fit_totals = _fit_per_seed(
        methods, seeds, data, features, calibration_fraction, encoder_name, fit
    )
    size_log, size_records, size_group_records, size_totals = _train_size_curve(
        methods, seeds, train_sizes, data, features.X_train, features.X_test,
        encoder_name, fit, log,
    )
    records += size_records
    group_records += size_group_records
    fit_seconds = 0.0
    for seconds in fit_totals + size_totals:
        fit_seconds += seconds
    summary = _summarise(methods, runs, data.test_groups)

    config = _run_config(
        started=started, load_start=load_start, encoder_spec=encoder_spec,
        featurizer=featurizer, identity=features.identity, data=data, seeds=seeds,
        methods=methods, max_epochs=max_epochs, device=device,
        calibration_fraction=calibration_fraction, jpeg_qualities=jpeg_qualities,
        blur_sigmas=blur_sigmas, resize_factors=resize_factors,
        train_sizes=train_sizes, size_log=size_log, cache_obj=cache_obj,
    )
    featurization = features.featurization
    timings = {
        "featurization_seconds": round(
            featurization["clean"]["seconds"] + featurization["perturbed"]["seconds"], 3
        ),
        "fit_seconds": round(fit_seconds, 3),
        "total_seconds": round(time.perf_counter() - run_start, 3),
    }
    return CrossGeneratorResult(
        config=config,
        featurization=featurization,
        runs=runs,
        summary=summary,
        records=records,
        group_records=group_records,
        timings=timings,
    )


def _load_average():
    if not hasattr(os, "getloadavg"):
        return None
    return [round(x, 2) for x in os.getloadavg()]


#: The labelled images of one run.
_Data = namedtuple(
    "_Data",
    ["train_roots", "test_roots", "train_paths", "test_paths", "y_train", "y_test",
     "g_test", "test_groups"],
)


def _load_data(train, test):
    """The training and test folders as a :class:`_Data`, checked: both classes
    to train on, no test image that is also a training image."""
    from ..datasets import load_image_folder

    train_roots = list(train) if isinstance(train, (list, tuple)) else [train]
    test_roots = list(test) if isinstance(test, (list, tuple)) else [test]
    train_roots = [os.fspath(r) for r in train_roots]
    test_roots = [os.fspath(r) for r in test_roots]

    train_data = load_image_folder(
        train_roots if len(train_roots) > 1 else train_roots[0]
    )
    test_data = load_image_folder(test_roots if len(test_roots) > 1 else test_roots[0])
    y_train = np.asarray(train_data.target)
    y_test = np.asarray(test_data.target)
    g_test = np.asarray(test_data.groups)
    if np.unique(y_train).size != 2:
        raise ValueError(
            f"The training folder(s) {train_roots} must hold both real and fake "
            f"images; found only target {np.unique(y_train).tolist()}."
        )
    shared = {os.path.realpath(p) for p in train_data.paths} & {
        os.path.realpath(p) for p in test_data.paths
    }
    if shared:
        raise ValueError(
            f"{len(shared)} test image(s) are also training images, e.g. "
            f"{sorted(shared)[0]!r}: the test roots must not overlap the training "
            "roots."
        )
    test_groups = list(dict.fromkeys(g_test.tolist()))  # load order (sorted)
    return _Data(train_roots, test_roots, train_data.paths, test_data.paths,
                 y_train, y_test, g_test, test_groups)


def _fit_per_seed(methods, seeds, data, features, calibration_fraction,
                  encoder_name, fit):
    """Fit every method per seed; score it on the clean and perturbed test sets.

    Returns the runs, the sweep records (mean over groups, and per group) and
    the seconds spent fitting, per seed.
    """
    X_train, X_test = features.X_train, features.X_test
    y_train, y_test, g_test = data.y_train, data.y_test, data.g_test
    runs, records, group_records, fit_totals = [], [], [], []
    for seed in seeds:
        fit_rows, cal_rows = _calibration_split(y_train, calibration_fraction, seed)
        models, seconds, caught = _fit_methods(
            methods, X_train[fit_rows], y_train[fit_rows], seed, **fit
        )
        fit_totals.append(sum(seconds.values()))
        X_cal = X_train[cal_rows] if cal_rows.size else None
        for name in methods:
            report, scores = _report(
                name, models[name], X_test, y_test, g_test, keep_scores=True,
                X_cal=X_cal,
            )
            runs.append(
                {
                    "seed": seed,
                    "method": name,
                    "fit_seconds": seconds[name],
                    "warnings": caught[name],
                    "report": report,
                    "scores": scores,
                }
            )
            for param, value, X_p in features.test_sets:
                rep = _report(name, models[name], X_p, y_test, g_test)
                mean, per_group = _records(rep, name, param, value, seed, encoder_name)
                records.append(mean)
                group_records.extend(per_group)
    return runs, records, group_records, fit_totals


def _train_size_curve(methods, seeds, train_sizes, data, X_train, X_test,
                      encoder_name, fit, log):
    """The training-set-size sweep: fits on per-class subsamples, per seed.

    Returns the log of each fit, the sweep records (mean over groups, and per
    group) and the seconds spent fitting, per fit.
    """
    y_train, y_test, g_test = data.y_train, data.y_test, data.g_test
    size_log, records, group_records, fit_totals = [], [], [], []
    if train_sizes:
        log("training-set-size curve:")
    for n in train_sizes:
        for seed in seeds:
            rows = _subsample(y_train, n, seed)
            n_real = int(np.sum(y_train[rows] == 0))
            n_fake = int(np.sum(y_train[rows] == 1))
            models, seconds, caught = _fit_methods(
                methods, X_train[rows], y_train[rows], seed, label=f"{n}/class, ",
                **fit,
            )
            fit_totals.append(sum(seconds.values()))
            size_log.append({"train_size": n, "seed": seed, "n_train_real": n_real,
                             "n_train_fake": n_fake, "fit_seconds": seconds,
                             "warnings": caught})
            for name in methods:
                rep = _report(name, models[name], X_test, y_test, g_test)
                mean, per_group = _records(
                    rep, name, "train_size", n, seed, encoder_name,
                    extra={"n_train_real": n_real, "n_train_fake": n_fake},
                )
                records.append(mean)
                group_records.extend(per_group)
    return size_log, records, group_records, fit_totals


def _run_config(*, started, load_start, encoder_spec, featurizer, identity, data,
                seeds, methods, max_epochs, device, calibration_fraction,
                jpeg_qualities, blur_sigmas, resize_factors, train_sizes, size_log,
                cache_obj):
    """``CrossGeneratorResult.config``: what ran, on what, where."""
    y_train, y_test, g_test = data.y_train, data.y_test, data.g_test
    encoder_params = {
        k: (repr(v) if not isinstance(v, (str, int, float, bool, type(None))) else v)
        for k, v in featurizer.get_params().items()
        if k not in ("cache", "image_transform")
    }
    machine = _machine()
    machine["load_average_start"] = load_start
    if hasattr(os, "getloadavg"):
        machine["load_average_end"] = _load_average()
    return {
        "started_utc": started,
        "encoder": {
            "spec": encoder_spec,
            "featurizer": type(featurizer).__name__,
            "params": encoder_params,
            "identity": identity,
        },
        "data": {
            "train_roots": data.train_roots,
            "test_roots": data.test_roots,
            "train_roots_abs": [os.path.abspath(r) for r in data.train_roots],
            "test_roots_abs": [os.path.abspath(r) for r in data.test_roots],
            "n_train": int(y_train.size),
            "n_train_real": int(np.sum(y_train == 0)),
            "n_train_fake": int(np.sum(y_train == 1)),
            "n_test": int(y_test.size),
            "test_groups": data.test_groups,
            "test_paths": [str(p) for p in data.test_paths],
            "test_target": y_test.tolist(),
            "test_group_counts": {
                g: {
                    "real": int(np.sum((g_test == g) & (y_test == 0))),
                    "fake": int(np.sum((g_test == g) & (y_test == 1))),
                }
                for g in data.test_groups
            },
        },
        "seeds": seeds,
        "methods": methods,
        "method_settings": {m: _METHOD_NOTES[m] for m in methods},
        "max_epochs": max_epochs,
        "device": device,
        "threshold": 0.5,
        "calibration_fraction": float(calibration_fraction),
        "std": "sample standard deviation over seeds (ddof=1)",
        "sweeps": {
            "jpeg_quality": [int(q) for q in jpeg_qualities],
            "blur_sigma": [float(s) for s in blur_sigmas],
            "resize_factor": [float(f) for f in resize_factors],
            "train_size_per_class": [int(n) for n in train_sizes],
            "train_size_runs": size_log,
        },
        "cache": cache_obj.directory if cache_obj is not None else None,
        "versions": _versions(identity),
        "machine": machine,
    }
