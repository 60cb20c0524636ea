"""The one encoder cache: one load per key, however many threads ask, and a
load never blocks the threads that want another, already loaded encoder."""

import threading
from collections import OrderedDict

import pytest
import torch

from skacd.featurizers import _encoder


@pytest.fixture
def empty_cache(monkeypatch):
    monkeypatch.setattr(_encoder, "_ENCODER_CACHE", OrderedDict())
    monkeypatch.setattr(_encoder, "_KEY_LOCKS", {})


def _encoder_record(width=4):
    return _encoder.Encoder(
        module=torch.nn.Linear(width, width), preprocess=None, embed_dim=width,
        identity={"width": width},
    )


def test_concurrent_requests_for_one_key_load_it_once(empty_cache):
    builds = []
    started = threading.Barrier(4)

    def build():
        builds.append(threading.get_ident())
        return _encoder_record()

    results = []

    def ask():
        started.wait()
        results.append(_encoder.cached_encoder(("k",), build))

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(builds) == 1
    assert len(results) == 4 and all(r is results[0] for r in results)


def test_a_slow_load_does_not_block_another_cached_encoder(empty_cache):
    loaded = _encoder.cached_encoder(("fast",), _encoder_record)
    in_build, release = threading.Event(), threading.Event()

    def slow_build():
        in_build.set()
        assert release.wait(timeout=30)
        return _encoder_record(8)

    slow = threading.Thread(
        target=_encoder.cached_encoder, args=(("slow",), slow_build)
    )
    slow.start()
    try:
        assert in_build.wait(timeout=30)
        got = []
        other = threading.Thread(
            target=lambda: got.append(
                _encoder.cached_encoder(("fast",), _encoder_record)
            )
        )
        other.start()
        other.join(timeout=10)
        assert got == [loaded]  # served while the slow load still runs
    finally:
        release.set()
        slow.join(timeout=30)
    assert ("slow",) in _encoder._ENCODER_CACHE


def test_a_failed_load_is_tried_again(empty_cache):
    def failing():
        raise OSError("weights unreachable")

    with pytest.raises(OSError, match="unreachable"):
        _encoder.cached_encoder(("k",), failing)
    assert ("k",) not in _encoder._ENCODER_CACHE
    assert _encoder.cached_encoder(("k",), _encoder_record).embed_dim == 4
