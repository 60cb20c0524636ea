"""What every subcommand shares: the exit codes, messages on standard
error, output checks and the featurizer's runtime settings."""

import os
import sys

from ..exceptions import UsageError

EXIT_OK = 0


EXIT_FAILURE = 1


EXIT_USAGE = 2


EXIT_INTERRUPTED = 130


PROG = "skacd"


_MAX_LISTED = 20


def _err(message):
    print(message, file=sys.stderr, flush=True)


def _printable(text):
    """``text`` for a stderr line: quoted if it holds control characters
    (newlines, ANSI escapes) that could forge or hide other lines."""
    text = str(text)
    if any(ord(c) < 32 or 127 <= ord(c) < 160 for c in text):
        return repr(text)
    return text


def _list_skipped(errors, command):
    for path, reason in errors[:_MAX_LISTED]:
        _err(f"{command}: skipped {_printable(path)}: {_printable(reason)}")
    if len(errors) > _MAX_LISTED:
        _err(f"{command}: ... and {len(errors) - _MAX_LISTED} more skipped (see the output).")


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


def _runtime(args):
    runtime = {"verbose": 0 if args.quiet else 1, "cache": args.cache,
               "on_error": "skip" if args.skip_errors else "raise"}
    for name in ("batch_size", "num_workers", "device"):
        if getattr(args, name, None) is not None:
            runtime[name] = getattr(args, name)
    return runtime
