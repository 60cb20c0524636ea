"""The loaded encoder: its record, the one cache of loaded encoders, precisions.

A featurizer builds an :class:`Encoder` once per process and configuration
(:func:`cached_encoder`); clones share it (``GridSearchCV`` clones the pipeline
for every candidate and fold, and reloading CLIP each time would dominate).
The cache is thread-safe: threads asking for the same encoder at once (the
threads of a Dask worker) load it once. How a precision is applied to a frozen
module (torch int8, ONNX Runtime) and run (autocast) is decided here, for
every backend.
"""

import functools
import sys
import threading
import warnings
from collections import OrderedDict
from dataclasses import dataclass

import torch

from ._layers import EMBEDDING, block_of

__all__ = [
    "CPU_ONLY_PRECISIONS",
    "ENCODER_CACHE_BYTES",
    "PRECISIONS",
    "Encoder",
    "apply_precision",
    "autocast",
    "cached_encoder",
    "encoder_nbytes",
    "loads_in_this_thread",
    "quantize_linear_int8",
    "resolve_precision",
]

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

_ENCODER_CACHE = OrderedDict()
#: The memory the loaded encoders kept for reuse may take, in bytes (4 GiB):
#: the least recently used ones are dropped beyond it, the one in use never.
#: Set ``skacd.featurizers.ENCODER_CACHE_BYTES`` to change it; with
#: ``verbose >= 1`` a featurizer says when it reloads a dropped encoder.
ENCODER_CACHE_BYTES = 4 * 2**30
_EVICTED = set()  # keys of encoders dropped from the cache, to report reloads
# Guards the cache itself; never held while an encoder loads.
_LOCK = threading.Lock()
# One lock per key being loaded: the threads that want that encoder wait for
# its one load, a thread that wants another goes on. Reentrant, as a backend
# may build an encoder from another one.
_KEY_LOCKS = {}
_LOADS = threading.local()  # encoders this thread loaded (skacd.distributed counts)


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
    #: batched uint8 -> normalised float stage (see ``_loading.PixelStage``), or
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


def loads_in_this_thread():
    """How many encoders :func:`cached_encoder` has loaded in the calling thread."""
    return getattr(_LOADS, "count", 0)


def cached_encoder(key, build, name="featurizer", verbose=0):
    """The encoder cached under ``key``, built by ``build()`` if there is none.

    Parameters
    ----------
    key : tuple
        ``(featurizer class, weights key, device, precision, readout)``.
    build : callable
        Returns the finished :class:`Encoder`; called once per key however
        many threads ask at the same time (the others wait for it).
    name : str, default="featurizer"
        Who asks, for the message about a reload.
    verbose : int, default=0
        Say on stderr when an encoder dropped from the cache is loaded again.

    Returns
    -------
    encoder : Encoder
    """
    encoder = _cached(key)
    if encoder is not None:
        return encoder
    with _LOCK:
        key_lock = _KEY_LOCKS.setdefault(key, threading.RLock())
    with key_lock:
        encoder = _cached(key)  # another thread may have loaded it meanwhile
        if encoder is not None:
            return encoder
        if key in _EVICTED and verbose:
            print(
                f"[{name}] reloading the encoder {key[1]!r} ({key[3]}, {key[2]}): "
                "it was dropped from the encoder cache "
                f"(skacd.featurizers.ENCODER_CACHE_BYTES={_encoder_cache_budget()}"
                "); raise it to keep more encoders loaded.",
                file=sys.stderr,
            )
        encoder = build()
        encoder.nbytes = encoder_nbytes(encoder)
        with _LOCK:
            _ENCODER_CACHE[key] = encoder
            _evict_beyond_budget()
            _KEY_LOCKS.pop(key, None)
        _LOADS.count = loads_in_this_thread() + 1
        return encoder


def _cached(key):
    """The cached encoder of ``key`` (now the most recently used), or None."""
    with _LOCK:
        encoder = _ENCODER_CACHE.get(key)
        if encoder is not None:
            _ENCODER_CACHE.move_to_end(key)
            _evict_beyond_budget()  # the budget may have been lowered since
        return encoder


def _evict_beyond_budget():
    """Drop least recently used encoders beyond the budget (never the last one).

    Called with ``_LOCK`` held."""
    budget = _encoder_cache_budget()
    while len(_ENCODER_CACHE) > 1 and sum(
        e.nbytes for e in _ENCODER_CACHE.values()
    ) > budget:
        evicted, _ = _ENCODER_CACHE.popitem(last=False)  # least recently used
        _EVICTED.add(evicted)


# -- precisions ------------------------------------------------------------------


def resolve_precision(precision, device):
    """``precision`` for ``device``: ``"auto"`` resolved, CPU-only modes checked."""
    if precision == "auto":
        return "bfloat16" if device.type == "cuda" else "float32"
    if precision in CPU_ONLY_PRECISIONS and device.type != "cpu":
        raise ValueError(
            f"precision={precision!r} runs on the CPU only; use "
            "device='cpu' or precision='bfloat16' on a GPU."
        )
    return precision


def quantize_linear_int8(module):
    """Dynamic int8 quantisation of the ``nn.Linear`` layers (CPU only)."""
    with warnings.catch_warnings():
        # torch.ao.quantization announces its move to torchao; it still works.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*quantize_per_tensor.*")
        return torch.ao.quantization.quantize_dynamic(
            module, {torch.nn.Linear}, dtype=torch.qint8
        )


def apply_precision(module, precision, input_size, device):
    """A frozen float32 ``module`` made to run in ``precision`` on ``device``.

    ``"int8"`` quantises the linear layers with torch, the ONNX modes export
    the module to ONNX Runtime (``input_size`` is ``(C, H, W)`` of one
    image); the autocast modes change nothing here (see :func:`autocast`).
    """
    if precision == "int8":
        module = quantize_linear_int8(module)
    elif precision in ("onnx-float32", "onnx-int8"):
        from ._onnx import onnx_module

        module = onnx_module(module, input_size, quantize=precision == "onnx-int8")
    return module.to(device)


def autocast(device, precision):
    """The autocast context the forward passes of ``precision`` run in."""
    if precision in ("bfloat16", "float16"):
        return torch.autocast(device.type, dtype=getattr(torch, precision))
    return torch.autocast(device.type, enabled=False)
