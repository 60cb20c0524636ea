"""skacd.distributed on a LocalCluster of 2 worker processes.

One cluster for the whole module (starting one costs seconds). The featurizer
is the tiny random open_clip model; the images are small PNGs made here.
"""

import contextlib
import logging
import os
import sys
import time
import warnings

import joblib
import numpy as np
import pytest
import torch
from numpy.testing import assert_array_equal
from PIL import Image
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_validate
from sklearn.pipeline import make_pipeline

from skacd import AttributionClassifier, AttributionSpace, CLIPFeaturizer
from skacd.datasets import make_generator_manifolds
from skacd.exceptions import ImageLoadError, ImageLoadWarning

distributed = pytest.importorskip("distributed")
skacd_distributed = pytest.importorskip("skacd.distributed")

BATCH = 4
N_IMAGES = 22  # not a multiple of BATCH: the last chunk is short


def tiny(**params):
    params = {"device": "cpu", "num_workers": 0, "batch_size": BATCH, **params}
    return CLIPFeaturizer("skacd-tiny-ViT", pretrained=None, **params)


# The classes below travel to the workers by value (see the client fixture), so
# the workers need not import this test module.


class KillWorkerOnce:
    """An identity image transform that kills the first worker process to call it."""

    def __init__(self, flag):
        self.flag = flag

    def __call__(self, image):
        try:
            fd = os.open(self.flag, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return image
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)
        os._exit(1)  # the worker process dies mid-chunk

    def __repr__(self):
        return "KillWorkerOnce()"


class FlakyFeaturizer(CLIPFeaturizer):
    """Fails a whole chunk: always with a ``poison*`` file, once with ``flaky*``."""

    def featurize(self, X):
        for item in X:
            name = os.path.basename(str(item))
            if name.startswith("poison"):
                with open(str(item) + ".attempts", "a") as f:
                    f.write(f"{os.getpid()}\n")
                raise RuntimeError(f"simulated failure on {name}")
            if name.startswith("flaky") and not os.path.exists(str(item) + ".failed"):
                open(str(item) + ".failed", "w").close()
                raise RuntimeError(f"simulated transient failure on {name}")
        return super().featurize(X)


def write_images(directory, names, seed=0):
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in names:
        pixels = rng.integers(0, 256, (36, 36, 3), dtype=np.uint8)
        path = directory / name
        Image.fromarray(pixels).save(path)
        paths.append(str(path))
    return paths


@pytest.fixture(scope="module")
def client():
    import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    try:
        with distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",
            silence_logs=logging.ERROR,
        ) as cluster, distributed.Client(cluster, set_as_default=False) as client:
            yield client
    finally:
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    return write_images(
        tmp_path_factory.mktemp("images"), [f"{i:03d}.png" for i in range(N_IMAGES)]
    )


@pytest.fixture(scope="module")
def reference(images):
    """The single-process features, in this (the test) process."""
    return tiny().transform(images)


# -- no cluster needed --------------------------------------------------------


def test_missing_dask_says_how_to_install(monkeypatch, images):
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(ImportError, match=r'pip install "skacd\[dask\]"'):
        skacd_distributed.featurize(tiny(), images)


def test_no_client_is_a_clear_error(images):
    if distributed.client._get_global_client() is not None:  # pragma: no cover
        pytest.skip("another test left a default Dask client")
    with pytest.raises(ValueError, match="needs a Dask client"):
        skacd_distributed.featurize(tiny(), images)


def test_invalid_parameters(images):
    with pytest.raises(ValueError, match="chunk_size"):
        skacd_distributed.featurize(tiny(), images, chunk_size=0)
    with pytest.raises(TypeError, match="featurizer"):
        skacd_distributed.featurize("ViT-L-14", images)


# -- on the cluster -------------------------------------------------------------


@pytest.mark.slow
def test_bitwise_equal_to_one_process_whatever_the_chunk_size(
    client, images, reference
):
    featurizer = tiny(verbose=0)
    # 5 is rounded up to 8 (two batches); 1000 is one chunk.
    for chunk_size in (BATCH, 5, 3 * BATCH, 1000):
        X = skacd_distributed.featurize(
            featurizer, images, client, chunk_size=chunk_size, verbose=0
        )
        assert X.dtype == np.float32
        assert_array_equal(X, reference)
    # The default client, the progress bar, and the Dask array output.
    with client.as_current():
        lazy = skacd_distributed.featurize(
            featurizer, images, chunk_size=2 * BATCH, return_dask=True
        )
        assert type(lazy).__module__.startswith("dask.array")
        assert lazy.shape == reference.shape and lazy.chunks[0] == (8, 8, 6)
        assert_array_equal(lazy.compute(), reference)  # blocks come from the workers
    # The caller's featurizer is untouched (the workers got a clone).
    assert featurizer.num_workers == 0 and featurizer.on_error == "raise"

    # One encoder load per worker process, reused for every chunk and call.
    stats = client.run(skacd_distributed._worker_stats)
    assert sum(s["chunks"] for s in stats.values()) == 6 + 3 + 2 + 1 + 3
    for s in stats.values():
        assert s["encoder_loads"] == (1 if s["chunks"] else 0), stats


def test_threads_of_one_worker_share_one_encoder(images, reference):
    # An in-process worker with 3 threads: concurrent chunks load one encoder.
    from skacd.featurizers._encoder import _ENCODER_CACHE

    _ENCODER_CACHE.clear()
    loads = skacd_distributed._WORKER_STATS["encoder_loads"]
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=3, processes=False, dashboard_address=":0",
        silence_logs=logging.ERROR,
    ) as cluster, distributed.Client(cluster, set_as_default=False) as client:
        X = skacd_distributed.featurize(
            tiny(), images, client, chunk_size=BATCH, verbose=0
        )
    assert_array_equal(X, reference)
    assert skacd_distributed._WORKER_STATS["encoder_loads"] - loads == 1


# -- model selection under joblib's Dask backend ---------------------------------


def _search():
    pipeline = make_pipeline(
        AttributionSpace(
            latent_dim=4, hidden_layer_sizes=(16,), max_epochs=8, cv=2,
            device="cpu", random_state=0,
        ),
        AttributionClassifier(
            hidden_layer_sizes=(8,), max_epochs=20, learning_rate=1e-2,
            device="cpu", random_state=0,
        ),
    )
    grid = {
        "attributionspace__latent_dim": [2, 8],
        "attributionclassifier__hidden_layer_sizes": [(), (8,)],
    }
    return GridSearchCV(
        pipeline, grid, cv=StratifiedKFold(3), scoring="roc_auc", n_jobs=-1,
        refit=False,
    )


@contextlib.contextmanager
def one_torch_thread():
    """Fit locally on one thread, as the workers do (faster on a loaded machine)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@pytest.mark.slow
def test_grid_search_under_dask_selects_what_local_selects(client):
    X, y = make_generator_manifolds(
        n_samples=150, n_features=12, generator_shift=0.15, noise=0.3, random_state=0
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning at max_epochs
        with client.as_current(), joblib.parallel_backend("dask"):
            remote = _search().fit(X, y)
            cv_remote = cross_validate(
                _search().estimator, X, y, cv=2, return_estimator=True
            )
        with one_torch_thread():
            local = _search().fit(X, y)
            cv_local = cross_validate(
                _search().estimator, X, y, cv=2, return_estimator=True
            )

    assert remote.best_params_ == local.best_params_
    for key in ("mean_test_score", "split0_test_score", "rank_test_score"):
        assert_array_equal(remote.cv_results_[key], local.cv_results_[key])
    # Estimators fitted in worker processes come back with their torch state.
    for est_remote, est_local in zip(cv_remote["estimator"], cv_local["estimator"]):
        assert_array_equal(
            est_remote.decision_function(X), est_local.decision_function(X)
        )
    assert_array_equal(cv_remote["test_score"], cv_local["test_score"])


# -- the cache, bad inputs, lost workers, failing chunks ------------------------


def test_feature_cache_is_shared_by_the_workers(client, images, reference, tmp_path):
    cache = tmp_path / "cache"
    first = skacd_distributed.featurize(
        tiny(cache=str(cache)), images, client, chunk_size=BATCH, return_result=True,
        verbose=0,
    )
    assert first.n_cached == 0 and not first.errors
    assert_array_equal(first.features, reference)
    assert len(list(cache.glob("*/*.skf"))) == N_IMAGES
    # Entries the workers wrote serve this process and a second cluster run.
    local = tiny(cache=str(cache)).featurize(images)
    assert local.n_cached == N_IMAGES
    assert_array_equal(local.features, reference)
    again = skacd_distributed.featurize(
        tiny(cache=str(cache)), images, client, return_result=True, verbose=0
    )
    assert again.n_cached == N_IMAGES
    assert_array_equal(again.features, reference)


def test_bad_images_are_reported_at_their_input_position(client, images, tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    paths = images[:6] + [str(broken)] + images[6:10] + [str(tmp_path / "missing.png")]
    expected = tiny(on_error="skip").featurize(paths)

    with pytest.warns(ImageLoadWarning, match="broken.png"):
        X = skacd_distributed.featurize(
            tiny(on_error="skip"), paths, client, chunk_size=BATCH, verbose=0
        )
    assert_array_equal(X, expected.features)  # NaN rows compare equal here
    result = skacd_distributed.featurize(
        tiny(), paths, client, on_error="skip", return_result=True, verbose=0
    )
    assert sorted(result.errors) == sorted(expected.errors) == [6, 11]

    with pytest.raises(ImageLoadError, match="broken.png|missing.png"):
        skacd_distributed.featurize(tiny(), paths, client, verbose=0)


def test_worker_killed_mid_run_still_gives_complete_ordered_results(
    client, images, reference, tmp_path
):
    flag = tmp_path / "killed"
    stats = client.run(skacd_distributed._worker_stats)
    pids_before = {s["pid"] for s in stats.values()}
    featurizer = tiny(image_transform=KillWorkerOnce(str(flag)))
    X = skacd_distributed.featurize(
        featurizer, images, client, chunk_size=BATCH, verbose=0
    )
    assert flag.exists(), "no worker was killed"
    assert int(flag.read_text()) in pids_before
    assert_array_equal(X, reference)
    # a restarted worker imports torch again: slow on a loaded 2-core machine
    client.wait_for_workers(2, timeout=300)


@pytest.mark.slow
def test_dask_output_survives_losing_a_worker(client, images, reference):
    lazy = skacd_distributed.featurize(
        tiny(), images, client, chunk_size=BATCH, return_dask=True, verbose=0
    )
    holders = {addr for addrs in client.who_has().values() for addr in addrs}
    victim = sorted(holders)[0]
    try:
        client.run(os._exit, 1, workers=[victim])
    except Exception:  # the worker dies before it can answer
        pass
    deadline = time.monotonic() + 60
    while victim in client.scheduler_info()["workers"]:
        assert time.monotonic() < deadline, "the killed worker is still listed"
        time.sleep(0.2)
    # Its blocks are recomputed from their chunk tasks (the array keeps the
    # scattered featurizer alive for that).
    with client.as_current():
        assert_array_equal(lazy.compute(), reference)
    # a restarted worker imports torch again: slow on a loaded 2-core machine
    client.wait_for_workers(2, timeout=300)


def test_failing_chunk_is_retried_then_reported(client, tmp_path, reference, images):
    names = [f"{i:03d}.png" for i in range(12)]
    names[5] = "poison.png"  # chunk 1 always fails
    names[9] = "flaky.png"  # chunk 2 fails once, then succeeds
    paths = write_images(tmp_path, names, seed=1)
    expected = tiny().transform(paths)

    with pytest.warns(ImageLoadWarning, match="1 chunk.*failed"):
        result = skacd_distributed.featurize(
            FlakyFeaturizer("skacd-tiny-ViT", pretrained=None, device="cpu",
                            num_workers=0, batch_size=BATCH, on_error="skip"),
            paths, client, chunk_size=BATCH, retries=1, verbose=0,
        )
    attempts = (tmp_path / "poison.png.attempts").read_text().split()
    assert len(attempts) == 2  # the first try and one retry
    assert np.isnan(result[4:8]).all()
    assert_array_equal(result[:4], expected[:4])
    assert_array_equal(result[8:], expected[8:])  # the flaky chunk came back

    flaky = FlakyFeaturizer("skacd-tiny-ViT", pretrained=None, device="cpu",
                            num_workers=0, batch_size=BATCH)
    out = skacd_distributed.featurize(
        flaky, paths, client, chunk_size=BATCH, retries=0, on_error="skip",
        return_result=True, verbose=0,
    )
    assert sorted(out.errors) == [4, 5, 6, 7]
    assert "poison.png" in str(out.errors[5]) and "chunk 1 failed" in str(out.errors[5])
    with pytest.raises(RuntimeError, match=r"(?s)Chunk 1 \(inputs 4 to 7.*poison\.png"):
        skacd_distributed.featurize(flaky, paths, client, chunk_size=BATCH,
                                    retries=0, verbose=0)
