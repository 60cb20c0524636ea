"""Tests for skacd.cache.FeatureCache."""

import contextlib
import copy
import errno
import hashlib
import multiprocessing
import os
import pickle
import stat
import struct
import time
import warnings

import numpy as np
import pytest

import skacd.cache
from skacd.cache import FeatureCache

IDENTITY = {
    "encoder": "ViT-B-32",
    "weights": "openai",
    "preprocess": {"size": 224, "crop": "center"},
    "precision": "fp32",
}


def _key(i, identity=IDENTITY):
    return FeatureCache.make_key(identity, f"image-{i}".encode())


def _entry_path(cache, key):
    return os.path.join(cache.directory, key[:2], key + ".skf")


def _all_files(directory):
    return sorted(
        os.path.relpath(os.path.join(root, name), directory)
        for root, _, names in os.walk(directory)
        for name in names
    )


def _bits(a):
    return np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)


@contextlib.contextmanager
def warnings_as_errors():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


# ---------------------------------------------------------------- hit / miss


def test_miss_then_hit(tmp_path):
    cache = FeatureCache(tmp_path / "cache")
    key = _key(0)
    vector = np.linspace(-1, 1, 17, dtype=np.float32)

    assert cache.get(key) is None
    assert key not in cache
    assert len(cache) == 0

    cache.put(key, vector)
    got = cache.get(key)
    np.testing.assert_array_equal(got, vector)
    assert key in cache
    assert len(cache) == 1
    assert cache.get(_key(1)) is None
    assert cache.stats == {
        "hits": 1,
        "misses": 2,
        "corrupt": 0,
        "writes": 1,
        "write_errors": 0,
    }


def test_put_replaces_existing_entry(tmp_path):
    cache = FeatureCache(tmp_path)
    key = _key(0)
    cache.put(key, [1.0, 2.0])
    cache.put(key, [3.0, 4.0, 5.0])
    np.testing.assert_array_equal(cache.get(key), [3.0, 4.0, 5.0])
    assert len(cache) == 1


def test_directory_created_lazily_and_layout(tmp_path):
    directory = tmp_path / "a" / "b"
    cache = FeatureCache(directory)
    key = _key(0)
    assert cache.get(key) is None
    assert key not in cache and len(cache) == 0
    assert not directory.exists()

    cache.put(key, np.ones(3))
    assert cache.directory == str(directory)
    assert _all_files(directory) == sorted(
        ["CACHE_SECRET", "CACHE_VERSION", os.path.join(key[:2], key + ".skf")]
    )
    assert (directory / "CACHE_VERSION").read_text() == "skacd FeatureCache format 2\n"
    # header (32 bytes) + 3 float32
    assert os.path.getsize(_entry_path(cache, key)) == 32 + 3 * 4


def test_relative_directory_is_made_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cache = FeatureCache("rel")
    assert cache.directory == str(tmp_path / "rel")


def test_float32_preserved_bitwise(tmp_path):
    cache = FeatureCache(tmp_path)
    special = np.array(
        [0.0, -0.0, np.inf, -np.inf, np.finfo(np.float32).max,
         np.finfo(np.float32).smallest_subnormal, 1 / 3, np.pi],
        dtype=np.float32,
    )
    quiet_nan_with_payload = np.array([0x7FC00123], dtype=np.uint32).view(np.float32)
    vector = np.concatenate([special, quiet_nan_with_payload])
    cache.put(_key(0), vector)
    got = cache.get(_key(0))
    assert got.dtype == np.float32 and got.shape == vector.shape
    np.testing.assert_array_equal(_bits(got), _bits(vector))

    # Non-float32 input is stored as its float32 cast.
    x64 = np.random.default_rng(0).standard_normal(64)
    cache.put(_key(1), x64)
    np.testing.assert_array_equal(
        _bits(cache.get(_key(1))), _bits(x64.astype(np.float32))
    )

    # Big-endian and strided inputs are normalised too.
    be = np.arange(6, dtype=">f4")[::2]
    cache.put(_key(2), be)
    got = cache.get(_key(2))
    assert got.dtype == np.dtype(np.float32)
    np.testing.assert_array_equal(got, [0.0, 2.0, 4.0])


def test_returned_vector_is_an_independent_writable_copy(tmp_path):
    cache = FeatureCache(tmp_path)
    cache.put(_key(0), np.arange(4, dtype=np.float32))
    got = cache.get(_key(0))
    assert got.flags.writeable
    got[:] = -1
    np.testing.assert_array_equal(cache.get(_key(0)), [0, 1, 2, 3])


@pytest.mark.parametrize("bad", [np.zeros((2, 3)), np.float32(1.0), [[1.0]]])
def test_put_rejects_non_1d(tmp_path, bad):
    cache = FeatureCache(tmp_path)
    with pytest.raises(ValueError, match="1-D"):
        cache.put(_key(0), bad)
    assert len(cache) == 0


@pytest.mark.parametrize(
    "key",
    ["../../etc/passwd", "ABCDEF0123456789", "abc", "g" * 64, "a" * 129, 123, None],
)
def test_malformed_keys_are_rejected(tmp_path, key):
    cache = FeatureCache(tmp_path)
    with pytest.raises(ValueError, match="key must be"):
        cache.get(key)
    with pytest.raises(ValueError, match="key must be"):
        cache.put(key, [1.0])
    assert key not in cache
    assert _all_files(tmp_path) == []


# ----------------------------------------------------------------- corruption


def _truncate(data):
    return data[:-5]


def _header_only_part(data):
    return data[:10]


def _empty(data):
    return b""


def _flip(offset, mask=0xFF):
    def mutate(data):
        data = bytearray(data)
        data[offset] ^= mask
        return bytes(data)

    mutate.__name__ = f"flip_{offset}_{mask:#x}"
    return mutate


def _append(data):
    return data + b"\x00\x00\x00\x00"


def _bump_length(data):
    n = struct.unpack_from("<Q", data, 8)[0]
    return data[:8] + struct.pack("<Q", n + 1) + data[16:]


CORRUPTIONS = [
    _truncate,
    _header_only_part,
    _empty,
    _append,
    _bump_length,
    _flip(0),  # magic
    _flip(5),  # dtype code
    _flip(20),  # checksum
    _flip(40),  # payload, whole byte
    _flip(32 + 4 * 7, 0x01),  # payload, lowest mantissa bit of one float
    _flip(-1, 0x80),  # payload, sign bit of the last float
]


@pytest.mark.parametrize("mutate", CORRUPTIONS, ids=lambda f: f.__name__)
def test_corrupt_entry_is_detected_removed_and_recomputable(tmp_path, mutate):
    cache = FeatureCache(tmp_path)
    key = _key(0)
    vector = np.random.default_rng(0).standard_normal(16).astype(np.float32)
    cache.put(key, vector)
    path = _entry_path(cache, key)
    with open(path, "rb") as f:
        data = f.read()
    damaged = mutate(data)
    assert damaged != data
    with open(path, "wb") as f:
        f.write(damaged)

    assert cache.get(key) is None
    assert cache.stats["corrupt"] == 1
    assert cache.stats["misses"] == 1 and cache.stats["hits"] == 0
    assert not os.path.exists(path)
    assert key not in cache

    cache.put(key, vector)
    np.testing.assert_array_equal(_bits(cache.get(key)), _bits(vector))
    assert cache.stats["corrupt"] == 1


def test_entry_copied_under_another_key_is_corrupt(tmp_path):
    # The checksum covers the key: a misplaced file is never served.
    cache = FeatureCache(tmp_path)
    a, b = _key(0), _key(1)
    cache.put(a, [1.0, 2.0])
    os.makedirs(os.path.dirname(_entry_path(cache, b)), exist_ok=True)
    with open(_entry_path(cache, a), "rb") as src:
        data = src.read()
    with open(_entry_path(cache, b), "wb") as dst:
        dst.write(data)
    assert cache.get(b) is None
    assert cache.stats["corrupt"] == 1
    np.testing.assert_array_equal(cache.get(a), [1.0, 2.0])


def test_corrupt_removal_spares_an_entry_rewritten_meanwhile(tmp_path, monkeypatch):
    # A writer may replace the corrupt file between the read and the removal;
    # the good entry it wrote must survive.
    cache = FeatureCache(tmp_path)
    key = _key(0)
    cache.put(key, [1.0, 2.0])
    with open(_entry_path(cache, key), "r+b") as f:
        f.truncate(20)

    discard = FeatureCache._discard_corrupt

    def rewrite_then_discard(self, path, identity, reason):
        FeatureCache(tmp_path).put(key, [1.0, 2.0])
        return discard(self, path, identity, reason)

    monkeypatch.setattr(FeatureCache, "_discard_corrupt", rewrite_then_discard)
    assert cache.get(key) is None
    assert cache.stats["corrupt"] == 1
    monkeypatch.undo()
    np.testing.assert_array_equal(cache.get(key), [1.0, 2.0])


def test_other_format_version_is_a_miss_left_in_place(tmp_path):
    cache = FeatureCache(tmp_path)
    key = _key(0)
    cache.put(key, [1.0])
    path = _entry_path(cache, key)
    with open(path, "r+b") as f:
        f.seek(4)
        f.write(bytes([9]))  # a future format version
    assert cache.get(key) is None
    assert cache.stats["corrupt"] == 0
    assert os.path.exists(path)
    cache.put(key, [7.0])
    np.testing.assert_array_equal(cache.get(key), [7.0])


def test_verbose_reports_corrupt_entries(tmp_path, capsys):
    cache = FeatureCache(tmp_path, verbose=1)
    key = _key(0)
    cache.put(key, [1.0, 2.0])
    with open(_entry_path(cache, key), "r+b") as f:
        f.truncate(33)
    assert cache.get(key) is None
    assert "removed corrupt entry" in capsys.readouterr().out


def test_unreadable_entry_is_a_miss_with_one_warning(tmp_path):
    cache = FeatureCache(tmp_path)
    cache.put(_key(9), [0.0])  # creates the cache and its secret
    keys = [_key(0), _key(1)]
    for key in keys:
        os.makedirs(_entry_path(cache, key))  # open() fails: a directory
    with pytest.warns(UserWarning, match="cannot read") as record:
        assert cache.get(keys[0]) is None
        assert cache.get_many(keys + keys) == [None] * 4
    assert len(record) == 1
    assert record[0].filename == __file__
    assert cache.stats["misses"] == 5 and cache.stats["corrupt"] == 0


def test_stale_temporary_file_is_never_served(tmp_path):
    cache = FeatureCache(tmp_path)
    key = _key(0)
    shard = tmp_path / key[:2]
    shard.mkdir()
    (shard / f".tmp-{key}.skf-123-deadbeef").write_bytes(b"SKFC half written")
    assert cache.get(key) is None
    assert key not in cache
    assert len(cache) == 0
    assert cache.stats["corrupt"] == 0


# ------------------------------------------------------------------------ keys


def test_key_is_stable_across_versions():
    # Persistent keys must never change silently: changing the scheme orphans
    # every existing cache. Update this value only with a format bump.
    key = FeatureCache.make_key(
        {"encoder": "ViT-B-32", "weights": "openai", "preprocess": {"size": 224},
         "precision": "fp32"},
        b"\x89PNG\r\n",
    )
    assert key == "652b2bc9485ff7b7af5d4f0cc76a508f41f8f6550790e9277f9567e3f5e70ea3"


def test_changed_content_gives_a_different_key():
    content = bytearray(b"\xff\xd8\xff\xe0" + bytes(range(256)))
    key = FeatureCache.make_key(IDENTITY, bytes(content))
    content[100] ^= 1
    assert FeatureCache.make_key(IDENTITY, bytes(content)) != key
    assert FeatureCache.make_key(IDENTITY, bytes(content[:-1])) != key


@pytest.mark.parametrize(
    "change",
    [
        {"encoder": "ViT-L-14"},
        {"weights": "laion2b_s34b_b79k"},
        {"preprocess": {"size": 256, "crop": "center"}},
        {"precision": "fp16"},
        {"extra": None},
    ],
)
def test_changed_identity_gives_a_different_key(change):
    assert FeatureCache.make_key({**IDENTITY, **change}, b"x") != FeatureCache.make_key(
        IDENTITY, b"x"
    )


def test_identity_key_order_does_not_matter():
    a = {"encoder": "e", "weights": "w", "preprocess": {"size": 224, "crop": "c"}}
    b = {"preprocess": {"crop": "c", "size": 224}, "weights": "w", "encoder": "e"}
    assert list(a) != list(b)
    assert FeatureCache.make_key(a, b"x") == FeatureCache.make_key(b, b"x")


def test_key_does_not_depend_on_how_content_is_passed():
    data = b"some image bytes"
    keys = {
        FeatureCache.make_key(IDENTITY, data),
        FeatureCache.make_key(IDENTITY, bytearray(data)),
        FeatureCache.make_key(IDENTITY, memoryview(data)),
    }
    assert len(keys) == 1
    (key,) = keys
    assert len(key) == 64 and key == key.lower()
    int(key, 16)


def test_identity_and_content_do_not_run_together():
    # Moving bytes between the identity and the content changes the key.
    assert FeatureCache.make_key({"a": "b"}, b"c") != FeatureCache.make_key(
        {"a": "bc"}, b""
    )


def test_renamed_identical_file_hits(tmp_path):
    data = os.urandom(1000)
    (tmp_path / "a.png").write_bytes(data)
    (tmp_path / "copy of a.png").write_bytes(data)
    cache = FeatureCache(tmp_path / "cache")
    cache.put(FeatureCache.make_key(IDENTITY, (tmp_path / "a.png").read_bytes()), [1.0])
    copy_bytes = (tmp_path / "copy of a.png").read_bytes()
    got = cache.get(FeatureCache.make_key(IDENTITY, copy_bytes))
    np.testing.assert_array_equal(got, [1.0])


@pytest.mark.parametrize(
    "identity, content, error",
    [
        (["encoder", "x"], b"x", TypeError),
        ({"encoder": object()}, b"x", TypeError),
        ({"scale": float("nan")}, b"x", ValueError),
        (IDENTITY, "not bytes", TypeError),
        (IDENTITY, np.zeros(3), TypeError),
    ],
)
def test_make_key_validates_its_inputs(identity, content, error):
    with pytest.raises(error):
        FeatureCache.make_key(identity, content)


# ------------------------------------------------------------------- batches


def test_put_many_get_many_with_2d_array(tmp_path):
    cache = FeatureCache(tmp_path)
    keys = [_key(i) for i in range(5)]
    array = np.random.default_rng(0).standard_normal((5, 7)).astype(np.float32)
    cache.put_many(keys, array)
    assert len(cache) == 5

    got = cache.get_many(keys[:2] + [_key(99)] + keys[2:])
    assert got[2] is None
    np.testing.assert_array_equal(_bits(np.stack(got[:2] + got[3:])), _bits(array))
    assert cache.stats["hits"] == 5 and cache.stats["misses"] == 1


@pytest.mark.parametrize(
    "keys, array",
    [
        ([_key(0), _key(1)], np.zeros((3, 4))),
        ([_key(0), _key(1)], np.zeros(2)),
        ([_key(0), "not-a-key"], np.zeros((2, 4))),
    ],
)
def test_put_many_validates_before_writing(tmp_path, keys, array):
    cache = FeatureCache(tmp_path)
    with pytest.raises(ValueError):
        cache.put_many(keys, array)
    assert len(cache) == 0


# --------------------------------------------------------- failures on write


def test_write_failure_warns_once_and_keeps_going(tmp_path, monkeypatch):
    cache = FeatureCache(tmp_path)
    cache.put(_key(0), [1.0])

    def no_space(src, dst):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(skacd.cache.os, "replace", no_space)
    with pytest.warns(UserWarning, match="cannot write.*No space left") as record:
        cache.put(_key(1), [2.0])
    assert record[0].filename == __file__
    with warnings_as_errors():
        cache.put(_key(2), [3.0])  # no second warning, no exception
        cache.put_many([_key(3), _key(4)], np.ones((2, 1)))
    monkeypatch.undo()

    assert cache.stats["write_errors"] == 4 and cache.stats["writes"] == 1
    # No temporary file is left behind and earlier entries still read.
    assert _all_files(tmp_path) == sorted(
        ["CACHE_SECRET", "CACHE_VERSION", os.path.join(_key(0)[:2], _key(0) + ".skf")]
    )
    np.testing.assert_array_equal(cache.get(_key(0)), [1.0])
    assert cache.get(_key(1)) is None

    # A fresh instance (for example, unpickled on a worker) writes again.
    fresh = pickle.loads(pickle.dumps(cache))
    fresh.put(_key(1), [2.0])
    np.testing.assert_array_equal(cache.get(_key(1)), [2.0])


def test_unusable_directory_does_not_raise(tmp_path):
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("I am a file")
    cache = FeatureCache(not_a_dir)
    with warnings_as_errors():
        assert cache.get(_key(0)) is None
    with pytest.warns(UserWarning, match="cannot write"):
        cache.put(_key(0), [1.0])
    assert cache.stats["write_errors"] == 1
    assert not_a_dir.read_text() == "I am a file"


# -------------------------------------------------------------- len / clear


def test_len_and_clear_touch_only_cache_files(tmp_path):
    cache = FeatureCache(tmp_path)
    keys = [_key(i) for i in range(6)]
    cache.put_many(keys, np.zeros((6, 2)))
    stale = tmp_path / keys[0][:2] / f".tmp-{keys[0]}.skf-1-00000000"
    stale.write_bytes(b"partial")
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / "zz").mkdir()
    (tmp_path / "zz" / ("a" * 64 + ".skf")).write_bytes(b"not in a shard")
    assert len(cache) == 6

    cache.clear()
    assert len(cache) == 0
    assert cache.get_many(keys) == [None] * 6
    assert _all_files(tmp_path) == sorted(
        ["notes.txt", os.path.join("zz", "a" * 64 + ".skf")]
    )
    cache.put(keys[0], [5.0])
    np.testing.assert_array_equal(cache.get(keys[0]), [5.0])
    assert (tmp_path / "CACHE_VERSION").exists()


def test_clear_on_missing_directory(tmp_path):
    cache = FeatureCache(tmp_path / "never")
    cache.clear()
    assert not (tmp_path / "never").exists()


# ------------------------------------------------------------------ pickling


def test_pickle_round_trip_keeps_only_settings(tmp_path):
    cache = FeatureCache(tmp_path, fsync=True, verbose=2)
    cache.put(_key(0), [1.0, 2.0])
    cache.get(_key(0))
    cache.get(_key(1))

    for clone in (pickle.loads(pickle.dumps(cache)), copy.deepcopy(cache)):
        assert clone.directory == cache.directory
        assert (clone.fsync, clone.verbose) == (True, 2)
        assert clone.stats == dict.fromkeys(cache.stats, 0)
        np.testing.assert_array_equal(clone.get(_key(0)), [1.0, 2.0])
        clone.put(_key(2), [3.0])
        np.testing.assert_array_equal(cache.get(_key(2)), [3.0])
    assert repr(cache) == f"FeatureCache({str(tmp_path)!r}, fsync=True, verbose=2)"


# --------------------------------------------------------------- concurrency

N_FEATURES = 2048  # 8 KiB entries: large enough that a non-atomic write shows


def _expected(key):
    rng = np.random.default_rng(int(key[:8], 16))
    return rng.standard_normal(N_FEATURES).astype(np.float32)


def _writer(directory, keys, deadline, queue):
    cache = FeatureCache(directory)
    n = 0
    while time.monotonic() < deadline or n < 2 * len(keys):
        for key in keys:
            cache.put(key, _expected(key))
            n += 1
    queue.put(dict(cache.stats))


def test_concurrent_writers_and_reader(tmp_path):
    methods = multiprocessing.get_all_start_methods()
    ctx = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    shared = [_key(f"shared-{i}") for i in range(6)]
    own = [[_key(f"own-{w}-{i}") for i in range(4)] for w in range(3)]
    expected = {key: _expected(key) for key in shared + sum(own, [])}

    queue = ctx.Queue()
    deadline = time.monotonic() + 1.0
    writers = [
        ctx.Process(
            target=_writer, args=(str(tmp_path), shared + own[w], deadline, queue)
        )
        for w in range(3)
    ]
    for p in writers:
        p.start()

    reader = FeatureCache(tmp_path)
    wrong = []
    reads = 0
    while any(p.is_alive() for p in writers) or reads < 10 * len(expected):
        for key, vector in expected.items():
            got = reader.get(key)
            reads += 1
            if got is not None and not np.array_equal(_bits(got), _bits(vector)):
                wrong.append(key)
    writer_stats = [queue.get(timeout=30) for _ in writers]
    for p in writers:
        p.join(timeout=30)
        assert p.exitcode == 0

    assert wrong == []
    # Atomic replacement means a reader never meets a partial entry.
    assert reader.stats["corrupt"] == 0
    assert reader.stats["hits"] > 0
    assert all(s["write_errors"] == 0 and s["writes"] > 0 for s in writer_stats)
    # Every key ends complete and correct, and no temporary file survives.
    assert len(reader) == len(expected)
    for key, vector in expected.items():
        got = FeatureCache(tmp_path).get(key)
        np.testing.assert_array_equal(_bits(got), _bits(vector))
    assert not [f for f in _all_files(tmp_path) if ".tmp-" in f]


# ------------------------------------------------------ trust boundary (issue 13)


def test_entries_are_keyed_with_a_private_secret(tmp_path):
    cache = FeatureCache(tmp_path)
    a, b = _key(0), _key(1)
    cache.put_many([a, b], np.array([[1.0, 2.0], [3.0, 4.0]]))
    secret = tmp_path / "CACHE_SECRET"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert len(bytes.fromhex(secret.read_text().strip())) == 32
    # Someone who can write the cache but not read the secret copies B's entry
    # over A's with A's header: an unkeyed checksum would accept it.
    path_a, path_b = _entry_path(cache, a), _entry_path(cache, b)
    forged = bytearray(open(path_b, "rb").read())
    forged[16:32] = hashlib.blake2b(
        bytes(forged[:16]) + a.encode() + bytes(forged[32:]), digest_size=16,
        person=b"skacd-cache").digest()
    open(path_a, "wb").write(bytes(forged))
    fresh = FeatureCache(tmp_path)
    with pytest.warns(UserWarning, match=r"removed the bad entry .*" + a[:12]
                      + r".*checksum mismatch "
                      r"\(damaged, or not written by this cache\)"):
        assert fresh.get(a) is None
    np.testing.assert_array_equal(fresh.get(b), [3.0, 4.0])
    assert not os.path.exists(path_a)  # removed; the next put stores it again


def test_fifo_and_device_entries_are_bad_entries_not_hangs(tmp_path):
    cache = FeatureCache(tmp_path)
    cache.put(_key(9), [0.0])
    fifo, device = _entry_path(cache, _key(0)), _entry_path(cache, _key(1))
    os.makedirs(os.path.dirname(fifo), exist_ok=True)
    os.makedirs(os.path.dirname(device), exist_ok=True)
    os.mkfifo(fifo)
    os.symlink("/dev/zero", device)
    with pytest.warns(UserWarning, match="not a regular file"):
        assert cache.get_many([_key(0), _key(1)]) == [None, None]
    assert cache.stats["corrupt"] == 2
    assert not os.path.lexists(fifo) and not os.path.lexists(device)


def test_a_nan_entry_is_recomputed_by_the_featurizer(tmp_path, tiny_clip):
    from skacd import CLIPFeaturizer

    rng = np.random.default_rng(0)
    X = [rng.integers(0, 256, (32, 32, 3), dtype=np.uint8) for _ in range(2)]
    featurizer = CLIPFeaturizer("skacd-tiny-ViT", pretrained=None, device="cpu",
                                num_workers=0, cache=str(tmp_path))
    reference = featurizer.fit_transform(X)
    cache = FeatureCache(tmp_path)
    (path,) = [p for p in cache._entry_paths()][:1]
    key = os.path.basename(path)[: -len(".skf")]
    cache.put(key, np.full(reference.shape[1], np.nan))  # a valid, keyed NaN entry
    result = featurizer.featurize(X)
    assert result.n_cached == 1
    np.testing.assert_allclose(result.features, reference, rtol=1e-5, atol=1e-6)
