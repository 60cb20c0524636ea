"""Finding pretrained weights on disk, and failing fast when offline."""

import os
import socket
from urllib.parse import urlparse

from ..exceptions import WeightsUnavailableError

__all__ = ["hub_file_in_cache", "check_hub_reachable", "file_identity"]

PROBE_TIMEOUT_S = 3.0


def hub_file_in_cache(repo_id, filenames, cache_dir=None):
    """Path of the first of ``filenames`` already in the Hugging Face cache, or None."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover - huggingface_hub comes with open_clip
        return None
    for filename in filenames:
        path = try_to_load_from_cache(repo_id, filename, cache_dir=cache_dir)
        if isinstance(path, str) and os.path.isfile(path):
            return path
    return None


def _offline_env():
    return any(
        os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")
        for name in ("HF_HUB_OFFLINE", "SKACD_OFFLINE")
    )


def check_hub_reachable(url, what, how_to_fix):
    """Raise :class:`WeightsUnavailableError` within seconds if ``url`` is unreachable.

    The hub clients retry for close to a minute before giving up; a single TCP
    connection attempt with a short timeout answers the same question.
    ``HF_HUB_OFFLINE=1`` or ``SKACD_OFFLINE=1`` skip the attempt.
    """
    host = urlparse(url).hostname or url
    port = urlparse(url).port or 443
    if _offline_env():
        reason = "offline mode is set (HF_HUB_OFFLINE or SKACD_OFFLINE)"
    else:
        try:
            socket.create_connection((host, port), timeout=PROBE_TIMEOUT_S).close()
            return
        except OSError as exc:
            reason = f"{host} cannot be reached ({exc.__class__.__name__}: {exc})"
    raise WeightsUnavailableError(
        f"Cannot load the weights for {what}: they are not on this machine and "
        f"{reason}. "
        f"{how_to_fix}"
    )


def file_identity(path):
    """Identify a local weights file cheaply: absolute path, size and mtime."""
    stat = os.stat(path)
    return f"{os.path.abspath(path)}:{stat.st_size}:{stat.st_mtime_ns}"
