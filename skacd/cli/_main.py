"""The ``skacd`` program: its parser and its one exit-code policy.

Every subcommand is a module of :mod:`skacd.cli` with ``HELP``,
``DESCRIPTION``, ``add_arguments(parser)`` and ``run(args)`` (and optionally
``PARENTS``, the shared option groups it takes, and ``EPILOG``);
:func:`main` parses, runs and maps what ``run`` raises to the exit code
(see :data:`EXIT_CODES`).
"""

import argparse
import contextlib
import sys
import traceback
import warnings

from ..exceptions import UsageError
from . import _calibrate, _demo, _evaluate, _fit, _info, _predict
from ._arguments import parent_parsers
from ._common import EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, PROG
from ._messages import _err

#: The subcommands, in the order of ``skacd --help``.
COMMANDS = {
    "fit": _fit,
    "predict": _predict,
    "calibrate": _calibrate,
    "evaluate": _evaluate,
    "demo": _demo,
    "info": _info,
}

#: What each exit status means, for every subcommand alike.
EXIT_CODES = {
    EXIT_OK: "success",
    EXIT_FAILURE: "runtime failure (a missing folder, an unreadable image without "
    "--skip-errors or detector file, bad data, ...)",
    EXIT_USAGE: "usage error (unknown option, bad value, options that do not go "
    "together)",
    EXIT_INTERRUPTED: "interrupted (Ctrl-C)",
}


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


def build_parser():
    """The :class:`argparse.ArgumentParser` of the ``skacd`` command.

    Returns
    -------
    parser : argparse.ArgumentParser
        With one subparser per subcommand; parsing imports neither torch nor
        scikit-learn.

    Examples
    --------
    >>> from skacd.cli import build_parser
    >>> args = build_parser().parse_args(["info", "--json"])
    >>> args.command, args.json
    ('info', True)
    """
    from .._version import __version__

    parser = argparse.ArgumentParser(
        prog=PROG,
        description=(
            "Detect AI-generated images with single-class attribution modeling "
            "(arXiv:2603.00717)."
        ),
        epilog="Exit codes, the same for every subcommand: "
        + "; ".join(f"{code} {meaning}" for code, meaning in EXIT_CODES.items())
        + ".",
    )
    parser.add_argument("--version", action="version",
                        version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    parents = parent_parsers()
    for name, command in COMMANDS.items():
        sub = subparsers.add_parser(
            name, parents=[parents[p] for p in getattr(command, "PARENTS", ())],
            help=command.HELP, description=command.DESCRIPTION,
            epilog=getattr(command, "EPILOG", None),
        )
        command.add_arguments(sub)
        sub.set_defaults(func=command.run)
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

    Examples
    --------
    >>> from skacd.cli import main
    >>> main(["--version"])
    skacd ...
    0
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    return run_command(args.func, args, args.command, parser)


def run_command(run, args, command, parser=None):
    """Run ``run(args)`` under the one exit-code policy; return the exit status.

    Parameters
    ----------
    run : callable
        A subcommand's ``run``.
    args : argparse.Namespace
        Its parsed arguments.
    command : str
        The subcommand's name, for the messages.
    parser : argparse.ArgumentParser or None, default=None
        Prints its usage line before a usage error's message.

    Returns
    -------
    status : int
        ``run``'s status, or the code of what it raised (see
        :data:`EXIT_CODES`); the message goes to stderr.
    """
    from ..exceptions import ImageLoadError

    try:
        with _short_warnings():
            return run(args)
    except UsageError as exc:
        if parser is not None:
            parser.print_usage(sys.stderr)
        _err(f"{PROG} {command}: error: {exc}")
        return EXIT_USAGE
    except KeyboardInterrupt:
        hint = ""
        if getattr(args, "cache", None):
            hint = (f" Rerun with --cache {args.cache} to resume from the images "
                    "already featurized.")
        elif command in ("fit", "predict"):
            hint = " Pass --cache DIR to make a rerun resume where it stopped."
        _err(f"{PROG} {command}: interrupted; no output was written.{hint}")
        return EXIT_INTERRUPTED
    except ImageLoadError as exc:
        _err(f"{PROG} {command}: error: {exc}")
        _err("(use --skip-errors to skip images that cannot be loaded and list them "
             "in the output)")
        return EXIT_FAILURE
    except (OSError, ValueError, ImportError, RuntimeError) as exc:
        _err(f"{PROG} {command}: error: {exc}")
        return EXIT_FAILURE
    except Exception:  # a bug: show where
        traceback.print_exc()
        _err(f"{PROG} {command}: internal error (traceback above); "
             "please report it.")
        return EXIT_FAILURE
