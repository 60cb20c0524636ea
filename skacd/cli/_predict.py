"""``skacd predict``: score images with a saved detector."""

import io
import os
import sys
import time

from .._atomic import atomic_open
from .._json import to_builtin
from ..exceptions import UsageError
from ._arguments import _finite_float, _runtime
from ._common import EXIT_OK, PROG, _check_writable, _load_image_detector
from ._inputs import _EXTENSIONS, _collect_inputs
from ._messages import _err, _list_skipped
from ._rows import _fake_column, _label_names, _output_format, _write_rows

#: The parent parsers (of :mod:`._arguments`) whose options it takes.
PARENTS = ("quiet", "images")
HELP = "score images with a saved detector"
DESCRIPTION = (
    "Score image files and folders (searched recursively) with a detector file. "
    "One line per image: path, prob_fake (probability of being AI-generated), "
    "p_real (conformal p-value against the real images the detector was "
    "calibrated on: the share of them scoring at least as fake; empty when "
    "uncalibrated), label (real/fake, at the calibrated threshold when there "
    "is one), encoder, and error (why an image was skipped)."
)
EPILOG = "Example: skacd predict detector.skacd photos/ --output predictions.csv"


def add_arguments(parser):
    """Add the options of ``skacd predict`` to ``parser``."""
    add = parser.add_argument
    add("detector", help="a detector file written by skacd fit")
    add("paths", nargs="+", metavar="PATH", help="image files or folders")
    add("-o", "--output", metavar="FILE",
        help="write to FILE (.csv or .jsonl) instead of standard output; "
             "the file appears only once complete")
    add("--format", choices=["csv", "jsonl"],
        help="output format (default: from the --output extension, csv "
             "on standard output)")
    add("--device", choices=["auto", "cpu", "cuda"],
        help="device of the image encoder (default: as saved)")
    add("--threshold", type=_finite_float, metavar="T",
        help="call an image fake when prob_fake > T, overriding the "
             "detector's calibrated (or default 0.5) threshold")


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

    from ..exceptions import ImageLoadError

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


def run(args):
    started = time.perf_counter()
    fmt = _output_format(args)
    if args.output is not None:
        _check_writable(args.output, "the output file", [args.detector, *args.paths])
    from ..featurizers._spec import to_spec

    detector, calibrated = _load_image_detector(args.detector, "predict")
    featurizer, head = detector.steps[0][1], detector[1:]
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
        raise OSError(
            f"Cannot read {where!r}: {reason}; use --skip-errors to go on without it"
        )
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
                                "the detector gave a non-finite score",
                                args.skip_errors)
        kept_set = set(kept)
        proba = proba[[i in kept_set for i in ok]]
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
        f"{len(ok) - n_fake} {other_name}; {n_cached} from cache), "
        f"{len(skipped)} skipped, "
        f"{time.perf_counter() - started:.1f} s"
        + ("" if args.output is None else f"; wrote {args.output}")
        + f"; threshold: {source}"
    )
    return EXIT_OK
