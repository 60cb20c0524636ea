"""Quieting what one library logs while skacd calls it, and nothing else.

open_clip and ONNX Runtime's quantisation log through the root logger (with
``logging.info`` / ``logging.warning``), so their records cannot be told
apart by logger name. :func:`quiet_library_logs` adds a filter that drops the
records created by the code of one package, for the duration of a block. The
levels and handlers of every logger stay as the user configured them, and
records from anywhere else pass unchanged.
"""

import contextlib
import importlib
import logging
import os

__all__ = ["quiet_library_logs"]


class _PackageFilter(logging.Filter):
    """Drops the records below ``level`` logged by code under ``directory``."""

    def __init__(self, directory, level):
        super().__init__()
        self.directory = os.path.normcase(os.path.abspath(directory)) + os.sep
        self.level = level

    def filter(self, record):
        if record.levelno >= self.level:
            return True
        path = os.path.normcase(os.path.abspath(record.pathname))
        return not path.startswith(self.directory)


@contextlib.contextmanager
def quiet_library_logs(package, level=logging.ERROR, active=True):
    """Drop the log records below ``level`` that ``package`` emits in a block.

    The filter sits on the root logger (through which these libraries log),
    on the package's own logger, and on the root logger's handlers (and
    logging's last-resort handler), which also see the records of the
    package's child loggers; only records whose source file lies in the
    package's directory are dropped.

    Parameters
    ----------
    package : str
        The top-level package, e.g. ``"open_clip"``.
    level : int, default=logging.ERROR
        Records at this level or above still pass.
    active : bool, default=True
        ``False`` makes the block a no-op.

    Examples
    --------
    >>> import logging
    >>> from skacd._logging import quiet_library_logs
    >>> with quiet_library_logs("json"):
    ...     level = logging.getLogger().level  # unchanged
    """
    if not active:
        yield
        return
    module = importlib.import_module(package)
    directory = os.path.dirname(os.path.abspath(module.__file__))
    flt = _PackageFilter(directory, level)
    root = logging.getLogger()
    # A logger's filters see only the records logged to it; the handlers' see
    # those of its child loggers too (``open_clip.factory`` and the like).
    filtered = [root, logging.getLogger(package), *root.handlers]
    if logging.lastResort is not None:
        filtered.append(logging.lastResort)
    for target in filtered:
        target.addFilter(flt)
    try:
        yield
    finally:
        for target in filtered:
            target.removeFilter(flt)
