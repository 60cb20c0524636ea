"""The ``skacd`` command line: a thin layer over the public API.

Subcommands: ``fit``, ``calibrate``, ``predict``, ``evaluate``, ``demo`` and
``info``; each has ``--help``.

One exit-code policy for every subcommand (``skacd --help`` prints it too):

- 0: success;
- 1: runtime failure: a missing folder or file, an image that cannot be
  loaded without ``--skip-errors``, an unreadable detector file, data the
  command cannot use, unavailable weights;
- 2: usage error: an unknown option, a bad value (every count is checked
  while parsing), options that do not go together, an output file that
  cannot be written;
- 130: interrupted (Ctrl-C); nothing is written.

An unexpected exception (a bug) prints its traceback and exits 1.

Progress goes to standard error (a bar on a terminal, a plain line every ten
seconds or so in a log) and ``--quiet`` turns it off; every command that scores
images ends with one summary line on standard error. Parsing the command line
imports neither torch nor scikit-learn: ``skacd --help`` and usage errors are
instant.

One module per subcommand (``_fit``, ``_predict``, ``_calibrate``,
``_evaluate``, ``_demo``, ``_info``), each with ``add_arguments(parser)`` and
``run(args)``; ``_main`` holds the parser and the exit-code policy,
``_arguments`` the shared argument types, ``_inputs`` the image search,
``_rows`` the prediction rows (CSV / JSON lines), ``_messages`` the lines on
standard error and ``_common`` the exit codes and the detector file checks.
"""

from ..exceptions import UsageError
from ._evaluate import add_evaluate_arguments, run_evaluate
from ._main import build_parser, main

__all__ = [
    "main",
    "build_parser",
    "add_evaluate_arguments",
    "run_evaluate",
    "UsageError",  # skacd.exceptions' own, importable here as before
]
