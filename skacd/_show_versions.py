"""The version report: skacd, Python and the installed dependencies.

One function, :func:`get_versions`, serves the detector files' manifest, the
benchmark's configuration and ``skacd info``; :func:`show_versions` prints it
(compare :func:`sklearn.show_versions`). Versions are read from the installed
distributions' metadata, so nothing heavy (torch) is imported.
"""

import importlib.metadata
import platform

from ._version import __version__

__all__ = ["distribution_version", "get_versions", "show_versions"]

#: The distributions ``skacd info`` and :func:`show_versions` report.
DEPENDENCIES = (
    "torch", "torchvision", "scikit-learn", "numpy", "pillow", "open_clip_torch",
    "timm", "safetensors", "tqdm", "umap-learn",
)


def distribution_version(name):
    """The installed version of the distribution ``name``, or None."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def get_versions(distributions=DEPENDENCIES):
    """Versions of skacd, Python and ``distributions``, as a dict.

    Parameters
    ----------
    distributions : sequence of str, default=DEPENDENCIES
        Distribution names as pip spells them (``"scikit-learn"``,
        ``"open_clip_torch"``); one that is not installed maps to None.

    Returns
    -------
    versions : dict of str to str or None
        ``"skacd"`` (the running code's version), ``"python"``, then each
        distribution in the order given.

    Examples
    --------
    >>> from skacd._show_versions import get_versions
    >>> versions = get_versions(["numpy"])
    >>> list(versions)
    ['skacd', 'python', 'numpy']
    """
    versions = {"skacd": __version__, "python": platform.python_version()}
    for name in distributions:
        versions[name] = distribution_version(name)
    return versions


def show_versions():
    """Print the versions of skacd, Python and its dependencies.

    For bug reports; ``skacd info`` prints them too, with the device and
    the installed encoder weights.

    Examples
    --------
    >>> import skacd
    >>> skacd.show_versions()  # doctest: +ELLIPSIS
    skacd: ...
    python: ...
    torch: ...
    """
    for name, version in get_versions().items():
        print(f"{name}: {version if version is not None else 'not installed'}")
