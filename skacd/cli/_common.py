"""What every subcommand shares: the exit codes, the program name, the
check of an output file and the loading of a detector file."""

import os

from ..exceptions import UsageError

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

PROG = "skacd"


def _check_writable(path, what, inputs=()):
    """Refuse, before any work, an output that cannot be written or that would
    replace one of ``inputs`` (the detector, an image)."""
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise UsageError(
            f"cannot write {what} {path!r}: the folder {directory!r} does not exist."
        )
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


def _load_image_detector(path, command):
    """``(detector, calibrated)`` of the detector file ``path``: the pipeline
    that starts with a featurizer, and the ConformalThresholdClassifier that
    wraps it (None if none does)."""
    from ..calibration import ConformalThresholdClassifier
    from ..io import load

    detector = load(path)
    calibrated = None
    if isinstance(detector, ConformalThresholdClassifier):
        calibrated, detector = detector, detector.estimator
    steps = getattr(detector, "steps", None)
    if not steps or not hasattr(steps[0][1], "featurize") or len(steps) < 2:
        raise ValueError(
            f"{path!r} holds a {type(detector).__name__} that does not take "
            f"images; skacd {command} needs a pipeline that starts with a featurizer "
            "(as written by skacd fit)."
        )
    return detector, calibrated
