"""Atomic file writes: a file appears complete at its path, or not at all.

The one home of the temporary-file-then-rename pattern that detector files
(:func:`skacd.io.save`), feature cache entries (:class:`skacd.cache.FeatureCache`)
and the command line's output files use.
"""

import contextlib
import os
import secrets

__all__ = ["atomic_open", "atomic_write"]


def _create_temporary(directory, prefix, suffix):
    """``(fd, path)`` of a new, empty file in ``directory``.

    Opened with mode ``0o666`` less the umask, the mode :func:`open` gives a
    new file (unlike :func:`tempfile.mkstemp`, which makes it private), so
    that shared folders stay shareable.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    while True:
        path = os.path.join(directory, f"{prefix}{secrets.token_hex(4)}{suffix}")
        try:
            return os.open(path, flags, 0o666), path
        except FileExistsError:  # pragma: no cover - 32 random bits
            continue


def _fsync_directory(directory):
    if hasattr(os, "O_DIRECTORY"):
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_open(path, mode="wb", *, fsync=True, fsync_directory=False,
                prefix=None, suffix=".tmp", encoding=None, newline=None):
    """Open a file that appears at ``path`` only once it is complete.

    The file is written to a temporary file beside ``path`` and renamed over
    it with :func:`os.replace` when the ``with`` block ends; on any failure
    (or Ctrl-C) the temporary file is removed and an existing ``path`` is
    left untouched.

    Parameters
    ----------
    path : str or os.PathLike
        The file to write; replaced if it exists.
    mode : {"wb", "w"}, default="wb"
        Binary or text.
    fsync : bool, default=True
        Flush the data to disk before the rename.
    fsync_directory : bool, default=False
        Also flush the folder after the rename, so the new name survives a
        power cut.
    prefix : str or None, default=None
        Start of the temporary file's name; None is ``"." + basename + "."``
        (a hidden file).
    suffix : str, default=".tmp"
        End of the temporary file's name.
    encoding, newline : str or None, default=None
        As for :func:`open`, in text mode.

    Yields
    ------
    file : file object
        The open temporary file.

    Examples
    --------
    >>> import os, tempfile
    >>> from skacd._atomic import atomic_open
    >>> path = os.path.join(tempfile.mkdtemp(), "out.txt")
    >>> with atomic_open(path, "w", encoding="utf-8") as fh:
    ...     _ = fh.write("done")
    >>> open(path).read()
    'done'
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"mode must be 'wb' or 'w'; got {mode!r}.")
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    if prefix is None:
        prefix = f".{os.path.basename(path)}."
    fd, tmp = _create_temporary(directory, prefix, suffix)
    try:
        with os.fdopen(fd, mode, encoding=encoding, newline=newline) as fh:
            yield fh
            if fsync:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if fsync_directory:
        _fsync_directory(directory)


def atomic_write(path, data, **kwargs):
    """Write ``data`` (bytes) to ``path`` atomically; see :func:`atomic_open`.

    Examples
    --------
    >>> import os, tempfile
    >>> from skacd._atomic import atomic_write
    >>> path = os.path.join(tempfile.mkdtemp(), "blob.bin")
    >>> atomic_write(path, b"\\x00\\x01")
    >>> open(path, "rb").read()
    b'\\x00\\x01'
    """
    with atomic_open(path, "wb", **kwargs) as fh:
        fh.write(data)
