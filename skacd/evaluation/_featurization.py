"""The benchmark's featurizer, its feature cache and its perturbed test sets."""

import os
import time

from ._methods import _METHOD_BLOCKS, METHODS


def default_cache_dir():
    """The feature cache directory used when none is given.

    ``$SKACD_CACHE_DIR`` when set, else ``$XDG_CACHE_HOME/skacd/features``,
    else ``~/.cache/skacd/features``. The cache is content-addressed (keyed by
    encoder, weights, preprocessing, perturbation and image bytes), so one
    cache can safely serve every project and working directory.

    Returns
    -------
    directory : str
        An absolute path (not created here).
    """
    explicit = os.environ.get("SKACD_CACHE_DIR")
    if explicit:
        return os.path.abspath(os.path.expanduser(explicit))
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache")
    return os.path.abspath(os.path.expanduser(os.path.join(base, "skacd", "features")))


def make_featurizer(encoder, *, device="auto", batch_size=32, num_workers="auto"):
    """Build the frozen featurizer an ``encoder`` specification names.

    Parameters
    ----------
    encoder : str or featurizer
        An encoder spec (see :func:`skacd.featurizers.from_spec`), e.g.
        ``"efficientnet_lite2"``, ``"timm:<architecture>[:<checkpoint>]"``,
        ``"clip:<model>[:<tag>]"``, ``"clip:<model>:<tag>:<checkpoint>"`` or
        ``"clip:skacd-tiny-ViT:none"`` (the tiny test encoder); or a
        featurizer object (``CLIPFeaturizer``, ``TimmFeaturizer``), which is
        cloned; ``device``, ``batch_size`` and ``num_workers`` are then its
        own.
    device : {"auto", "cpu", "cuda"}, default="auto"
        Device of a featurizer built from a string.
    batch_size : int, default=32
        Images per forward pass of a featurizer built from a string.
    num_workers : int or "auto", default="auto"
        DataLoader workers of a featurizer built from a string.

    Returns
    -------
    featurizer : BaseFeaturizer
        An unfitted featurizer (no cache, no image transform set yet).
    """
    from sklearn.base import clone

    from ..featurizers import BaseFeaturizer, from_spec

    if isinstance(encoder, BaseFeaturizer):
        return clone(encoder)
    if not isinstance(encoder, str):
        raise TypeError(
            "encoder must be a string such as 'efficientnet_lite2' or "
            f"'clip:ViT-L-14:openai', or a featurizer object; got {encoder!r}."
        )
    try:
        return from_spec(
            encoder, device=device, batch_size=batch_size, num_workers=num_workers
        )
    except ValueError as exc:
        raise ValueError(f"Unknown encoder {encoder!r}: {exc}") from None


def _featurize(featurizer, paths, label, log):
    start = time.perf_counter()
    result = featurizer.featurize(paths)
    seconds = time.perf_counter() - start
    n = len(paths)
    stats = {
        "set": label,
        "n_images": n,
        "n_cached": int(result.n_cached),
        "n_computed": n - int(result.n_cached),
        "seconds": round(seconds, 3),
    }
    log(
        f"  {label}: {n} images, {stats['n_cached']} from cache, "
        f"{stats['n_computed']} computed, {seconds:.1f} s"
    )
    return result.features, stats


def _transform_for(param, value):
    from ..featurizers import GaussianBlur, JPEGCompression, Resize

    if param == "resize_factor":
        # factor 1 is the identity: reuse the clean features.
        return None if float(value) == 1 else Resize(float(value))
    if param == "jpeg_quality":
        return JPEGCompression(int(value))
    if param == "blur_sigma":
        # sigma 0 is the identity: reuse the clean features.
        return None if float(value) == 0 else GaussianBlur(float(value))
    raise ValueError(param)  # pragma: no cover - internal


def _featurization_cost(featurizer, paths, n_images, log):
    """Images per second of each configuration the methods use, without cache.

    ``embedding``: the whole network, final embedding only (``layers=None``);
    ``early``: stages 0-3 only, the rest of the network pruned; ``fused``:
    stages 0-3 and the embedding in one pass.
    """
    from sklearn.base import clone

    configs = [
        ("embedding", None, [m for m in METHODS if m not in _METHOD_BLOCKS]),
        ("early", [0, 1, 2, 3], [m for m, b in _METHOD_BLOCKS.items() if b]),
        ("fused", [0, 1, 2, 3, "embedding"], ["fused"]),
    ]
    sample = list(paths[:n_images])
    rows = []
    for name, layers, users in configs:
        timed = clone(featurizer).set_params(cache=None, layers=layers, verbose=0)
        timed.fit()
        timed.transform(sample[: min(4, len(sample))])  # warm-up
        start = time.perf_counter()
        timed.transform(sample)
        seconds = time.perf_counter() - start
        rows.append(
            {
                "config": name,
                "layers": layers,
                "n_images": len(sample),
                "seconds": round(seconds, 3),
                "images_per_second": round(len(sample) / seconds, 2),
                "methods": users,
            }
        )
        log(f"  cost {name}: {len(sample) / seconds:.1f} img/s")
    return rows
