"""Featurize images on a Dask cluster. The only module that imports dask.

:func:`featurize` splits a list of images into chunks and embeds each chunk
on a Dask worker with a frozen skacd featurizer. Each worker process loads
the encoder once and reuses it for every chunk it runs; a worker with a GPU
uses it; failed chunks are retried; the features come back in input order.

Model selection needs nothing from this module: scikit-learn's
``GridSearchCV`` and ``cross_validate`` run on a Dask cluster under
``with joblib.parallel_backend("dask"):`` (see ``docs/scaling.rst`` and
``examples/dask_grid_search.py``).

``import skacd`` never imports dask; calling :func:`featurize` without
``dask[distributed]`` installed raises an :class:`ImportError` that says
``pip install "skacd[dask]"``.
"""

import os
import threading
import uuid
import warnings
from numbers import Integral

import numpy as np
from sklearn.base import clone

from ._compat import Interval, StrOptions, validate_params
from .exceptions import ImageLoadError, ImageLoadWarning
from .featurizers._base import BaseFeaturizer
from .featurizers._encoder import loads_in_this_thread
from .featurizers._images import describe_item
from .featurizers._loading import as_items

__all__ = ["featurize"]

_INSTALL_HINT = (
    'skacd.distributed needs Dask\'s distributed scheduler: pip install "skacd[dask]" '
    '(or pip install "dask[distributed]").'
)

# Worker-side counters, which the tests read with ``client.run``. Concurrent
# threads of a worker load an encoder once: the encoder cache is thread-safe.
_WORKER_STATS = {"encoder_loads": 0, "chunks": 0}
_WORKER_STATS_LOCK = threading.Lock()  # a worker runs chunks in threads


def _import_distributed():
    """Return the ``distributed`` module, or raise an ImportError saying how."""
    try:
        import distributed
    except ImportError as exc:
        raise ImportError(_INSTALL_HINT) from exc
    return distributed


def _import_dask_array():
    try:
        import dask.array as da
    except ImportError as exc:  # dask[array] needs numpy only, but be explicit
        raise ImportError(
            "featurize(..., return_dask=True) needs dask.array: "
            'pip install "skacd[dask]".'
        ) from exc
    return da


def _default_client(distributed):
    try:
        return distributed.get_client()
    except ValueError:
        raise ValueError(
            "skacd.distributed.featurize needs a Dask client and none is active. "
            "Pass client=..., or create one first: "
            "`from dask.distributed import Client; client = Client()` starts a "
            "LocalCluster on this machine, `Client('tcp://scheduler:8786')` connects "
            "to a running cluster."
        ) from None


# --------------------------------------------------------------------------
# worker side


def _worker_stats():
    """This process's counters (encoder loads, chunks run); for ``client.run``."""
    return dict(_WORKER_STATS, pid=os.getpid())


def _featurize_chunk(featurizer, items):
    """Embed one chunk on a worker; the encoder is loaded once per process.

    ``featurizer`` is the clone sent once to the cluster (``num_workers=0``,
    ``verbose=0``, ``on_error="skip"``). Its encoder lives in the featurizers'
    module-level cache, so every chunk that lands in this process reuses it.
    """
    # Arrays arrive read-only from Dask's deserialisation; torch warns on those.
    items = [
        np.array(item) if isinstance(item, np.ndarray) and not item.flags.writeable
        else item
        for item in items
    ]
    loads = loads_in_this_thread()
    try:
        result = featurizer.featurize(items)
    finally:
        with _WORKER_STATS_LOCK:
            _WORKER_STATS["encoder_loads"] += loads_in_this_thread() - loads
    with _WORKER_STATS_LOCK:
        _WORKER_STATS["chunks"] += 1
    return {
        "features": result.features,
        "errors": result.errors,
        "n_cached": result.n_cached,
        "pid": os.getpid(),
    }


def _chunk_meta(result):
    return {
        "errors": result["errors"],
        "n_cached": result["n_cached"],
        "n_features": result["features"].shape[1],
        "pid": result["pid"],
    }


def _chunk_features(result):
    return result["features"]


def _identity(obj):
    return obj


def _keep_featurizer(block, featurizer):
    """Return ``block``; the Dask array's graph holds the featurizer this way.

    A block lost with its worker is recomputed from its chunk task, which
    needs the featurizer: the array keeps it in the workers' memory for as
    long as the array lives, rather than having it recomputed.
    """
    return block


def _embed_dim(featurizer):
    return clone(featurizer).fit().n_features_out_  # loads the encoder, or raises


# --------------------------------------------------------------------------
# client side


def _describe_chunk(items, start, stop, limit=10):
    names = [describe_item(items[i], i) for i in range(start, min(stop, start + limit))]
    listed = "\n".join(f"  {name}" for name in names)
    more = (stop - start) - len(names)
    return listed + (f"\n  ... and {more} more" if more > 0 else "")


def _chunk_failure(items, start, stop, index, retries, exc):
    return RuntimeError(
        f"Chunk {index} (inputs {start} to {stop - 1}, {stop - start} images) failed "
        f"on the Dask cluster after {retries} retr{'y' if retries == 1 else 'ies'}: "
        f"{type(exc).__name__}: {exc}\nIts files:\n"
        + _describe_chunk(items, start, stop)
    )


@validate_params(
    {
        "featurizer": [BaseFeaturizer],
        "paths": "no_validation",  # as_items says what is accepted
        "client": "no_validation",
        "chunk_size": [Interval(Integral, 1, None, closed="left")],
        "retries": [Interval(Integral, 0, None, closed="left")],
        "return_dask": ["boolean"],
        "on_error": [StrOptions({"raise", "skip"}), None],
        "return_result": ["boolean"],
        "verbose": ["verbose"],
    },
    prefer_skip_nested_validation=True,
)
def featurize(
    featurizer,
    paths,
    client=None,
    *,
    chunk_size=1024,
    retries=2,
    return_dask=False,
    on_error=None,
    return_result=False,
    verbose=1,
):
    """Embed images with a frozen featurizer on a Dask cluster.

    The images are split into chunks of ``chunk_size``; each chunk is
    featurized on a Dask worker by a copy of ``featurizer``. The featurizer
    (its parameters, never its weights) is sent to the cluster once;
    each worker process loads the encoder on its first chunk and reuses it
    for every later chunk, as one process reuses it across calls.
    ``device="auto"`` is resolved on each worker, so a worker with a GPU
    uses it. Chunks that fail are retried; files of chunks that keep
    failing are reported like any image that cannot be loaded. The features
    come back in input order.

    .. versionadded:: 0.1

    Parameters
    ----------
    featurizer : CLIPFeaturizer, TimmFeaturizer or another BaseFeaturizer
        The encoder and its settings. It is cloned with ``num_workers=0``
        (workers decode images in their own process: DataLoader processes
        inside Dask worker processes compete with other workers for the
        cores and are fragile), ``verbose=0`` and ``on_error="skip"``; the
        original is left untouched. Its ``cache`` directory, if any, is used
        by every worker: on a shared file system workers share one feature
        cache, and images already embedded are not embedded again.
    paths : sequence of str or os.PathLike
        Image files, as the workers see them (a path on a shared file
        system). PIL images and arrays are accepted too but travel inside
        the task graph; prefer paths.
    client : distributed.Client, default=None
        The Dask client; ``None`` uses the current default client
        (``distributed.get_client()``) and raises a ``ValueError`` if there
        is none.
    chunk_size : int, default=1024
        Images per task, rounded up to a multiple of ``featurizer.batch_size``
        so that workers run exactly the batches one process would run: the
        features are then bitwise identical to ``featurizer.transform(paths)``
        on the same device and precision, whatever ``chunk_size``. Larger
        chunks mean less scheduling overhead; smaller ones mean better load
        balance, finer progress and less work redone when a worker dies.
    retries : int, default=2
        How many times a chunk whose task raised is rerun before its files
        are reported as failed. A chunk whose worker died is rescheduled by
        Dask itself, up to ``distributed.scheduler.allowed-failures`` times
        (3 by default), then counts as failed.
    return_dask : bool, default=False
        Return a :class:`dask.array.Array` whose blocks stay in the workers'
        memory (one block per chunk) instead of a NumPy array gathered on
        the client. The call still waits until every chunk is done, so
        failures are reported as for NumPy output.
    on_error : {"raise", "skip"} or None, default=None
        What to do with images that cannot be loaded and with chunks that
        keep failing. ``None`` uses ``featurizer.on_error``. ``"raise"``:
        the first :class:`~skacd.exceptions.ImageLoadError` reported by a
        chunk is raised (naming the file), or a ``RuntimeError`` naming the
        files of a chunk that failed after ``retries``; remaining chunks are
        cancelled. ``"skip"``: their rows are NaN and an
        :class:`~skacd.exceptions.ImageLoadWarning` lists them.
    return_result : bool, default=False
        Return a :class:`~skacd.featurizers.FeaturizeResult` (``features``,
        ``errors`` keyed by input position, ``n_cached``) instead of the
        features, with no warning for skipped images, as
        :meth:`~skacd.featurizers.BaseFeaturizer.featurize` does.
    verbose : int, default=1
        A progress bar on the client over completed chunks when positive.

    Returns
    -------
    features : ndarray or dask.array.Array of shape (n_samples, n_features_out)
        Float32, one row per input in input order. A
        :class:`~skacd.featurizers.FeaturizeResult` with
        ``return_result=True``.

    Raises
    ------
    ImportError
        If ``dask[distributed]`` is not installed.
    ValueError
        If ``client`` is ``None`` and there is no default client.

    See Also
    --------
    CLIPFeaturizer.transform : The same on one machine.

    Notes
    -----
    The encoder is loaded once per worker *process* and shared by its
    threads, which may run several chunks at once. Use one worker process
    per GPU, with a few threads to overlap decoding with the GPU, and one
    single-threaded process per core on CPU-only machines: Dask's nanny
    starts workers with ``OMP_NUM_THREADS=1``, so a CPU worker runs torch on
    one thread. See ``docs/scaling.rst``.

    Results match the single-process featurizer bitwise only for the same
    device and precision: a GPU worker with ``precision="auto"`` computes in
    bfloat16, a CPU worker in float32. Pin ``device`` and ``precision`` when
    a cluster mixes both.

    Examples
    --------
    >>> import numpy as np
    >>> from dask.distributed import Client, LocalCluster
    >>> from skacd import CLIPFeaturizer
    >>> from skacd import distributed
    >>> rng = np.random.RandomState(0)
    >>> images = rng.randint(0, 256, (6, 40, 40, 3), dtype=np.uint8)
    >>> featurizer = CLIPFeaturizer("skacd-tiny-ViT", pretrained=None, device="cpu",
    ...                             batch_size=2)
    >>> with LocalCluster(n_workers=1, processes=False) as cluster, Client(cluster):
    ...     X = distributed.featurize(featurizer, list(images), chunk_size=2, verbose=0)
    >>> X.shape
    (6, 32)
    >>> bool(np.array_equal(X, featurizer.transform(images)))
    True
    """
    distributed = _import_distributed()
    if client is None:
        client = _default_client(distributed)
    from .featurizers._base import FeaturizeResult

    featurizer._validate_params()  # fail here, not on every worker
    on_error = featurizer.on_error if on_error is None else on_error
    worker_featurizer = clone(featurizer).set_params(
        num_workers=0, verbose=0, on_error="skip"
    )
    items = as_items(paths)
    n = len(items)
    batch_size = worker_featurizer.batch_size
    chunk_size = -(-chunk_size // batch_size) * batch_size
    bounds = [(start, min(start + chunk_size, n)) for start in range(0, n, chunk_size)]

    run_id = uuid.uuid4().hex[:8]
    # The featurizer goes to the cluster once, as the result of a task rather
    # than scattered data: workers fetch it from each other, and the scheduler
    # can recompute it if every worker holding it dies (scattered data would
    # be lost for good, and with it every chunk that needs it again).
    remote = client.submit(
        _identity, worker_featurizer, key=f"skacd-featurizer-{run_id}", pure=False
    )
    results, metas = [], []
    for k, (start, stop) in enumerate(bounds):
        result = client.submit(
            _featurize_chunk,
            remote,
            items[start:stop],
            key=f"skacd-featurize-{run_id}-{k}",
            retries=retries,
            pure=False,
        )
        results.append(result)
        if return_dask:
            metas.append(
                client.submit(_chunk_meta, result, key=f"skacd-meta-{run_id}-{k}")
            )
    watched = metas if return_dask else results
    index_of = {future.key: k for k, future in enumerate(watched)}

    features = None if return_dask else [None] * len(bounds)
    blocks = [None] * len(bounds)
    n_features = None
    errors, failed_chunks, n_cached = {}, [], 0

    progress = None
    if verbose:
        from ._progress import progress as _progress

        progress = _progress(n, "skacd.distributed.featurize", "img")
    try:
        for future in distributed.as_completed(watched, loop=client.loop):
            k = index_of[future.key]
            start, stop = bounds[k]
            if future.status != "finished":  # "error", or "cancelled" by Dask
                try:
                    exc = future.exception()
                except Exception as cancelled:
                    exc = cancelled
                if on_error == "raise":
                    raise _chunk_failure(items, start, stop, k, retries, exc) from exc
                failed_chunks.append(k)
                reason = (
                    f"its chunk {k} failed on the Dask cluster after {retries} "
                    f"retries: {type(exc).__name__}: {exc}"
                )
                for i in range(start, stop):
                    errors[i] = ImageLoadError(describe_item(items[i], i), reason)
            else:
                chunk = future.result()
                chunk_errors = {start + i: e for i, e in chunk["errors"].items()}
                if chunk_errors and on_error == "raise":
                    raise chunk_errors[min(chunk_errors)]
                errors.update(chunk_errors)
                n_cached += chunk["n_cached"]
                if return_dask:
                    n_features = chunk["n_features"]
                    blocks[k] = client.submit(
                        _chunk_features,
                        results[k],
                        key=f"skacd-features-{run_id}-{k}",
                    )
                else:
                    features[k] = chunk["features"]
                    n_features = chunk["features"].shape[1]
            # Release what the client no longer needs (the block futures keep
            # their chunk alive on the workers).
            watched[k] = None
            results[k] = None
            if progress is not None:
                progress.update(stop - start)
                if failed_chunks:
                    progress.set_postfix(failed_chunks=len(failed_chunks))
    except BaseException:
        client.cancel([f for f in results + metas + blocks if f is not None])
        raise
    finally:
        if progress is not None:
            progress.close()

    if n_features is None:  # no input, or no chunk succeeded: ask a worker
        try:
            n_features = client.submit(_embed_dim, remote, pure=False).result()
        except Exception as exc:
            raise RuntimeError(
                "No chunk was featurized and the encoder cannot be loaded on a "
                f"worker: {type(exc).__name__}: {exc}"
            ) from exc

    if return_dask:
        da = _import_dask_array()
        from dask import delayed

        parts = []
        for k, (start, stop) in enumerate(bounds):
            if blocks[k] is None:
                parts.append(
                    da.full((stop - start, n_features), np.nan, dtype=np.float32)
                )
            else:
                block = delayed(_keep_featurizer, pure=True)(blocks[k], remote)
                parts.append(
                    da.from_delayed(block, (stop - start, n_features), np.float32)
                )
        if parts:
            out = da.concatenate(parts, axis=0)
        else:
            out = da.zeros((0, n_features), dtype=np.float32)
    else:
        out = np.full((n, n_features), np.nan, dtype=np.float32)
        for k, (start, stop) in enumerate(bounds):
            if features[k] is not None:
                out[start:stop] = features[k]

    if return_result:
        return FeaturizeResult(features=out, errors=errors, n_cached=n_cached)
    if errors:
        listed = "\n".join(f"  {errors[p]}" for p in sorted(errors)[:20])
        more = len(errors) - 20
        note = (
            f" ({len(failed_chunks)} chunk(s) failed on the cluster)"
            if failed_chunks
            else ""
        )
        warnings.warn(
            f"{len(errors)} image(s) could not be featurized{note}; their rows are "
            f"NaN:\n{listed}" + (f"\n  ... and {more} more" if more > 0 else ""),
            ImageLoadWarning,
            stacklevel=3,  # the caller, past validate_params' wrapper
        )
    return out
