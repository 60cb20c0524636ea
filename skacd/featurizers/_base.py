"""The base of every featurizer: inputs, batching, caching and bad-input policy.

Subclasses only say how to build the frozen encoder (``_create_encoder``);
everything about images and batches lives here, once.
"""

import contextlib
import functools
import os
import sys
import warnings
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from numbers import Integral

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin

from .._compat import Interval, StrOptions, _fit_context, validate_params  # noqa: F401
from .._constraints import DeviceName
from .._torch import resolve_device
from ..cache import FeatureCache
from ..exceptions import ImageLoadError, ImageLoadWarning
from ._images import describe_item, limit_aspect_ratio, load_image, read_bytes
from ._layers import EMBEDDING, block_of, canonical_layers
from ._preprocessing import check_preprocessing

__all__ = ["BaseFeaturizer", "FeaturizeResult"]

PRECISIONS = {
    "auto",
    "float32",
    "bfloat16",
    "float16",
    "int8",
    "onnx-float32",
    "onnx-int8",
}
#: Precisions that run on the CPU only.
CPU_ONLY_PRECISIONS = {"int8", "onnx-float32", "onnx-int8"}

# Loaded encoders, shared by clones of one featurizer (GridSearchCV clones the
# pipeline for every candidate and fold; reloading CLIP each time would dominate).
_ENCODER_CACHE = OrderedDict()
#: The memory the loaded encoders kept for reuse may take, in bytes (4 GiB):
#: the least recently used ones are dropped beyond it, the one in use never.
#: Set ``skacd.featurizers.ENCODER_CACHE_BYTES`` to change it; with
#: ``verbose >= 1`` a featurizer says when it reloads a dropped encoder.
ENCODER_CACHE_BYTES = 4 * 2**30
_EVICTED = set()  # keys of encoders dropped from the cache, to report reloads
# The output columns of each architecture and readout, built without weights.
_OUTPUT_COLUMNS = {}


def _encoder_cache_budget():
    package = sys.modules.get("skacd.featurizers")
    return getattr(package, "ENCODER_CACHE_BYTES", ENCODER_CACHE_BYTES)


def encoder_nbytes(encoder):
    """The memory an encoder's weights take: its tensors, and ONNX models."""
    total, seen = 0, set()
    for tensor in list(encoder.module.state_dict().values()):
        if isinstance(tensor, torch.Tensor) and tensor.data_ptr() not in seen:
            seen.add(tensor.data_ptr())
            total += tensor.numel() * tensor.element_size()
    for sub in encoder.module.modules():
        total += getattr(sub, "model_size", 0)  # OnnxModule: its model bytes
        packed = getattr(sub, "_packed_params", None)  # dynamic int8 Linear
        if packed is not None and hasattr(sub, "weight"):
            try:
                weight = sub.weight()
                total += weight.numel() * weight.element_size()
            except Exception:  # pragma: no cover - another packing
                pass
    return total


@dataclass
class Encoder:
    """A loaded, frozen encoder and what describes it."""

    module: torch.nn.Module
    preprocess: object
    embed_dim: int
    identity: dict
    forward: object = None
    #: Memory layout the forward pass prefers (channels-last for CNNs on CPU).
    memory_format: torch.memory_format = torch.contiguous_format
    #: ``preprocess`` split into a PIL part run by the DataLoader workers and a
    #: batched uint8 -> normalised float stage (see :class:`_PixelStage`), or
    #: None when ``preprocess`` is not the usual ``[..., ToTensor, Normalize]``.
    pixel_stage: object = None
    #: Column names when the encoder reads intermediate layers (``layers``),
    #: else None (columns are then named ``<classname><i>``).
    feature_names: list = None
    #: Bytes the weights take (see :func:`encoder_nbytes`), for the cache budget.
    nbytes: int = 0

    @functools.cached_property  # read once per batch; feature_names never change
    def embedding_columns(self):
        """The columns holding the final embedding (what ``normalize`` scales)."""
        if self.feature_names is None:
            return slice(None)
        rows = [i for i, n in enumerate(self.feature_names) if block_of(n) == EMBEDDING]
        return slice(rows[0], rows[-1] + 1) if rows else None


@dataclass
class FeaturizeResult:
    """What :meth:`BaseFeaturizer.featurize` returns.

    Attributes
    ----------
    features : ndarray of shape (n_samples, embed_dim), dtype float32
        One row per input, in input order; rows of failed inputs are NaN.
    errors : dict of int to ImageLoadError
        Position of each input that could not be loaded; ``str(error)`` names
        the file and the reason.
    n_cached : int
        Rows served from the feature cache.
    """

    features: np.ndarray
    errors: dict = field(default_factory=dict)
    n_cached: int = 0


def as_items(X):
    """Turn the accepted input containers into a list of items."""
    if isinstance(X, (str, os.PathLike)):
        raise ValueError(
            "X must be a sequence of images (file paths, PIL images or arrays); got "
            f"a single path {os.fspath(X)!r}. Wrap it in a list: [path]."
        )
    if isinstance(X, np.ndarray) and X.dtype == np.uint8 and X.ndim in (3, 4):
        return list(X)  # a stack of images (n, H, W[, C])
    if hasattr(X, "tolist") and not isinstance(X, np.ndarray):  # pandas Series
        X = X.tolist()
    if isinstance(X, np.ndarray):
        if X.ndim != 1:
            raise ValueError(
                "X must be a 1-D sequence of images or a uint8 array of shape "
                f"(n, H, W[, C]); got an array of shape {X.shape} and dtype {X.dtype}."
            )
        return X.tolist()
    try:
        return list(X)
    except TypeError:
        raise ValueError(
            f"X must be a sequence of images; got {type(X).__name__}."
        ) from None


def _content_for_key(item, data):
    """The bytes a cache key is computed from, for one item."""
    if data is not None:
        return data
    from PIL import Image

    if isinstance(item, Image.Image):
        header = f"PIL:{item.mode}:{item.size}".encode()
        return header + item.tobytes()
    array = np.ascontiguousarray(item)
    header = f"array:{array.dtype}:{array.shape}".encode()
    return header + array.tobytes()


class _PixelStage:
    """``preprocess`` = PIL transforms, then ``ToTensor``, then ``Normalize``.

    Workers run only the PIL part and hand over ``uint8`` pixels (a quarter of
    the bytes of float32); the conversion to float, the scaling by 1/255 and
    the normalisation run once per batch, on the device, with the very same
    float32 operations as ``ToTensor`` and ``Normalize`` (so the features are
    unchanged).
    """

    def __init__(self, pil, mean, std):
        self.pil = pil
        self.mean = torch.as_tensor(mean, dtype=torch.float32).reshape(1, -1, 1, 1)
        self.std = torch.as_tensor(std, dtype=torch.float32).reshape(1, -1, 1, 1)

    @classmethod
    def from_preprocess(cls, preprocess):
        """The split of ``preprocess``, or None if it does not have that shape."""
        from torchvision.transforms import Compose, Normalize

        steps = getattr(preprocess, "transforms", None)
        if not isinstance(preprocess, Compose) or not steps or len(steps) < 2:
            return None
        to_tensor, normalize = steps[-2], steps[-1]
        if type(to_tensor).__name__ not in ("ToTensor", "MaybeToTensor") or not (
            type(normalize) is Normalize
        ):
            return None
        stage = cls(Compose(list(steps[:-2])), normalize.mean, normalize.std)
        # Check the split on a small image: any custom step that does not
        # behave as assumed keeps the plain per-image preprocess.
        from PIL import Image

        rng = np.random.RandomState(0)
        probe = Image.fromarray(rng.randint(0, 256, (37, 53, 3), dtype=np.uint8))
        try:
            expected = preprocess(probe)
            pixels = stage.pixels(probe)
            got = stage(pixels[None], torch.device("cpu"), torch.contiguous_format)[0]
        except Exception:
            return None
        if got.shape != expected.shape or not torch.equal(got, expected):
            return None
        return stage

    def pixels(self, image):
        """An RGB PIL image -> its (H, W, 3) uint8 tensor after the PIL part."""
        image = self.pil(image)
        if not hasattr(image, "mode") or image.mode != "RGB":
            raise TypeError(f"expected an RGB PIL image, got {type(image).__name__}")
        return torch.from_numpy(np.array(image))  # a writable copy, as ToTensor

    def __call__(self, batch, device, memory_format):
        """(B, H, W, 3) uint8 on ``device`` -> normalised (B, 3, H, W) float32."""
        if self.mean.device != device:
            self.mean, self.std = self.mean.to(device), self.std.to(device)
        x = batch.permute(0, 3, 1, 2).float()  # channels-last layout, like the input
        x = x.contiguous(memory_format=memory_format)
        return x.div_(255).sub_(self.mean).div_(self.std)


#: CPUs with at most this many cores decode in threads of the main process,
#: one batch at a time, instead of in DataLoader worker processes.
_THREADED_DECODE_MAX_CORES = 4
_MAX_WORKERS_CPU = 8
_MAX_WORKERS_CUDA = 16


def _available_cores():
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return os.cpu_count() or 1


class _ImageDataset(torch.utils.data.Dataset):
    def __init__(
        self, items, positions, preprocess, image_transform, pixel_stage=None, pool=None
    ):
        self.items = items
        self.positions = positions
        self.preprocess = preprocess
        self.image_transform = image_transform
        self.pixel_stage = pixel_stage
        # A thread pool decoding the images of one batch in parallel (Pillow
        # releases the GIL while decoding and resizing), in the process that
        # runs the model: used instead of worker processes on small CPUs.
        self.pool = pool

    def __len__(self):
        return len(self.positions)

    def __getitems__(self, indices):
        if self.pool is not None and len(indices) > 1:
            return list(self.pool.map(self.__getitem__, indices))
        return [self[i] for i in indices]

    def __getitem__(self, i):
        position = self.positions[i]
        item = self.items[position]
        try:
            image = load_image(item, index=position)
            if self.image_transform is not None:
                image = self.image_transform(image)
            image = limit_aspect_ratio(image)
            if self.pixel_stage is not None:
                return position, self.pixel_stage.pixels(image), None
            return position, self.preprocess(image), None
        except ImageLoadError as exc:
            return position, None, exc
        except Exception as exc:  # preprocessing of a decoded image failed
            return position, None, ImageLoadError(describe_item(item, position), repr(exc))


def _collate(samples):
    ok = [(p, t) for p, t, e in samples if e is None]
    failed = {p: e for p, _, e in samples if e is not None}
    positions = [p for p, _ in ok]
    batch = torch.stack([t for _, t in ok]) if ok else None
    return positions, batch, failed


class BaseFeaturizer(TransformerMixin, BaseEstimator):
    """Shared machinery of the frozen image encoders. Not for direct use."""

    _parameter_constraints = {
        "device": [DeviceName(), torch.device],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "num_workers": [Interval(Integral, 0, None, closed="left"), StrOptions({"auto"})],
        "precision": [StrOptions(PRECISIONS)],
        "normalize": ["boolean"],
        "image_transform": [callable, None],
        "cache": [str, os.PathLike, FeatureCache, None],
        "on_error": [StrOptions({"raise", "skip"})],
        "layers": ["array-like", Interval(Integral, 0, None, closed="left"), str, None],
        "pooling": [str],
        "verbose": ["verbose"],
    }

    _feature_prefix = "feature"
    #: Column names of a layer read: ``<prefix><index>_<statistic><channel>``.
    _layer_prefix = "layer"

    # -- what subclasses provide -------------------------------------------

    def _create_encoder(self, device, precision):  # pragma: no cover - abstract
        """Return an :class:`Encoder` on ``device`` for ``precision``."""
        raise NotImplementedError

    def _encoder_key(self):  # pragma: no cover - abstract
        """A hashable description of the weights, for the in-process cache."""
        raise NotImplementedError

    def _blank_module(self, device):  # pragma: no cover - abstract
        """``(module, input size)``: the encoder's architecture, without weights.

        Built on ``device`` (the ``meta`` device: no memory, no weights file
        read), before any readout; the input size is ``(C, H, W)``.
        """
        raise NotImplementedError

    def _readout_module(self, module, readout):  # pragma: no cover - abstract
        """``module`` wrapped to return the pooled layers of ``readout``."""
        raise NotImplementedError

    def _embedding_width(self, module):  # pragma: no cover - abstract
        """The width of the final embedding ``module`` returns."""
        raise NotImplementedError

    def _readout(self):
        """``(sorted layer indices, whether the embedding is read)``, or None.

        None when ``layers`` is None: the encoder returns its final embedding.
        """
        if self.layers is None:
            return None
        return canonical_layers(self.layers)

    def _readout_key(self):
        readout = self._readout()
        if readout is None:
            return None
        return (tuple(readout[0]), readout[1], self.pooling)

    def _read_out(self, module, input_size):
        """``(module, column names or None, width)`` with the readout of ``layers``."""
        readout = self._readout()
        if readout is None:
            return module, None, self._embedding_width(module)
        module = self._readout_module(module, readout).eval()
        names = module.column_names(input_size, self._layer_prefix)
        return module, names, len(names)

    def _output_columns(self):
        """``(column names or None, width)`` of the output, without loading weights.

        From the architecture built on the meta device (on the CPU with random
        weights if an operation of the architecture has no meta kernel).
        """
        key = (type(self).__name__, self._encoder_key(), self._readout_key())
        if key not in _OUTPUT_COLUMNS:
            try:
                module, input_size = self._blank_module(torch.device("meta"))
                _, names, width = self._read_out(module, input_size)
            except (NotImplementedError, RuntimeError):
                module, input_size = self._blank_module(torch.device("cpu"))
                _, names, width = self._read_out(module, input_size)
            _OUTPUT_COLUMNS[key] = (names, width)
        return _OUTPUT_COLUMNS[key]

    def _preprocess_config(self):  # pragma: no cover - abstract
        """The preprocessing the encoder applies, as a dict, without loading weights.

        The same dict as ``_create_encoder`` puts in ``identity["preprocessing"]``.
        """
        raise NotImplementedError

    # -- estimator API -----------------------------------------------------

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X=None, y=None):
        """Load the frozen encoder. Nothing is learned from ``X``.

        Parameters
        ----------
        X : ignored
            Accepted for pipeline compatibility.
        y : ignored
            Accepted for pipeline compatibility.

        Returns
        -------
        self : object
            The featurizer, with ``device_``, ``precision_``,
            ``n_features_out_``, ``preprocessing_`` and ``encoder_identity_``
            set.
        """
        self.__dict__.pop("preprocessing_", None)  # a refit records anew
        encoder = self._get_encoder()
        self.device_ = str(self._device())
        self.precision_ = self._precision()
        self.n_features_out_ = encoder.embed_dim
        self.preprocessing_ = encoder.identity.get("preprocessing")
        self.encoder_identity_ = dict(encoder.identity)
        return self

    def fit_transform(self, X, y=None):
        """Featurize ``X`` (fitting loads the encoder; nothing is learned).

        Parameters
        ----------
        X : sequence of str, os.PathLike, PIL.Image.Image or ndarray
            Images.
        y : ignored
            Accepted for pipeline compatibility.

        Returns
        -------
        features : ndarray of shape (n_samples, n_features_out_), dtype float32
            One embedding per image.
        """
        return self.fit(X, y).transform(X)

    def transform(self, X):
        """Embed each image with the frozen encoder.

        Parameters
        ----------
        X : sequence of str, os.PathLike, PIL.Image.Image or ndarray
            Image file paths, PIL images, or uint8 arrays of shape (H, W),
            (H, W, 3) or (H, W, 4); a uint8 array of shape (n, H, W, 3) is
            read as n images. Grayscale, palette, RGBA, CMYK and 16-bit images
            become 8-bit RGB; EXIF orientation is applied.

        Returns
        -------
        features : ndarray of shape (n_samples, n_features_out_), dtype float32
            One embedding per image, in input order. With ``on_error="skip"``
            rows of images that could not be loaded are NaN and an
            :class:`~skacd.exceptions.ImageLoadWarning` lists them.

        Raises
        ------
        ImageLoadError
            With ``on_error="raise"``, for the first image that cannot be
            loaded, naming the file.
        """
        result = self.featurize(X)
        if result.errors:
            listed = "\n".join(
                f"  {result.errors[p]}" for p in sorted(result.errors)[:20]
            )
            more = len(result.errors) - 20
            warnings.warn(
                f"{len(result.errors)} image(s) could not be loaded; their rows are "
                f"NaN:\n{listed}" + (f"\n  ... and {more} more" if more > 0 else ""),
                ImageLoadWarning,
                stacklevel=2,
            )
        return result.features

    def featurize(self, X, out=None):
        """Embed images and report, rather than raise, per-image failures.

        The same as :meth:`transform` but returns a :class:`FeaturizeResult`
        with the features and a dict of the failed positions and reasons, and
        how many rows came from the cache. With ``on_error="raise"`` the
        first failure still raises.

        Parameters
        ----------
        X : sequence of str, os.PathLike, PIL.Image.Image or ndarray
            Images, as for :meth:`transform`.
        out : array-like of shape (n_samples, n_features_out_), default=None
            Where to write the features, batch by batch, instead of a new
            in-memory array: e.g. a memory-mapped ``.npy`` from
            :func:`numpy.lib.format.open_memmap`, so that featurizing a large
            folder holds only a few batches of images in memory and the
            features go to disk as they are computed. Rows of failed images
            are set to NaN; rows are written in input order of the batches.

            .. versionadded:: 0.1

        Returns
        -------
        result : FeaturizeResult
            ``features`` (``out`` itself when given), ``errors`` and
            ``n_cached``.
        """
        self._validate_params()
        items = as_items(X)
        encoder = self._get_encoder()
        # A featurizer fitted (or loaded) with one preprocessing never serves
        # features made with another: the steps after it were fitted on those.
        check_preprocessing(
            getattr(self, "preprocessing_", None),
            encoder.identity.get("preprocessing"),
            f"This {type(self).__name__}",
        )
        if out is None:
            features = np.full((len(items), encoder.embed_dim), np.nan, dtype=np.float32)
        else:
            if tuple(getattr(out, "shape", ())) != (len(items), encoder.embed_dim):
                raise ValueError(
                    f"out must have shape ({len(items)}, {encoder.embed_dim}) for "
                    f"{len(items)} images; got {getattr(out, 'shape', None)}."
                )
            features = out
        errors = {}

        cache, keys = self._cache_keys(items, encoder, errors)
        pending = [i for i in range(len(items)) if i not in errors]
        n_cached = 0
        if cache is not None and pending:
            hits = cache.get_many([keys[i] for i in pending])
            still = []
            for i, vector in zip(pending, hits):
                if (
                    vector is not None
                    and vector.shape == (encoder.embed_dim,)
                    and np.isfinite(vector).all()  # never a NaN score from the cache
                ):
                    features[i] = vector
                    n_cached += 1
                else:
                    still.append(i)
            pending = still

        if pending:
            self._run_encoder(encoder, items, pending, features, errors, cache, keys)
        if out is not None and errors:
            features[sorted(errors)] = np.nan
        return FeaturizeResult(features=features, errors=errors, n_cached=n_cached)

    # -- internals ---------------------------------------------------------

    def _device(self):
        return resolve_device(self.device)

    def _precision(self):
        if self.precision == "auto":
            return "bfloat16" if self._device().type == "cuda" else "float32"
        if self.precision in CPU_ONLY_PRECISIONS and self._device().type != "cpu":
            raise ValueError(
                f"precision={self.precision!r} runs on the CPU only; use "
                "device='cpu' or precision='bfloat16' on a GPU."
            )
        return self.precision

    def _get_encoder(self):
        device, precision = self._device(), self._precision()
        readout = self._readout()
        key = (type(self).__name__, self._encoder_key(), str(device), precision)
        key += (self._readout_key(),)
        encoder = _ENCODER_CACHE.get(key)
        if encoder is None:
            if key in _EVICTED and self.verbose:
                print(
                    f"[{type(self).__name__}] reloading the encoder {key[1]!r} "
                    f"({precision}, {device}): it was dropped from the encoder cache "
                    f"(skacd.featurizers.ENCODER_CACHE_BYTES={_encoder_cache_budget()}"
                    "); raise it to keep more encoders loaded.",
                    file=sys.stderr,
                )
            encoder = self._create_encoder(device, precision)
            encoder.module.eval().requires_grad_(False)
            encoder.pixel_stage = _PixelStage.from_preprocess(encoder.preprocess)
            encoder.identity = dict(
                encoder.identity,
                featurizer=type(self).__name__,
                precision=precision,
                device_type=device.type,
            )
            if readout is not None:  # absent for the default: old cache keys hold
                layers, embedding = readout
                encoder.identity["layers"] = layers + ([EMBEDDING] if embedding else [])
                encoder.identity["pooling"] = self.pooling
            encoder.nbytes = encoder_nbytes(encoder)
            _ENCODER_CACHE[key] = encoder
        else:
            _ENCODER_CACHE.move_to_end(key)
        budget = _encoder_cache_budget()
        while len(_ENCODER_CACHE) > 1 and sum(
            e.nbytes for e in _ENCODER_CACHE.values()
        ) > budget:
            evicted, _ = _ENCODER_CACHE.popitem(last=False)  # least recently used
            _EVICTED.add(evicted)
        return encoder

    def _feature_cache(self):
        if self.cache is None or isinstance(self.cache, FeatureCache):
            return self.cache
        return FeatureCache(self.cache)  # a directory (validated as str or PathLike)

    def _cache_identity(self, encoder):
        return dict(
            encoder.identity,
            normalize=bool(self.normalize),
            preprocess=repr(encoder.preprocess),
            image_transform=repr(self.image_transform),
        )

    def _cache_keys(self, items, encoder, errors):
        cache = self._feature_cache()
        if cache is None:
            return None, None
        identity = self._cache_identity(encoder)
        keys = {}
        for i, item in enumerate(items):
            data = None
            if isinstance(item, (str, os.PathLike)):
                try:
                    data = read_bytes(item)
                except ImageLoadError as exc:
                    if self.on_error == "raise":
                        raise
                    errors[i] = exc
                    continue
            keys[i] = cache.make_key(identity, _content_for_key(item, data))
        return cache, keys

    def _num_workers(self, n_batches):
        return self._loader_plan(n_batches, self._device(), True)[0]

    def _loader_plan(self, n_batches, device, threadable):
        """``(num_workers, decode_threads)`` for featurizing ``n_batches``."""
        cores = _available_cores()
        if self.num_workers != "auto":
            return self.num_workers, 0
        if device.type == "cpu" and threadable and cores <= _THREADED_DECODE_MAX_CORES:
            # Few cores: worker processes would run beside torch's intra-op
            # threads and stall them; decode each batch with all cores in turn.
            return 0, cores
        if n_batches < 2:
            return 0, 0
        limit = _MAX_WORKERS_CUDA if device.type == "cuda" else _MAX_WORKERS_CPU
        return max(1, min(cores - 1, limit)), 0

    def _run_encoder(self, encoder, items, positions, features, errors, cache, keys):
        device = self._device()
        n_batches = -(-len(positions) // self.batch_size)
        pixel_stage = encoder.pixel_stage
        num_workers, decode_threads = self._loader_plan(
            n_batches, device, pixel_stage is not None
        )
        with contextlib.ExitStack() as stack:
            pool = None
            if decode_threads > 1 and num_workers == 0:
                pool = stack.enter_context(
                    ThreadPoolExecutor(decode_threads, thread_name_prefix="skacd-decode")
                )
            loader = torch.utils.data.DataLoader(
                _ImageDataset(
                    items,
                    positions,
                    encoder.preprocess,
                    self.image_transform,
                    pixel_stage,
                    pool,
                ),
                batch_size=self.batch_size,
                shuffle=False,
                num_workers=num_workers,
                collate_fn=_collate,
                pin_memory=device.type == "cuda",
                persistent_workers=False,
                # Without its own generator a DataLoader draws its worker seed from
                # torch's global RNG, changing the caller's random state.
                generator=torch.Generator().manual_seed(0),
            )
            self._consume(loader, encoder, device, positions, features, errors, cache, keys)

    def _consume(self, loader, encoder, device, positions, features, errors, cache, keys):
        pixel_stage = encoder.pixel_stage
        progress = None
        if self.verbose:
            from .._progress import progress as _progress

            progress = _progress(len(positions), type(self).__name__, "img")
        forward = encoder.forward or encoder.module
        autocast = self._autocast(device)
        cuda = device.type == "cuda"

        def finish(batch_positions, out, copied):
            # On CUDA the copy to the host was queued behind the forward pass;
            # wait for it only now, after the next batch has been queued, so
            # that the GPU never idles while the host stores results.
            if copied is not None:
                copied.synchronize()
            out = out.numpy()
            features[batch_positions] = out
            if cache is not None:
                cache.put_many([keys[p] for p in batch_positions], out)
            if progress is not None:
                progress.update(len(batch_positions))

        queued = None
        try:
            with torch.inference_mode():
                for batch_positions, batch, failed in loader:
                    if failed:
                        if self.on_error == "raise":
                            raise failed[min(failed)]  # the computed batch is kept below
                        errors.update(failed)
                        if progress is not None:
                            progress.update(len(failed))
                    current = None
                    if batch is not None:
                        batch = batch.to(device, non_blocking=True)
                        if pixel_stage is not None:
                            batch = pixel_stage(batch, device, encoder.memory_format)
                        with autocast:
                            out = forward(batch)
                        out = out.float()
                        columns = encoder.embedding_columns
                        if self.normalize and columns is not None:
                            out[:, columns] = torch.nn.functional.normalize(
                                out[:, columns], dim=-1
                            )
                        copied = None
                        if cuda:
                            out = out.to("cpu", non_blocking=True)  # pinned
                            copied = torch.cuda.Event()
                            copied.record()
                        current = (batch_positions, out, copied)
                    done, queued = queued, current
                    if done is not None:
                        finish(*done)
                done, queued = queued, None
                if done is not None:
                    finish(*done)
        except BaseException:
            # Ctrl-C, a killed worker, a bad image with on_error="raise": store the
            # batch already computed, so that a rerun with the cache resumes after it.
            if queued is not None:
                try:
                    finish(*queued)
                except Exception:
                    pass
            raise
        finally:
            if progress is not None:
                progress.close()

    def _autocast(self, device):
        precision = self._precision()
        if precision in ("bfloat16", "float16"):
            return torch.autocast(device.type, dtype=getattr(torch, precision))
        return torch.autocast(device.type, enabled=False)

    def get_feature_names_out(self, input_features=None):
        """Output feature names.

        With ``layers=None``: ``<classname>0``, ``<classname>1``, ... With
        ``layers``: ``<block>_<statistic><channel>`` for each layer read
        (``stage2_mean7``, ``stage2_std7`` for a timm CNN, ``block5_cls3``
        for a CLIP ViT), then ``embedding0``, ... for the final embedding, so
        that :class:`~skacd.BlockSelector` can pick blocks by name.

        The names come from the encoder's architecture alone (built on
        torch's ``meta`` device): the weights are never loaded, downloaded
        or read, fitted or not.

        Parameters
        ----------
        input_features : ignored
            Images have no input feature names.

        Returns
        -------
        feature_names_out : ndarray of str objects
            ``n_features_out_`` names.
        """
        dim = getattr(self, "n_features_out_", None)
        if self.layers is not None or dim is None:
            names, dim = self._output_columns()
            if names is not None:
                return np.asarray(names, dtype=object)
        prefix = type(self).__name__.lower()
        return np.asarray([f"{prefix}{i}" for i in range(dim)], dtype=object)

    def __getstate__(self):
        # The torch encoder is never pickled: it reloads on first use.
        return self.__dict__.copy()

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        tags.input_tags.two_d_array = False
        tags.input_tags.string = True
        tags.non_deterministic = False
        tags.transformer_tags.preserves_dtype = []
        return tags
