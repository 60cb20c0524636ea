"""JSON-safe conversion: the one place that turns numpy values, paths and
non-finite floats into plain JSON.

Imports neither numpy nor torch: numpy values are recognised by their
``item`` / ``tolist`` methods, so the command line can use it while parsing.
"""

import math
import os

__all__ = ["json_safe", "to_builtin"]


def to_builtin(value):
    """The Python scalar a numpy (or torch) scalar holds; ``value`` otherwise.

    Examples
    --------
    >>> import numpy as np
    >>> from skacd._json import to_builtin
    >>> to_builtin(np.int64(3)), to_builtin(np.bool_(True)), to_builtin("fake")
    (3, True, 'fake')
    """
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:
        return value.item()
    return value


def json_safe(obj):
    """``obj`` as plain JSON-serialisable Python objects.

    Dict keys become strings, tuples lists, numpy scalars and arrays Python
    scalars and lists, paths strings, and NaN or infinite floats ``None``
    (strict JSON has no such numbers).

    Examples
    --------
    >>> import numpy as np
    >>> from skacd._json import json_safe
    >>> json_safe({1: (np.float32(0.5), float("nan")), "a": np.arange(2)})
    {'1': [0.5, None], 'a': [0, 1]}
    """
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if hasattr(obj, "tolist") and getattr(obj, "ndim", 0):
        return json_safe(obj.tolist())
    obj = to_builtin(obj)
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj
