"""Intermediate-layer features: which layers to read and how to pool them.

A featurizer with ``layers=None`` returns the encoder's final embedding, as
before. With ``layers`` it returns, for each listed stage or transformer
block, a pooled summary of its output (channel mean and standard deviation,
CLS token, patch-token mean), and optionally the final embedding, read in one
forward pass through the libraries' own ``forward_intermediates``. When the
embedding is not asked for, the layers after the last one read are pruned
with the libraries' ``prune_intermediate_layers`` and never run.

The low-level traces generators leave sit in the early stages of an ImageNet
CNN, while its pooled last-layer features carry the content of an image:
these readouts are what the generalising detectors are built on.
"""

import inspect
from numbers import Integral

import torch
from torch import nn

__all__ = [
    "EMBEDDING",
    "POOLING_STATISTICS",
    "canonical_layers",
    "pooling_statistics",
    "TimmReadout",
    "OpenCLIPReadout",
    "block_of",
]

#: The name of the final embedding in ``layers`` and in column names.
EMBEDDING = "embedding"
#: Statistics a pooling string is made of ("mean_std" = mean, then std).
POOLING_STATISTICS = ("cls", "mean", "std")


def canonical_layers(layers):
    """``layers`` as (sorted unique layer indices, whether the embedding is read).

    Raises a ``ValueError`` naming the parameter for anything else.
    """
    if isinstance(layers, (str, Integral)):
        layers = [layers]
    try:
        entries = list(layers)
    except TypeError:
        raise ValueError(
            f"layers must be None or a list of layer indices and/or {EMBEDDING!r}; "
            f"got {layers!r}."
        ) from None
    indices, embedding = [], False
    for entry in entries:
        if isinstance(entry, str) and entry == EMBEDDING:
            embedding = True
        elif isinstance(entry, Integral) and not isinstance(entry, bool) and entry >= 0:
            indices.append(int(entry))
        else:
            raise ValueError(
                f"layers must hold non-negative layer indices and/or {EMBEDDING!r}; "
                f"got the entry {entry!r} in layers={layers!r}."
            )
    if len(set(indices)) != len(indices) or not (indices or embedding):
        raise ValueError(
            f"layers must name each layer once and at least one layer; got {layers!r}."
        )
    return sorted(indices), embedding


def pooling_statistics(pooling, tokens):
    """The statistics of ``pooling`` ("auto", "mean_std", "cls", ...) as a tuple.

    ``tokens`` says whether the layers hold transformer tokens (a CLS token
    exists) or convolutional feature maps.
    """
    if pooling == "auto":
        return ("cls",) if tokens else ("mean", "std")
    statistics = tuple(pooling.split("_")) if isinstance(pooling, str) else ()
    if (
        not statistics
        or len(set(statistics)) != len(statistics)
        or not set(statistics) <= set(POOLING_STATISTICS)
    ):
        raise ValueError(
            "pooling must be 'auto' or statistics from "
            f"{list(POOLING_STATISTICS)} joined by '_' (e.g. 'mean_std', "
            f"'cls_mean'); got {pooling!r}."
        )
    if "cls" in statistics and not tokens:
        raise ValueError(
            f"pooling={pooling!r} asks for a CLS token, but this encoder's layers are "
            "convolutional feature maps; use 'mean', 'std' or 'mean_std'."
        )
    return statistics


def block_of(name):
    """The block a column belongs to: ``"stage2"`` for ``"stage2_mean7"``."""
    head, sep, _ = str(name).partition("_")
    if sep:
        return head
    return EMBEDDING if str(name).startswith(EMBEDDING) else head


def _pool_maps(x, statistics):
    """(B, C, H, W) feature maps -> (B, C * len(statistics)) channel statistics."""
    x = x.float().flatten(2)
    std, mean = torch.std_mean(x, dim=2, correction=0)
    values = {"mean": mean, "std": std}
    return [values[s] for s in statistics]


def _pool_tokens(prefix, tokens, statistics):
    """CLS token (B, 1, C) and patch tokens (B, L, C) -> pooled (B, C) pieces."""
    std, mean = torch.std_mean(tokens.float(), dim=1, correction=0)
    values = {"cls": prefix[:, 0].float(), "mean": mean, "std": std}
    return [values[s] for s in statistics]


class _Readout(nn.Module):
    """Shared by the readouts: concatenation and column names."""

    def forward(self, x):
        return torch.cat(
            [piece for _, pieces in self.layer_outputs(x) for piece in pieces], dim=1
        )

    def column_names(self, input_size, prefix):
        """Names of the output columns, from one pass over a blank image.

        The pass runs where the parameters are: on the ``meta`` device it
        computes shapes only.
        """
        device = next(self.parameters(), torch.empty(0)).device
        with torch.inference_mode():
            outputs = self.layer_outputs(torch.zeros((1, *input_size), device=device))
        names = []
        for index, pieces in outputs:
            if index is None:
                names.extend(f"{EMBEDDING}{j}" for j in range(pieces[0].shape[1]))
                continue
            for statistic, piece in zip(self.statistics, pieces):
                names.extend(
                    f"{prefix}{index}_{statistic}{c}" for c in range(piece.shape[1])
                )
        return names


class TimmReadout(_Readout):
    """A timm model that returns pooled intermediate stages (and its embedding).

    For EfficientNet-style models (whose ``forward_intermediates`` takes
    ``extra_blocks``) stage ``i`` is the output of ``model.blocks[i]``;
    otherwise it is the ``i``-th entry of ``model.feature_info``.
    """

    def __init__(self, model, indices, embedding, statistics):
        super().__init__()
        signature = inspect.signature(model.forward_intermediates).parameters
        self.extra_blocks = "extra_blocks" in signature
        n_layers = len(model.blocks) if self.extra_blocks else len(model.feature_info)
        if indices and indices[-1] >= n_layers:
            raise ValueError(
                f"layers={indices} asks for stage {indices[-1]}, but "
                f"{type(model).__name__} has stages 0 to {n_layers - 1}."
            )
        # With extra_blocks, timm's index 0 is the stem and i + 1 is blocks[i].
        self.indices = list(indices)
        self.take = [i + 1 for i in indices] if self.extra_blocks else list(indices)
        self.embedding = embedding
        self.statistics = statistics
        if indices and not embedding:
            kwargs = {"extra_blocks": True} if self.extra_blocks else {}
            model.prune_intermediate_layers(self.take, prune_head=True, **kwargs)
        self.model = model

    def layer_outputs(self, x):
        """[(layer index or None for the embedding, [pooled (B, C) tensors])]."""
        kwargs = {"extra_blocks": True} if self.extra_blocks else {}
        if self.embedding:
            final, maps = (
                self.model.forward_intermediates(x, indices=self.take, **kwargs)
                if self.take
                else (self.model.forward_features(x), [])
            )
        else:
            maps = self.model.forward_intermediates(
                x, indices=self.take, intermediates_only=True, stop_early=True, **kwargs
            )
        outputs = [
            (index, _pool_maps(feature_map, self.statistics))
            for index, feature_map in zip(self.indices, maps)
        ]
        if self.embedding:
            outputs.append((None, [self.model.forward_head(final).float()]))
        return outputs


class OpenCLIPReadout(_Readout):
    """An open_clip image tower that returns pooled intermediate blocks.

    Block ``i`` of a ViT is the residual stream after transformer block ``i``
    (CLS token and patch tokens, before the final norm); other towers give
    ``(B, C, H, W)`` maps pooled like CNN stages.
    """

    def __init__(self, visual, indices, embedding, statistics, tokens):
        super().__init__()
        n_layers = _clip_layer_count(visual)
        if indices and indices[-1] >= n_layers:
            raise ValueError(
                f"layers={indices} asks for block {indices[-1]}, but this "
                f"{type(visual).__name__} has blocks 0 to {n_layers - 1}."
            )
        self.indices = list(indices)
        self.take = list(indices)
        self.embedding = embedding
        self.statistics = statistics
        self.tokens = tokens
        self.resnet = _is_modified_resnet(visual)
        # ModifiedResNet has no pruning: its later stages stay loaded (unrun).
        if indices and not embedding and hasattr(visual, "prune_intermediate_layers"):
            visual.prune_intermediate_layers(self.take, prune_head=True)
        self.visual = visual

    def layer_outputs(self, x):
        """[(layer index or None for the embedding, [pooled (B, C) tensors])]."""
        if not self.take:
            return [(None, [self.visual(x).float()])]
        if self.resnet:
            out = self._resnet_intermediates(x)
        else:
            kwargs = {}
            if self.tokens:
                kwargs = {"output_fmt": "NLC", "output_extra_tokens": True}
            out = self.visual.forward_intermediates(
                x,
                indices=self.take,
                stop_early=not self.embedding,
                intermediates_only=not self.embedding,
                **kwargs,
            )
        if self.tokens:
            pooled = [
                _pool_tokens(prefix, tokens, self.statistics)
                for prefix, tokens in zip(
                    out["image_intermediates_prefix"], out["image_intermediates"]
                )
            ]
        else:
            pooled = [
                _pool_maps(feature_map, self.statistics)
                for feature_map in out["image_intermediates"]
            ]
        outputs = list(zip(self.indices, pooled))
        if self.embedding:
            outputs.append((None, [out["image_features"].float()]))
        return outputs

    def _resnet_intermediates(self, x):
        # open_clip's ModifiedResNet.forward_intermediates (3.3) stops at the
        # last index taken exactly when stop_early is False, so its embedding
        # would be the attention pool of an early map: run the stages here.
        visual = self.visual
        stages = [visual.stem] + [getattr(visual, f"layer{i}") for i in range(1, 5)]
        if not self.embedding:
            stages = stages[: self.take[-1] + 1]
        out = {"image_intermediates": []}
        for index, stage in enumerate(stages):
            x = stage(x)
            if index in self.take:
                out["image_intermediates"].append(x)
        if self.embedding:
            out["image_features"] = visual.attnpool(x)
        return out


def _is_modified_resnet(visual):
    """Whether an open_clip image tower is its ResNet (``ModifiedResNet``)."""
    return hasattr(visual, "layer4") and hasattr(visual, "attnpool")


def _clip_layer_count(visual):
    transformer = getattr(visual, "transformer", None)
    if transformer is not None and hasattr(transformer, "resblocks"):
        return len(transformer.resblocks)
    if _is_modified_resnet(visual):  # stem + 4 stages
        return 5
    raise ValueError(
        f"layers is not supported for the open_clip tower {type(visual).__name__}."
    )


def clip_tower_has_tokens(visual):
    """Whether an open_clip tower's intermediates are tokens (ViT) or maps."""
    if _is_modified_resnet(visual):  # takes output_extra_tokens, gives maps
        return False
    return "output_extra_tokens" in inspect.signature(
        visual.forward_intermediates
    ).parameters


