"""CLIPFeaturizer: a frozen open_clip image tower. The only open_clip import."""

import contextlib
import logging
import os
import warnings

import torch

from .._torch import seeded
from ..exceptions import WeightsUnavailableError
from ._base import BaseFeaturizer, Encoder
from ._layers import OpenCLIPReadout, clip_tower_has_tokens, pooling_statistics
from ._weights import check_hub_reachable, file_identity, hub_file_in_cache

__all__ = ["CLIPFeaturizer"]

_CONFIG_DIR = os.path.join(os.path.dirname(__file__), "model_configs")
RANDOM_INIT_SEED = 0


def _open_clip():
    import open_clip

    if "skacd-tiny-ViT" not in open_clip.list_models():
        open_clip.add_model_config(_CONFIG_DIR)
    return open_clip


def quantize_linear_int8(module):
    """Dynamic int8 quantisation of the ``nn.Linear`` layers (CPU only)."""
    with warnings.catch_warnings():
        # torch.ao.quantization announces its move to torchao; it still works.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*quantize_per_tensor.*")
        return torch.ao.quantization.quantize_dynamic(
            module, {torch.nn.Linear}, dtype=torch.qint8
        )


@contextlib.contextmanager
def _quiet_root_logger(active):
    logger = logging.getLogger()
    previous = logger.level
    if active:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(previous)


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
        seconds.
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
    >>> images = np.random.RandomState(0).randint(0, 256, (3, 40, 40, 3), dtype=np.uint8)
    >>> featurizer = CLIPFeaturizer("skacd-tiny-ViT", pretrained=None, device="cpu")
    >>> featurizer.fit_transform(images).shape
    (3, 32)

    With real weights (downloaded once, or from a local file)::

        CLIPFeaturizer("ViT-L-14", pretrained="openai")
        CLIPFeaturizer("ViT-L-14", pretrained="/models/ViT-L-14-openai.bin")
    """

    _parameter_constraints = {
        **BaseFeaturizer._parameter_constraints,
        "model_name": [str],
        "pretrained": [str, os.PathLike, None],
        "cache_dir": [str, os.PathLike, None],
    }

    def __init__(
        self,
        model_name="ViT-L-14",
        pretrained="openai",
        *,
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
        return (self.model_name, str(self.pretrained), str(self.cache_dir))

    def _tag_uses_quick_gelu(self, open_clip):
        """Whether the weights tag was trained with QuickGELU (OpenAI's were).

        open_clip only warns about the mismatch, and cannot see it at all once
        a tag has been resolved to a cached file here, so skacd applies it.
        """
        if self.pretrained is None or os.path.exists(os.fspath(self.pretrained)):
            return False
        cfg = open_clip.get_pretrained_cfg(self.model_name, os.fspath(self.pretrained))
        return bool(cfg and cfg.get("quick_gelu", False))

    def _resolve_weights(self, open_clip):
        """Return (what to pass as ``pretrained``, its identity string)."""
        if self.pretrained is None:
            return None, f"random-init-seed{RANDOM_INIT_SEED}"
        pretrained = os.fspath(self.pretrained)
        if os.path.exists(pretrained):
            return pretrained, file_identity(pretrained)
        cfg = open_clip.get_pretrained_cfg(self.model_name, pretrained)
        if not cfg:
            tags = open_clip.list_pretrained_tags_by_model(self.model_name)
            raise ValueError(
                f"pretrained={pretrained!r} is neither a file nor an open_clip weights "
                f"tag for model_name={self.model_name!r}; tags for this model: {tags}."
            )
        hub = cfg.get("hf_hub", "")
        how_to_fix = (
            "Download the checkpoint on a machine with network access "
            + (f"(Hugging Face repo {hub.rstrip('/')!r}) " if hub else f"({cfg.get('url')}) ")
            + "and pass its path: CLIPFeaturizer(model_name="
            f"{self.model_name!r}, pretrained='/path/to/open_clip_model.safetensors')."
        )
        what = f"CLIP model_name={self.model_name!r}, pretrained={pretrained!r}"
        if hub:
            # open_clip's convention: "org/repo/file.bin", or "org/repo/" for the
            # default file name.
            repo_id, filename = os.path.split(hub)
            candidates = [
                "open_clip_model.safetensors",
                "open_clip_pytorch_model.bin",
            ]
            if filename:
                stem, _ = os.path.splitext(filename)
                candidates = [stem + ".safetensors", filename]
            local = hub_file_in_cache(repo_id, candidates, self.cache_dir)
            if local:
                return local, f"{pretrained}@{os.path.basename(local)}"
            endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
            check_hub_reachable(endpoint, what, how_to_fix)
        elif cfg.get("url"):
            cache_dir = self.cache_dir or os.path.expanduser("~/.cache/clip")
            local = os.path.join(cache_dir, os.path.basename(cfg["url"]))
            if os.path.isfile(local):
                return local, f"{pretrained}@{os.path.basename(local)}"
            check_hub_reachable(cfg["url"], what, how_to_fix)
        return pretrained, pretrained

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

    def _create_encoder(self, device, precision):
        open_clip = _open_clip()
        if self.model_name not in open_clip.list_models():
            raise ValueError(
                f"model_name={self.model_name!r} is not an open_clip architecture; see "
                "open_clip.list_models()."
            )
        weights, weights_identity = self._resolve_weights(open_clip)
        try:
            # open_clip logs a warning for random weights; here they were asked for.
            with seeded(RANDOM_INIT_SEED, torch.device("cpu")), _quiet_root_logger(
                weights is None
            ):
                model, _, preprocess = open_clip.create_model_and_transforms(
                    self.model_name,
                    pretrained=weights,
                    device="cpu",
                    cache_dir=self.cache_dir,
                    force_quick_gelu=self._tag_uses_quick_gelu(open_clip),
                )
        except WeightsUnavailableError:
            raise
        except (FileNotFoundError, RuntimeError) as exc:
            if weights is None:
                raise
            raise WeightsUnavailableError(
                f"Cannot load the weights for CLIP model_name={self.model_name!r}, "
                f"pretrained={self.pretrained!r}: {exc}"
            ) from exc
        module = model.visual.eval()
        del model  # the text tower is never used
        embed_dim, feature_names = int(module.output_dim), None
        size = module.image_size
        size = tuple(size) if isinstance(size, (tuple, list)) else (size, size)
        readout = self._readout()
        if readout is not None:
            tokens = clip_tower_has_tokens(module)
            statistics = pooling_statistics(self.pooling, tokens=tokens)
            module = OpenCLIPReadout(module, *readout, statistics, tokens).eval()
            feature_names = module.column_names((3, *size), "block")
            embed_dim = len(feature_names)
        if precision == "int8":
            module = quantize_linear_int8(module)
        elif precision in ("onnx-float32", "onnx-int8"):
            from ._onnx import onnx_module

            module = onnx_module(module, (3, *size), quantize=precision == "onnx-int8")
        module = module.to(device)
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
            },
        )
