"""What the benchmark records about the machine and the libraries it ran on."""

import os
import platform


def _versions(identity):
    """The versions of the run's libraries, and of the encoder's own."""
    from .._show_versions import get_versions

    versions = get_versions(("numpy", "scikit-learn", "torch"))
    library = identity.get("library")
    if library:
        versions[library] = identity.get("library_version")
    return versions


def _machine():
    import torch

    machine = {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    return machine
