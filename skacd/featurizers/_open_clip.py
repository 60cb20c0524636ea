"""CLIPFeaturizer: a frozen open_clip image tower. The only open_clip import."""

import os
import pickle
import warnings

import torch

from .._logging import quiet_library_logs
from .._torch import seeded
from ..exceptions import WeightsUnavailableError
from ._base import BaseFeaturizer
from ._encoder import Encoder, apply_precision
from ._layers import OpenCLIPReadout, clip_tower_has_tokens, pooling_statistics
from ._preprocessing import as_record, describe
from ._weights import check_hub_reachable, file_identity, hub_file_in_cache

__all__ = ["CLIPFeaturizer"]

_CONFIG_DIR = os.path.join(os.path.dirname(__file__), "model_configs")
RANDOM_INIT_SEED = 0


def _open_clip():
    import open_clip

    if "skacd-tiny-ViT" not in open_clip.list_models():
        open_clip.add_model_config(_CONFIG_DIR)
    return open_clip


def _clean_tag(tag):
    return str(tag).lower().replace("-", "_")  # as open_clip compares tags


def _model_quick_gelu(open_clip, model_name):
    return bool((open_clip.get_model_config(model_name) or {}).get("quick_gelu", False))


def _preprocess_record(open_clip, model_name, cfg):
    """The preprocessing of ``model_name`` with a tag's ``cfg`` over the defaults.

    As open_clip computes it: its ``PreprocessCfg`` defaults, the tag's
    values over them, and the image size of the architecture.
    """
    from open_clip.transform import PreprocessCfg, merge_preprocess_dict

    merged = merge_preprocess_dict(PreprocessCfg(), cfg)
    size = cfg.get("size")
    if size is None:
        vision = (open_clip.get_model_config(model_name) or {}).get("vision_cfg", {})
        size = vision.get("image_size", PreprocessCfg.size)
    merged["size"] = [size, size] if isinstance(size, int) else list(size)[-2:]
    merged.pop("mode", None)  # always RGB
    return as_record(merged)


def _tower_size(visual):
    """``(H, W)`` of the images an open_clip image tower takes."""
    size = visual.image_size
    return tuple(size) if isinstance(size, (tuple, list)) else (size, size)


def cached_weights_file(cfg, cache_dir=None):
    """The local file of an open_clip pretrained config, if it is on disk already.

    Looked up where ``open_clip.download_pretrained`` would put it: the
    Hugging Face cache for ``hf_hub`` configs, ``~/.cache/clip`` (or
    ``cache_dir``) for ``url`` ones.
    """
    hub = cfg.get("hf_hub", "")
    if hub:
        # open_clip's convention: "org/repo/file.bin", or "org/repo/" for the
        # default file name; a .safetensors twin is preferred.
        repo_id, filename = os.path.split(hub)
        candidates = ["open_clip_model.safetensors", "open_clip_pytorch_model.bin"]
        if filename:
            stem, _ = os.path.splitext(filename)
            candidates = [stem + ".safetensors", filename]
        return hub_file_in_cache(repo_id, candidates, cache_dir)
    if cfg.get("url"):
        directory = cache_dir or os.path.expanduser("~/.cache/clip")
        local = os.path.join(directory, os.path.basename(cfg["url"]))
        return local if os.path.isfile(local) else None
    return None


class CLIPFeaturizer(BaseFeaturizer):
    """Embed images with a frozen open_clip image encoder.

    The encoder :math:`f` of arXiv:2603.00717 (CLIP ViT-L/14 in the paper).
    Nothing is trained: ``fit`` only loads the model, once per process and
    configuration, and ``transform`` returns one embedding per image.

    Parameters
    ----------
    model_name : str, default="ViT-L-14"
        An open_clip architecture (``open_clip.list_models()``), e.g.
        ``"ViT-B-32"``. ``"skacd-tiny-ViT"`` is a tiny configuration shipped
        with skacd for tests and examples (use it with ``pretrained=None``).
    pretrained : str or None, default="openai"
        An open_clip weights tag (``open_clip.list_pretrained()``), or the path
        of a local checkpoint file, or ``None`` for random weights (seeded: two
        featurizers give identical features; for tests only). A tag is loaded
        from the local cache when present; otherwise it is downloaded, and if
        the hub cannot be reached a
        :class:`~skacd.exceptions.WeightsUnavailableError` is raised within
        seconds. A tag always brings its own preprocessing (mean, std,
        interpolation, resize mode) and QuickGELU flag, whether its file was
        downloaded now, read from the cache or found offline.
    weights_tag : str or None, default=None
        For a local checkpoint file: the open_clip tag whose weights the file
        holds (e.g. ``"laion2b_s32b_b82k"``), so that the tag's preprocessing
        and QuickGELU flag apply, exactly as with ``pretrained=<that tag>``.
        Without it a file gets open_clip's defaults for ``model_name``, with a
        warning saying which. With random weights it sets the preprocessing.
    device : {"auto", "cpu", "cuda"} or torch.device, default="auto"
        ``"auto"`` is CUDA when available.
    batch_size : int, default=64
        Images per forward pass.
    num_workers : int or "auto", default="auto"
        DataLoader worker processes decoding images while the model runs.
        ``"auto"``: on a CPU device with at most 4 cores, no worker process
        and each batch decoded by a pool of one thread per core between
        forward passes (worker processes would compete with torch's threads
        for the cores); otherwise ``cores - 1`` workers (at most 8 on a CPU
        device, 16 with CUDA), and none for a single batch.
    precision : {"auto", "float32", "bfloat16", "float16", "int8", "onnx-float32", \
            "onnx-int8"}, default="auto"
        ``"auto"`` is bfloat16 autocast on CUDA and float32 on the CPU.
        ``"int8"`` dynamically quantises linear layers with torch (CPU only).
        ``"onnx-float32"`` exports the image tower to ONNX and runs it in ONNX
        Runtime; ``"onnx-int8"`` does the same with int8 weights (CPU only;
        both need ``pip install 'skacd[onnx]'``). See the performance page of
        the user guide for the speed and the feature change of each mode.
    normalize : bool, default=True
        L2-normalise each embedding, as CLIP similarity does.
    image_transform : callable or None, default=None
        Applied to each RGB PIL image before the model's preprocessing, e.g.
        :class:`~skacd.featurizers.JPEGCompression` for robustness studies.
    cache : str, os.PathLike, FeatureCache or None, default=None
        A persistent feature cache directory; images already embedded with
        the same encoder, weights and preprocessing are not embedded again.
    on_error : {"raise", "skip"}, default="raise"
        What to do with an image that cannot be loaded: raise an
        :class:`~skacd.exceptions.ImageLoadError` naming it, or give its row
        NaN and list it in an :class:`~skacd.exceptions.ImageLoadWarning`.
    cache_dir : str or None, default=None
        Where open_clip keeps downloaded weights.
    layers : list of int and/or "embedding", or None, default=None
        ``None``: the final image embedding. Otherwise the transformer blocks
        to read (block ``i`` is the residual stream after the ``i``-th
        block, as in RINE, Koutlis and Papadopoulos 2024), each summarised by
        ``pooling``, in increasing order, and ``"embedding"`` for the final
        embedding after them. Read with open_clip's ``forward_intermediates``;
        without ``"embedding"`` the blocks after the last one read are pruned
        and never run.
    pooling : str, default="auto"
        How each block is summarised: ``"cls"`` (the CLS token), ``"mean"``
        (the mean patch token), ``"std"`` (per-channel standard deviation of
        the patch tokens), or several joined by ``"_"`` (``"cls_mean"``);
        ``"auto"`` is ``"cls"``. For convolutional towers (ResNet CLIP) the
        statistics are over each stage's feature map, ``"auto"`` being
        ``"mean_std"``. With ``layers``, ``normalize`` applies to the
        embedding columns only.
    verbose : int, default=0
        Progress bar when positive.

    Attributes
    ----------
    device_ : str
        The device used.
    precision_ : str
        The precision used.
    n_features_out_ : int
        Embedding dimension (768 for ViT-L-14).
    preprocessing_ : dict
        The preprocessing the encoder applies (image size, mean, std,
        interpolation, resize mode); part of the encoder's identity, stored
        in detector files and checked again when one is used.
    encoder_identity_ : dict
        What identifies the encoder ``fit`` loaded, as JSON values:
        ``library`` and ``library_version``, ``model_name``, ``pretrained``
        (the weights: a tag and its file, a local file's path, size and
        modification time, or the random-init seed), ``preprocessing``,
        ``quick_gelu``, ``featurizer``, ``precision``, ``device_type`` and,
        with ``layers``, the ``layers`` read and their ``pooling``. The
        feature cache keys are made from it.

    See Also
    --------
    TimmFeaturizer : The same for timm backbones (EfficientNet-Lite offline).
    AttributionSpace : The next step of the detector.

    Notes
    -----
    The model is never pickled; an unpickled featurizer reloads it. Loaded
    models are shared by clones in the same process (as made by
    ``GridSearchCV``), two at most.

    Examples
    --------
    >>> import numpy as np
    >>> from skacd import CLIPFeaturizer
    >>> rng = np.random.RandomState(0)
    >>> images = rng.randint(0, 256, (3, 40, 40, 3), dtype=np.uint8)
    >>> featurizer = CLIPFeaturizer("skacd-tiny-ViT", pretrained=None, device="cpu")
    >>> featurizer.fit_transform(images).shape
    (3, 32)

    With real weights (downloaded once, or from a local file)::

        CLIPFeaturizer("ViT-L-14", pretrained="openai")
        CLIPFeaturizer("ViT-L-14", "/models/vit-l-14.bin", weights_tag="openai")
    """

    _layer_prefix = "block"

    _parameter_constraints = {
        **BaseFeaturizer._parameter_constraints,
        "model_name": [str],
        "pretrained": [str, os.PathLike, None],
        "weights_tag": [str, None],
        "cache_dir": [str, os.PathLike, None],
    }

    def __init__(
        self,
        model_name="ViT-L-14",
        pretrained="openai",
        *,
        weights_tag=None,
        device="auto",
        batch_size=64,
        num_workers="auto",
        precision="auto",
        normalize=True,
        image_transform=None,
        cache=None,
        on_error="raise",
        cache_dir=None,
        layers=None,
        pooling="auto",
        verbose=0,
    ):
        self.model_name = model_name
        self.pretrained = pretrained
        self.weights_tag = weights_tag
        self.device = device
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.precision = precision
        self.normalize = normalize
        self.image_transform = image_transform
        self.cache = cache
        self.on_error = on_error
        self.cache_dir = cache_dir
        self.layers = layers
        self.pooling = pooling
        self.verbose = verbose

    def _encoder_key(self):
        return (
            self.model_name,
            str(self.pretrained),
            str(self.weights_tag),
            str(self.cache_dir),
        )

    def _early_layers(self):
        """The blocks the fused detector's early branch reads: the first half.

        Read from open_clip's model configuration, without loading weights.
        Not measured on real CLIP weights (none are available offline here).
        """
        config = _open_clip().get_model_config(self.model_name) or {}
        layers = config.get("vision_cfg", {}).get("layers", 2)
        if isinstance(layers, int):
            return list(range(max(layers // 2, 1)))
        return [0, 1, 2]  # ModifiedResNet: the stem and the first two stages

    def _check_model_name(self):
        open_clip = _open_clip()
        if self.model_name not in open_clip.list_models():
            raise ValueError(
                f"model_name={self.model_name!r} is not an open_clip architecture; see "
                "open_clip.list_models()."
            )
        return open_clip

    def _weights_source(self, open_clip):
        """``(kind, tag, cfg)``: where the weights come from, and whose config applies.

        ``kind`` is ``"random"``, ``"file"`` or ``"tag"``; ``cfg`` is the open_clip
        pretrained config of ``tag`` (its preprocessing and ``quick_gelu``), or
        ``{}`` when no tag is named. A path that does not exist (yet) counts as
        a file here, so that the preprocessing is known without the file.
        """
        tag = None if self.weights_tag is None else str(self.weights_tag)
        kind = "random" if self.pretrained is None else "file"
        if kind == "file":
            pretrained = os.fspath(self.pretrained)
            if not os.path.exists(pretrained) and open_clip.get_pretrained_cfg(
                self.model_name, pretrained
            ):
                if tag is not None and _clean_tag(tag) != _clean_tag(pretrained):
                    raise ValueError(
                        f"weights_tag={tag!r} contradicts the weights tag "
                        f"pretrained={pretrained!r}; weights_tag names the tag of a "
                        "local file (pretrained='/path/to/file'). Leave it None."
                    )
                kind, tag = "tag", pretrained
        if tag is None:
            return kind, None, {}
        cfg = open_clip.get_pretrained_cfg(self.model_name, tag)
        if not cfg:
            tags = open_clip.list_pretrained_tags_by_model(self.model_name)
            raise ValueError(
                f"weights_tag={tag!r} is not an open_clip weights tag for model_name="
                f"{self.model_name!r}; tags for this model: {tags}."
            )
        return kind, tag, cfg

    def _preprocess_config(self):
        """The preprocessing these weights need (a dict), without loading them."""
        open_clip = self._check_model_name()
        _, _, cfg = self._weights_source(open_clip)
        return _preprocess_record(open_clip, self.model_name, cfg)

    def _blank_module(self, device):
        open_clip = self._check_model_name()
        with seeded(RANDOM_INIT_SEED, torch.device("cpu")), device, quiet_library_logs(
            "open_clip"
        ):
            model = open_clip.create_model(
                self.model_name, pretrained=None, device=device
            )
        module = model.visual.eval()
        return module, (3, *_tower_size(module))

    def _readout_module(self, module, readout):
        tokens = clip_tower_has_tokens(module)
        statistics = pooling_statistics(self.pooling, tokens=tokens)
        return OpenCLIPReadout(module, *readout, statistics, tokens)

    def _embedding_width(self, module):
        return int(module.output_dim)

    def _resolve_weights(self, open_clip, kind, tag, cfg):
        """Return (the checkpoint file to load or None, its identity string)."""
        if kind == "random":
            return None, f"random-init-seed{RANDOM_INIT_SEED}"
        pretrained = os.fspath(self.pretrained)
        if kind == "file":
            if not os.path.exists(pretrained):
                tags = open_clip.list_pretrained_tags_by_model(self.model_name)
                raise ValueError(
                    f"pretrained={pretrained!r} is neither a file nor an open_clip "
                    f"weights tag for model_name={self.model_name!r}; tags for this "
                    f"model: {tags}."
                )
            return pretrained, file_identity(pretrained)
        hub = cfg.get("hf_hub", "")
        how_to_fix = (
            "Download the checkpoint on a machine with network access "
            + (
                f"(Hugging Face repo {hub.rstrip('/')!r}) "
                if hub
                else f"({cfg.get('url')}) "
            )
            + "and pass its path with its tag: CLIPFeaturizer(model_name="
            f"{self.model_name!r}, pretrained='/path/to/open_clip_model.safetensors', "
            f"weights_tag={pretrained!r})."
        )
        what = f"CLIP model_name={self.model_name!r}, pretrained={pretrained!r}"
        local = cached_weights_file(cfg, self.cache_dir)
        if local is None:
            check_hub_reachable(
                os.environ.get("HF_ENDPOINT", "https://huggingface.co") if hub
                else cfg.get("url"),
                what,
                how_to_fix,
            )
            try:
                local = open_clip.download_pretrained(cfg, cache_dir=self.cache_dir)
            except (OSError, RuntimeError, ValueError) as exc:
                raise WeightsUnavailableError(
                    f"Cannot download the weights for {what}: {exc}. {how_to_fix}"
                ) from exc
            if not local or not os.path.isfile(local):
                raise WeightsUnavailableError(
                    f"Cannot download the weights for {what}. {how_to_fix}"
                )
        return local, f"{pretrained}@{os.path.basename(local)}"

    def _create_encoder(self, device, precision):
        from open_clip.transform import (
            PreprocessCfg,
            image_transform_v2,
            merge_preprocess_dict,
        )

        open_clip = self._check_model_name()
        kind, tag, cfg = self._weights_source(open_clip)
        expected = _preprocess_record(open_clip, self.model_name, cfg)
        weights, weights_identity = self._resolve_weights(open_clip, kind, tag, cfg)
        quick_gelu = bool(cfg.get("quick_gelu", False))
        model_quick_gelu = quick_gelu or _model_quick_gelu(open_clip, self.model_name)
        if kind == "file" and tag is None:
            tags = open_clip.list_pretrained_tags_by_model(self.model_name)
            warnings.warn(
                f"CLIPFeaturizer(model_name={self.model_name!r}, pretrained="
                f"{weights!r}) names no weights_tag, so open_clip's defaults for "
                f"{self.model_name!r} apply: {describe(expected)}, quick_gelu="
                f"{model_quick_gelu}. If the file "
                "holds the weights of an open_clip tag, name it with weights_tag= "
                f"(tags for this model: {tags}) to use the preprocessing they were "
                "trained with.",
                UserWarning,
                stacklevel=4,
            )
        try:
            # open_clip logs a warning for random weights; here they were asked for.
            # The weights are always a file (or None) and the tag's own config,
            # preprocessing and QuickGELU, is applied explicitly: the same whether
            # the file was just downloaded, found in a cache or given by the user.
            with seeded(RANDOM_INIT_SEED, torch.device("cpu")), quiet_library_logs(
                "open_clip", active=weights is None
            ):
                model = open_clip.create_model(
                    self.model_name,
                    pretrained=weights,
                    device="cpu",
                    cache_dir=self.cache_dir,
                    force_quick_gelu=quick_gelu,
                    force_preprocess_cfg=merge_preprocess_dict({}, cfg),
                )
        except WeightsUnavailableError:
            raise
        except pickle.UnpicklingError as exc:
            # torch.load(weights_only=True) refused a file holding more than
            # tensors: it is never unpickled.
            raise ValueError(
                f"pretrained={self.pretrained!r} holds Python objects other than "
                "weights, which skacd never unpickles (torch.load weights_only "
                f"refused it: {str(exc).splitlines()[-1][:200]})."
            ) from None
        except (FileNotFoundError, RuntimeError) as exc:
            if weights is None:
                raise
            raise WeightsUnavailableError(
                f"Cannot load the weights for CLIP model_name={self.model_name!r}, "
                f"pretrained={self.pretrained!r}: {exc}"
            ) from exc
        built = _preprocess_record(
            open_clip, self.model_name, model.visual.preprocess_cfg
        )
        if built != expected:  # pragma: no cover - a change in open_clip
            raise RuntimeError(
                f"open_clip built the preprocessing [{describe(built)}] for "
                f"{self.model_name!r}, not the expected [{describe(expected)}]."
            )
        preprocess = image_transform_v2(
            PreprocessCfg(**model.visual.preprocess_cfg), is_train=False
        )
        module = model.visual.eval()
        del model  # the text tower is never used
        size = _tower_size(module)
        module, feature_names, embed_dim = self._loaded_read_out(module)
        module = apply_precision(module, precision, (3, *size), device)
        return Encoder(
            module=module,
            preprocess=preprocess,
            embed_dim=embed_dim,
            feature_names=feature_names,
            identity={
                "library": "open_clip",
                "library_version": open_clip.__version__,
                "model_name": self.model_name,
                "pretrained": weights_identity,
                "quick_gelu": model_quick_gelu,
                "preprocessing": expected,
            },
        )
