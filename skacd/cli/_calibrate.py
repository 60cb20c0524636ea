"""``skacd calibrate``: set a detector's threshold on known-real images."""

import time
import warnings

from ._arguments import _fraction, _runtime
from ._common import EXIT_OK, PROG, _check_writable, _load_image_detector
from ._inputs import _real_images
from ._messages import _err, _list_skipped

#: The parent parsers (of :mod:`._arguments`) whose options it takes.
PARENTS = ("quiet", "images")
HELP = "set a detector's threshold on known-real images at a target FPR"
DESCRIPTION = (
    "Set the threshold of a detector file so that at most --target-fpr of "
    "real images like those under --real are called fake (a conformal "
    "quantile of their scores: for a new real image from the same "
    "distribution, P(called fake) <= target). No generated image is "
    "needed; the images must not be ones the detector was fitted on. The "
    "new file also keeps their sorted scores, so skacd predict writes "
    "each image's p_real. At least ceil(1/target)-1 images are needed "
    "(19 for 0.05)."
)
EPILOG = (
    "Example: skacd calibrate detector.skacd --real my_photos/ "
    "--target-fpr 0.05 -o calibrated.skacd"
)


def add_arguments(parser):
    """Add the options of ``skacd calibrate`` to ``parser``."""
    add = parser.add_argument
    add("detector", help="a detector file written by skacd fit")
    add("--real", required=True, nargs="+", metavar="DIR",
        help="folder(s) of known-real images (searched "
             "recursively; of a labelled folder, the real class)")
    add("--target-fpr", type=_fraction, default=0.05, metavar="RATE",
        help="largest share of real images called fake "
             "(default: 0.05)")
    add("--device", choices=["auto", "cpu", "cuda"],
        help="device of the image encoder (default: as saved)")
    add("-o", "--output", required=True, metavar="FILE",
        help="calibrated detector file to write")


def run(args):
    started = time.perf_counter()
    _check_writable(args.output, "the detector file")
    from ..calibration import ConformalThresholdClassifier, min_calibration_samples
    from ..exceptions import ImageLoadWarning
    from ..io import save

    # recalibrate a calibrated detector: replace the old threshold
    detector, previous = _load_image_detector(args.detector, "calibrate")
    featurizer = detector.steps[0][1]
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
