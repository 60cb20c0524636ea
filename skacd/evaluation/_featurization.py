"""The benchmark's featurizer, its feature cache and its perturbed test sets."""

import os
import time
from collections import namedtuple

from ._methods import _METHOD_BLOCKS, METHODS, methods_need_layers


def default_cache_dir():
    """Return the feature cache directory used when none is given.

    ``$SKACD_CACHE_DIR`` when set, else ``$XDG_CACHE_HOME/skacd/features``,
    else ``~/.cache/skacd/features``. The cache is content-addressed (keyed by
    encoder, weights, preprocessing, perturbation and image bytes), so one
    cache can safely serve every project and working directory.

    Returns
    -------
    directory : str
        An absolute path (not created here).

    Examples
    --------
    >>> import os
    >>> from skacd.evaluation import default_cache_dir
    >>> os.path.isabs(default_cache_dir())
    True
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

    Examples
    --------
    >>> from skacd.evaluation import make_featurizer
    >>> featurizer = make_featurizer("clip:skacd-tiny-ViT:none", device="cpu")
    >>> type(featurizer).__name__, featurizer.pretrained
    ('CLIPFeaturizer', None)
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


def _open_cache(cache):
    """The :class:`~skacd.cache.FeatureCache` that ``cache`` names, or None."""
    from ..cache import FeatureCache

    if isinstance(cache, str) and cache == "default":
        cache = default_cache_dir()
    if cache is None:
        return None
    return cache if isinstance(cache, FeatureCache) else FeatureCache(cache)


def _configure_featurizer(encoder, methods, cache_obj, *, layers, pooling, device,
                          batch_size, num_workers):
    """The run's featurizer: reading the layers ``methods`` need, through the
    cache."""
    featurizer = make_featurizer(
        encoder, device=device, batch_size=batch_size, num_workers=num_workers
    )
    featurizer.set_params(cache=cache_obj, image_transform=None)
    if isinstance(encoder, str) and methods_need_layers(methods):
        from ..fusion import reading_branches

        reading_branches(featurizer)
    if layers is not None:
        featurizer.set_params(layers=layers)
    if pooling is not None:
        featurizer.set_params(pooling=pooling)
    return featurizer


def _sweep_values(jpeg_qualities, blur_sigmas, resize_factors):
    """``(param, value)`` of every perturbed test set, in report order."""
    return [("jpeg_quality", int(q)) for q in jpeg_qualities] + [
        ("blur_sigma", float(s)) for s in blur_sigmas
    ] + [
        ("resize_factor", float(f)) for f in resize_factors
    ]


def _total(stats_list):
    return {
        "n_images": sum(s["n_images"] for s in stats_list),
        "n_cached": sum(s["n_cached"] for s in stats_list),
        "n_computed": sum(s["n_computed"] for s in stats_list),
        "seconds": round(sum(s["seconds"] for s in stats_list), 3),
    }


#: Every feature matrix of one run, and how it was made.
_Features = namedtuple(
    "_Features",
    ["X_train", "X_test", "feature_names", "identity", "test_sets", "featurization"],
)


def _featurize_sets(featurizer, cache_obj, train_paths, test_paths, methods, sweeps,
                    cost_images, log):
    """Featurize every image once: the clean training and test sets, then each
    perturbed test set of ``sweeps``; a :class:`_Features`."""
    import numpy as np
    from sklearn.base import clone

    log("featurizing (clean):")
    t0 = time.perf_counter()
    featurizer.fit()
    identity = dict(featurizer.encoder_identity_)
    load_seconds = time.perf_counter() - t0
    X_train, s_train = _featurize(featurizer, train_paths, "train", log)
    X_test, s_test = _featurize(featurizer, test_paths, "test", log)
    feature_names = None
    if featurizer.layers is not None:
        feature_names = featurizer.get_feature_names_out()
    elif methods_need_layers(methods):
        raise ValueError(
            f"The methods {[m for m in methods if m in _METHOD_BLOCKS]} need "
            "intermediate-layer features: give a featurizer with layers=[0, 1, 2, "
            "3, 'embedding'] or an encoder name."
        )
    sets = [s_train, s_test]
    log(
        f"clean features: {len(train_paths) + len(test_paths)} images, "
        f"{s_train['n_cached'] + s_test['n_cached']} from cache, "
        f"{s_train['n_computed'] + s_test['n_computed']} computed, "
        f"{s_train['seconds'] + s_test['seconds']:.1f} s"
    )
    test_sets = []  # (param, value, features) of the sweeps
    if sweeps:
        log("featurizing (perturbed test images):")
    for param, value in sweeps:
        transform = _transform_for(param, value)
        if transform is None:
            test_sets.append((param, value, X_test))
            continue
        perturbed = clone(featurizer).set_params(
            cache=cache_obj, image_transform=transform
        )
        X_p, stats = _featurize(perturbed, test_paths, f"test {transform!r}", log)
        stats.update(param=param, value=value)
        sets.append(stats)
        test_sets.append((param, value, X_p))

    featurization = {
        "encoder_load_seconds": round(load_seconds, 3),
        "sets": sets,
        "clean": _total(sets[:2]),
        "perturbed": _total(sets[2:]),
    }
    if cache_obj is not None:
        featurization["cache_stats"] = dict(cache_obj.stats)
    if cost_images and feature_names is not None:
        log("featurization cost (no cache):")
        featurization["cost"] = _featurization_cost(
            featurizer, test_paths, int(cost_images), log
        )
    p = featurization["perturbed"]
    if p["n_images"]:
        log(
            f"perturbed features: {p['n_images']} images, {p['n_cached']} from "
            f"cache, {p['n_computed']} computed, {p['seconds']:.1f} s"
        )
    for name, X in (("train", X_train), ("test", X_test)):
        if not np.all(np.isfinite(X)):
            raise ValueError(f"Non-finite {name} features: check the images.")
    return _Features(X_train, X_test, feature_names, identity, test_sets,
                     featurization)
