"""A persistent, content-addressed cache of image feature vectors.

Featurizing an image with a frozen encoder is the expensive step of every
skacd pipeline. :class:`FeatureCache` stores each float32 feature vector on
disk under a key derived from *what* was computed (the encoder identity) and
*from what* (the image bytes), so grid searches, repeated benchmarks and
interrupted runs never featurize the same image twice.
"""

import hashlib
import json
import os
import re
import secrets
import stat
import struct
import sys
import warnings
from collections.abc import Mapping

import numpy as np

from ._atomic import atomic_write
from .exceptions import CacheWarning

__all__ = ["FeatureCache"]

# On-disk entry: a 32-byte header followed by the little-endian float32 payload.
#
#   offset  size  field
#   0       4     magic  b"SKFC"
#   4       1     format version (1)
#   5       1     dtype code (1 = little-endian float32)
#   6       2     reserved, zero
#   8       8     number of elements n (uint64, little-endian)
#   16      16    blake2b-128, keyed with the cache's secret, of
#                 header[0:16] + key (ASCII) + payload
#   32      4*n   payload
_MAGIC = b"SKFC"
# Version 2: the checksum is keyed (version 1 entries are misses, left alone).
_FORMAT_VERSION = 2
_DTYPE_FLOAT32 = 1
_HEADER = struct.Struct("<4sBBHQ16s")
_PREFIX = struct.Struct("<4sBBHQ")  # the checksummed part of the header
_CHECKSUM_PERSON = b"skacd-cache"
_SUFFIX = ".skf"
_VERSION_FILE = "CACHE_VERSION"
# 32 random bytes (hex), mode 0600, created with the cache: whoever cannot read
# it cannot forge an entry that get() accepts.
_SECRET_FILE = "CACHE_SECRET"
_MAX_ENTRY_BYTES = 32 + 4 * 2**24  # 16.7 million float32 features
_VERSION_TEXT = f"skacd FeatureCache format {_FORMAT_VERSION}\n"
_KEY_DOMAIN = b"skacd.FeatureCache key v1\x00"

_KEY_RE = re.compile(r"[0-9a-f]{16,128}\Z")
_ENTRY_RE = re.compile(r"[0-9a-f]{16,128}" + re.escape(_SUFFIX) + r"\Z")
_SHARD_RE = re.compile(r"[0-9a-f]{2}\Z")
_TEMP_PREFIX = ".tmp-"


def _checksum(secret, prefix, key, payload):
    h = hashlib.blake2b(digest_size=16, key=secret, person=_CHECKSUM_PERSON)
    h.update(prefix)
    h.update(key.encode("ascii"))
    h.update(payload)
    return h.digest()


class _BadFile(OSError):
    """A cache file that is not a regular file of a sane size."""

    def __init__(self, message, identity):
        super().__init__(message)
        self.identity = identity


def _read_regular(path, limit, stat_too=False):
    """The bytes of the regular file ``path``, at most ``limit`` of them.

    FIFOs are opened without blocking and, like devices and larger files,
    refused with :class:`_BadFile` before anything is read.
    """
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)
                 | getattr(os, "O_BINARY", 0))
    with os.fdopen(fd, "rb") as f:
        identity = os.fstat(fd)
        if not stat.S_ISREG(identity.st_mode):
            if stat.S_ISDIR(identity.st_mode):
                raise IsADirectoryError(21, "Is a directory", path)
            raise _BadFile("not a regular file", identity)
        if identity.st_size > limit:
            raise _BadFile(f"{identity.st_size} bytes, over {limit}", identity)
        data = f.read(limit + 1)
    if len(data) > limit:
        raise _BadFile(f"over {limit} bytes", identity)
    return (data, identity) if stat_too else data


class FeatureCache:
    """Persistent, content-addressed store of float32 feature vectors.

    Each entry maps a key from :meth:`make_key` (a digest of the encoder
    identity and the image's bytes) to one 1-D float32 vector, stored as one
    small checksummed file. The cache is safe to share between processes and
    survives interruption: a killed run leaves only complete entries behind.

    Parameters
    ----------
    directory : str or os.PathLike
        Where entries live. It is created on the first :meth:`put`, not
        before: constructing a cache or reading from it never touches the
        disk beyond reads.
    fsync : bool, default=False
        Flush each entry (and its directory) to stable storage before it
        becomes visible. Without it a power loss may leave a damaged entry,
        which the checksum detects and :meth:`get` discards; with it every
        write costs a disk flush.
    verbose : int, default=0
        With ``verbose >= 1``, print one line for each corrupt entry removed
        and for write or read failures.

    Attributes
    ----------
    directory : str
        The absolute path of the cache directory.
    stats : dict
        Counters for this instance, since construction or unpickling:

        - ``"hits"``: :meth:`get` calls that returned a vector;
        - ``"misses"``: :meth:`get` calls that returned ``None`` (corrupt,
          unreadable and absent entries alike);
        - ``"corrupt"``: corrupt entries found and removed;
        - ``"writes"``: entries stored by :meth:`put`;
        - ``"write_errors"``: :meth:`put` calls that stored nothing because
          writing failed or had been turned off by an earlier failure.

        Counters are per process; Dask workers and DataLoader workers each
        keep their own.

    See Also
    --------
    FeatureCache.make_key : Build the key of an image for an encoder.

    Notes
    -----
    **Layout.** The entry for ``key`` is ``<directory>/<key[:2]>/<key>.skf``:
    256 shard directories keep each directory small at 100 000 entries and
    beyond. A file is a 32-byte header (magic ``b"SKFC"``, format version,
    dtype code, element count, and a blake2b-128 checksum over the header,
    the key and the payload, keyed with the cache's secret) followed by the
    vector as little-endian float32. ``<directory>/CACHE_VERSION`` names the
    format in plain text; ``<directory>/CACHE_SECRET`` holds 32 random bytes,
    created with the cache's first entry with mode 0600.

    **Safety guarantees.**

    - *Atomic writes.* :meth:`put` writes to a uniquely named temporary file
      (``.tmp-...``, never a key name) in the entry's shard directory, then
      renames it over the entry with :func:`os.replace`, which is atomic on
      POSIX. Readers see the old entry, the new one, or none, never a
      partial file, however many processes write the same or different keys.
      Two writers of one key both succeed and the last rename wins; both
      wrote a valid vector for that key.
    - *Verified reads.* :meth:`get` checks the magic, the length and the
      checksum. A truncated, garbled or misplaced entry is removed, counted
      in ``stats["corrupt"]`` and reported as a miss, so the caller
      recomputes it and :meth:`put` stores it again. Corrupt data is never
      returned. An entry written by another format version is a miss and is
      left for its owner (a :meth:`put` replaces it).
    - *Failures do not lose results.* If a write fails (disk full,
      permission denied, read-only file system), :meth:`put` emits one
      ``CacheWarning``, stops writing for the rest of this instance's life and
      returns normally: featurization goes on without caching. Reads keep
      working. A fresh or unpickled instance tries writing again.
    - *Authenticated entries.* Only a process that can read
      ``CACHE_SECRET`` (by default, its owner) can write an entry that
      :meth:`get` accepts: whoever can merely write to the directory cannot
      make one image's features stand for another's. A forged or damaged
      entry is removed and recomputed, with one ``CacheWarning`` naming it
      per instance. Entries are read only if they are regular files of a
      plausible size, so a FIFO or a link to a device never blocks a read.
      Share a cache between users by sharing read access to
      ``CACHE_SECRET``.
    - *Content addressing.* A changed file gives a new key and a renamed
      identical file gives the same key. Entries are never invalidated, only
      superseded; :meth:`clear` deletes them all.

    :meth:`clear` must not run while other processes write. Leftover
    temporary files of killed writers are ignored by every method except
    :meth:`clear`, which removes them. There is no size limit or eviction.

    Pickling keeps only ``directory``, ``fsync`` and ``verbose``; counters
    and the write-failure state start afresh, so a cache can travel with an
    estimator or to Dask workers.

    Examples
    --------
    >>> import shutil, tempfile
    >>> import numpy as np
    >>> from skacd.cache import FeatureCache
    >>> cache = FeatureCache(tempfile.mkdtemp())
    >>> identity = {"encoder": "ViT-B-32", "weights": "openai",
    ...             "preprocess": "resize-224-center-crop", "precision": "fp32"}
    >>> key = FeatureCache.make_key(identity, b"<the image file's bytes>")
    >>> cache.get(key) is None
    True
    >>> cache.put(key, np.array([0.5, -1.0, 2.0]))
    >>> cache.get(key)
    array([ 0.5, -1. ,  2. ], dtype=float32)
    >>> key in cache, len(cache)
    (True, 1)
    >>> cache.stats
    {'hits': 1, 'misses': 1, 'corrupt': 0, 'writes': 1, 'write_errors': 0}
    >>> shutil.rmtree(cache.directory)
    """

    def __init__(self, directory, *, fsync=False, verbose=0):
        self.directory = os.path.abspath(os.path.expanduser(os.fspath(directory)))
        self.fsync = fsync
        self.verbose = verbose
        self._reset_runtime_state()

    def _reset_runtime_state(self):
        self.stats = {
            "hits": 0,
            "misses": 0,
            "corrupt": 0,
            "writes": 0,
            "write_errors": 0,
        }
        self._write_disabled = False
        self._warned = set()  # the kinds of CacheWarning already given
        self._version_file_written = False
        self._secret = None

    # ------------------------------------------------------------------ keys

    @staticmethod
    def make_key(identity, content):
        """Return the cache key of ``content`` featurized as ``identity`` says.

        Parameters
        ----------
        identity : dict
            JSON-serialisable description of everything that changes the
            features: encoder name, weights tag or checksum, preprocessing,
            precision. Key order does not matter. Values are compared by
            their JSON text, so ``1`` and ``1.0`` differ: keep types stable.
        content : bytes, bytearray or memoryview
            The image's raw file bytes, or, for an in-memory image, bytes
            that encode its mode, shape and pixels.

        Returns
        -------
        key : str
            64 lowercase hexadecimal characters: the blake2b-256 digest of a
            domain tag, the length-prefixed canonical JSON of ``identity``
            (sorted keys, no whitespace, UTF-8) and ``content``. It is stable
            across processes, machines and Python versions.

        Raises
        ------
        TypeError
            If ``identity`` is not a mapping or not JSON-serialisable, or if
            ``content`` is not bytes-like.
        ValueError
            If ``identity`` holds NaN or infinite floats.

        Examples
        --------
        >>> from skacd.cache import FeatureCache
        >>> a = FeatureCache.make_key({"encoder": "RN50", "weights": "openai"}, b"x")
        >>> b = FeatureCache.make_key({"weights": "openai", "encoder": "RN50"}, b"x")
        >>> a == b, len(a)
        (True, 64)
        >>> a == FeatureCache.make_key({"encoder": "RN50", "weights": "yfcc15m"}, b"x")
        False
        """
        if not isinstance(identity, Mapping):
            raise TypeError(
                f"identity must be a dict, got {type(identity).__name__}."
            )
        if not isinstance(content, (bytes, bytearray, memoryview)):
            raise TypeError(
                "content must be bytes, bytearray or memoryview, got "
                f"{type(content).__name__}."
            )
        canonical = json.dumps(
            dict(identity),
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
            allow_nan=False,
        ).encode("utf-8")
        h = hashlib.blake2b(digest_size=32)
        h.update(_KEY_DOMAIN)
        h.update(struct.pack("<Q", len(canonical)))
        h.update(canonical)
        h.update(content)
        return h.hexdigest()

    @staticmethod
    def _check_key(key):
        if not isinstance(key, str) or not _KEY_RE.match(key):
            raise ValueError(
                "key must be a lowercase hexadecimal string of 16 to 128 "
                f"characters, as made by FeatureCache.make_key; got {key!r}."
            )
        return key

    def _path(self, key):
        return os.path.join(self.directory, key[:2], key + _SUFFIX)

    # ----------------------------------------------------------------- reads

    def get(self, key):
        """Return the vector stored under ``key``, or ``None`` on a miss.

        Parameters
        ----------
        key : str
            A key from :meth:`make_key`.

        Returns
        -------
        vector : ndarray of shape (n_features,) and dtype float32, or None
            A fresh, writable copy. ``None`` if the entry is absent, corrupt
            (it is then removed and counted), unreadable, or from another
            format version.
        """
        self._check_key(key)
        vector = self._read(key)
        self.stats["hits" if vector is not None else "misses"] += 1
        return vector

    def get_many(self, keys):
        """Return the vectors stored under ``keys``, ``None`` for each miss.

        Parameters
        ----------
        keys : iterable of str
            Keys from :meth:`make_key`.

        Returns
        -------
        vectors : list of (ndarray of dtype float32 or None)
            One item per key, in order, as :meth:`get` returns them.

        Examples
        --------
        >>> import shutil, tempfile
        >>> import numpy as np
        >>> from skacd.cache import FeatureCache
        >>> cache = FeatureCache(tempfile.mkdtemp())
        >>> keys = [FeatureCache.make_key({"encoder": "toy"}, bytes([i]))
        ...         for i in range(3)]
        >>> cache.put_many(keys[:2], np.eye(2, 4))
        >>> [v if v is None else v.tolist() for v in cache.get_many(keys)]
        [[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0], None]
        >>> shutil.rmtree(cache.directory)
        """
        return [self.get(key) for key in keys]

    def _secret_key(self, create):
        """The cache's secret, read (or created, mode 0600) on first need;
        None if there is none yet and ``create`` is false."""
        if self._secret is not None:
            return self._secret
        path = os.path.join(self.directory, _SECRET_FILE)
        if create and not os.path.exists(path):
            os.makedirs(self.directory, exist_ok=True)
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:  # another process created it first
                pass
            else:
                with os.fdopen(fd, "w") as f:
                    f.write(secrets.token_hex(32) + "\n")
        try:
            data = _read_regular(path, 1024)
        except FileNotFoundError:
            return None
        try:
            secret = bytes.fromhex(data.decode("ascii").strip())
        except (UnicodeDecodeError, ValueError):
            secret = b""
        if len(secret) != 32:
            raise OSError(f"{path} is not a FeatureCache secret (64 hex digits)")
        self._secret = secret
        return secret

    def _read(self, key):
        path = self._path(key)
        try:
            secret = self._secret_key(create=False)
            if secret is None:
                return None  # no secret: nothing written by this cache yet
            data, identity = _read_regular(path, _MAX_ENTRY_BYTES, stat_too=True)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except _BadFile as exc:  # a FIFO, a device, a huge file
            self._discard_corrupt(path, exc.identity, str(exc))
            return None
        except OSError as exc:  # permission, I/O error, a directory, ...
            self._report_read_error(path, exc)
            return None

        reason = None
        if len(data) < _HEADER.size:
            reason = f"{len(data)} bytes, shorter than the header"
        else:
            magic, version, dtype, reserved, n, checksum = _HEADER.unpack_from(data)
            payload = memoryview(data)[_HEADER.size :]
            if magic != _MAGIC:
                reason = "bad magic number"
            elif version != _FORMAT_VERSION:
                return None  # another format: not ours to judge or delete
            elif dtype != _DTYPE_FLOAT32 or reserved != 0:
                reason = "bad dtype code"
            elif len(payload) != 4 * n:
                reason = f"payload of {len(payload)} bytes, expected {4 * n}"
            elif checksum != _checksum(secret, data[: _PREFIX.size], key, payload):
                reason = "checksum mismatch (damaged, or not written by this cache)"
            else:
                return np.frombuffer(payload, dtype="<f4").astype(np.float32)

        self._discard_corrupt(path, identity, reason)
        return None

    def _discard_corrupt(self, path, identity, reason):
        self.stats["corrupt"] += 1
        try:
            current = os.stat(path)
            # Only delete the file we read: a writer may have replaced it with
            # a good entry in the meantime.
            if (current.st_ino, current.st_dev) == (identity.st_ino, identity.st_dev):
                os.unlink(path)
        except OSError:
            pass
        self._warn(
            "bad entry", f"removed corrupt entry {path} ({reason})",
            f"FeatureCache removed the bad entry {path} ({reason}); it is "
            "recomputed. Further bad entries are counted in stats['corrupt'].",
            stacklevel=5,
        )

    def _report_read_error(self, path, exc):
        self._warn(
            "read error", f"cannot read {path}: {exc}",
            f"FeatureCache cannot read {path} ({exc}); treating unreadable "
            "entries as misses.",
            stacklevel=5,
        )

    def _warn(self, kind, line, message, stacklevel):
        """Print ``line`` when verbose; give ``message`` as a CacheWarning, the
        first time for its ``kind``."""
        if self.verbose:
            print(f"[FeatureCache] {line}")
        if kind in self._warned:
            return
        self._warned.add(kind)
        warnings.warn(message, CacheWarning, stacklevel=stacklevel)

    def __contains__(self, key):
        """Whether an entry file exists for ``key`` (not checksum-verified)."""
        if not isinstance(key, str) or not _KEY_RE.match(key):
            return False
        return os.path.isfile(self._path(key))

    def __len__(self):
        """Number of entry files; scans the shard directories."""
        return sum(1 for _ in self._entry_paths())

    def _shard_dirs(self):
        try:
            with os.scandir(self.directory) as it:
                shards = [e.path for e in it if _SHARD_RE.match(e.name) and e.is_dir()]
        except (FileNotFoundError, NotADirectoryError):
            return []
        return sorted(shards)

    def _entry_paths(self, *, temporaries=False):
        for shard in self._shard_dirs():
            try:
                with os.scandir(shard) as it:
                    names = [e.name for e in it]
            except FileNotFoundError:
                continue
            for name in names:
                if _ENTRY_RE.match(name) or (
                    temporaries and name.startswith(_TEMP_PREFIX)
                ):
                    yield os.path.join(shard, name)

    # ---------------------------------------------------------------- writes

    def put(self, key, vector):
        """Store ``vector`` under ``key``, replacing any existing entry.

        Parameters
        ----------
        key : str
            A key from :meth:`make_key`.
        vector : array-like of shape (n_features,)
            Converted to float32 (a float32 vector is stored bit for bit).

        Raises
        ------
        ValueError
            If ``key`` is malformed or ``vector`` is not 1-D. Write failures
            do not raise: see the class Notes.
        """
        self._check_key(key)
        vector = self._as_vector(vector)
        self._write(key, vector)

    def put_many(self, keys, array):
        """Store each row of ``array`` under the matching key.

        Parameters
        ----------
        keys : sequence of str
            Keys from :meth:`make_key`, one per row.
        array : array-like of shape (len(keys), n_features)
            The vectors, converted to float32.

        Raises
        ------
        ValueError
            If a key is malformed, ``array`` is not 2-D or its row count
            differs from ``len(keys)``. Nothing is written then.
        """
        keys = list(keys)
        for key in keys:
            self._check_key(key)
        array = np.asarray(array)
        if array.ndim != 2 or array.shape[0] != len(keys):
            raise ValueError(
                f"array must be 2-D with one row per key ({len(keys)} keys); "
                f"got shape {array.shape}."
            )
        array = np.ascontiguousarray(array, dtype="<f4")
        for key, row in zip(keys, array):
            self._write(key, row)

    @staticmethod
    def _as_vector(vector):
        vector = np.asarray(vector)
        if vector.ndim != 1:
            raise ValueError(
                f"vector must be 1-D, got an array of shape {vector.shape}."
            )
        return np.ascontiguousarray(vector, dtype="<f4")

    def _write(self, key, vector):
        if self._write_disabled:
            self.stats["write_errors"] += 1
            return
        payload = vector.tobytes()
        prefix = _PREFIX.pack(_MAGIC, _FORMAT_VERSION, _DTYPE_FLOAT32, 0, vector.size)
        path = self._path(key)
        try:
            secret = self._secret_key(create=True)
            blob = prefix + _checksum(secret, prefix, key, payload) + payload
            if not self._version_file_written:
                self._write_version_file()
            self._atomic_write(path, blob)
        except OSError as exc:
            self._write_disabled = True
            self.stats["write_errors"] += 1
            self._warn(
                "write error", f"cannot write {path}: {exc}",
                f"FeatureCache cannot write to {self.directory} ({exc}). "
                "Caching is off for the rest of this run; features are still "
                "computed and returned.",
                stacklevel=4,  # once: writing is then off for good
            )
            return
        self.stats["writes"] += 1

    def _write_version_file(self):
        path = os.path.join(self.directory, _VERSION_FILE)
        if not os.path.exists(path):
            self._atomic_write(path, _VERSION_TEXT.encode("ascii"))
        self._version_file_written = True

    def _atomic_write(self, path, blob):
        shard = os.path.dirname(path)
        os.makedirs(shard, exist_ok=True)
        try:
            atomic_write(
                path, blob, fsync=self.fsync, fsync_directory=self.fsync,
                prefix=f"{_TEMP_PREFIX}{os.path.basename(path)}-{os.getpid()}-",
                suffix="",
            )
        except PermissionError:
            # Windows refuses to replace a file another process holds open;
            # that file is a complete entry, so keep it.
            if not (sys.platform == "win32" and os.path.isfile(path)):
                raise

    def clear(self):
        """Delete every entry, and temporary files left by killed writers.

        Only files that the cache itself names are removed (entries, its
        temporary files, empty shard directories, ``CACHE_VERSION`` and
        ``CACHE_SECRET``);
        other files in ``directory`` and the directory itself are kept. Do
        not call it while other processes write to the cache.
        """
        for path in list(self._entry_paths(temporaries=True)):
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
        for shard in self._shard_dirs():
            try:
                os.rmdir(shard)
            except OSError:  # not empty: holds files that are not ours
                pass
        for name in (_VERSION_FILE, _SECRET_FILE):
            try:
                os.unlink(os.path.join(self.directory, name))
            except (FileNotFoundError, NotADirectoryError):
                pass
        self._version_file_written = False
        self._secret = None

    # -------------------------------------------------------------- plumbing

    def __getstate__(self):
        return {
            "directory": self.directory,
            "fsync": self.fsync,
            "verbose": self.verbose,
        }

    def __setstate__(self, state):
        self.directory = state["directory"]
        self.fsync = state["fsync"]
        self.verbose = state["verbose"]
        self._reset_runtime_state()

    def __repr__(self):
        args = [repr(self.directory)]
        if self.fsync:
            args.append(f"fsync={self.fsync!r}")
        if self.verbose:
            args.append(f"verbose={self.verbose!r}")
        return f"{type(self).__name__}({', '.join(args)})"
