"""The estimator every featurizer is: parameters, fit, transform, feature names.

Subclasses say how to build the frozen encoder (``_create_encoder``) and its
architecture without weights (``_blank_module``). The loaded encoder and its
cache live in ``_encoder``; turning images into batches and batches into rows,
in ``_loading``; the feature cache and the bad-input policy, here.
"""

import os
import warnings
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
from ._encoder import PRECISIONS, autocast, cached_encoder, resolve_precision
from ._images import read_bytes
from ._layers import EMBEDDING, canonical_layers
from ._loading import PixelStage, as_items, content_for_key, embed_images, loader_plan
from ._preprocessing import check_preprocessing

__all__ = ["BaseFeaturizer", "FeaturizeResult"]

# The output columns of each architecture and readout, built without weights.
_OUTPUT_COLUMNS = {}


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


class BaseFeaturizer(TransformerMixin, BaseEstimator):
    """Shared machinery of the frozen image encoders. Not for direct use."""

    _parameter_constraints = {
        "device": [DeviceName(), torch.device],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "num_workers": [
            Interval(Integral, 0, None, closed="left"),
            StrOptions({"auto"}),
        ],
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

    def _loaded_read_out(self, module):
        """``(module, column names or None, width)`` for the loaded encoder.

        The names come from :meth:`_output_columns` (computed once, on the
        meta device), not from a pass of the loaded weights over a blank image.
        """
        readout = self._readout()
        if readout is not None:
            module = self._readout_module(module, readout).eval()
        names, width = self._output_columns()
        return module, names, width

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
            features = np.full(
                (len(items), encoder.embed_dim), np.nan, dtype=np.float32
            )
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
        return resolve_precision(self.precision, self._device())

    def _get_encoder(self):
        """The loaded encoder of this configuration, from the encoder cache."""
        device, precision = self._device(), self._precision()
        key = (type(self).__name__, self._encoder_key(), str(device), precision)
        key += (self._readout_key(),)
        name = type(self).__name__
        return cached_encoder(
            key, lambda: self._finished_encoder(device, precision), name, self.verbose
        )

    def _finished_encoder(self, device, precision):
        encoder = self._create_encoder(device, precision)
        encoder.module.eval().requires_grad_(False)
        encoder.pixel_stage = PixelStage.from_preprocess(encoder.preprocess)
        encoder.identity = dict(
            encoder.identity,
            featurizer=type(self).__name__,
            precision=precision,
            device_type=device.type,
        )
        readout = self._readout()
        if readout is not None:  # absent for the default: old cache keys hold
            layers, embedding = readout
            encoder.identity["layers"] = layers + ([EMBEDDING] if embedding else [])
            encoder.identity["pooling"] = self.pooling
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
            keys[i] = cache.make_key(identity, content_for_key(item, data))
        return cache, keys

    def _num_workers(self, n_batches):
        return loader_plan(self.num_workers, n_batches, self._device(), True)[0]

    def _run_encoder(self, encoder, items, positions, features, errors, cache, keys):
        def store(batch_positions, out):
            features[batch_positions] = out
            if cache is not None:
                cache.put_many([keys[p] for p in batch_positions], out)

        device = self._device()
        options = {
            "batch_size": self.batch_size,
            "num_workers": self.num_workers,
            "image_transform": self.image_transform,
            "on_error": self.on_error,
            "normalize": self.normalize,
            "autocast": autocast(device, self._precision()),
        }
        progress = None
        if self.verbose:
            from .._progress import progress as _progress

            progress = _progress(len(positions), type(self).__name__, "img")
        try:
            embed_images(encoder, items, positions, device, options, store, errors,
                         progress)
        finally:
            if progress is not None:
                progress.close()


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
