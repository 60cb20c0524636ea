"""Parameter constraints of skacd's own, for ``_parameter_constraints``.

scikit-learn's ``validate_parameter_constraints`` accepts only its own
constraint types, so these subclass the nearest of them (``StrOptions``,
``HasMethods``) and override what is checked and how it reads in the error
message, which names the parameter: ``The 'device' parameter of
AttributionSpace must be ... Got 'gpu' instead.``
"""

import re
from numbers import Integral

import numpy as np

from ._compat import HasMethods, StrOptions

__all__ = ["DeviceName", "PositiveIntSizes"]


class DeviceName(StrOptions):
    """A torch device name skacd uses: 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'.

    The same names a detector file may hold (:func:`skacd.load`); any other
    string, such as ``"gpu"``, fails validation instead of reaching torch.
    """

    _PATTERN = re.compile(r"auto|cpu|mps|cuda(:\d+)?")

    def __init__(self):
        super().__init__({"auto", "cpu", "cuda"})

    def is_satisfied_by(self, val):
        return isinstance(val, str) and self._PATTERN.fullmatch(val) is not None

    def __str__(self):
        return "a str among 'auto', 'cpu', 'cuda', 'cuda:N' (N an integer) or 'mps'"


class PositiveIntSizes(HasMethods):
    """A one-dimensional array-like of positive ints (layer widths), maybe empty."""

    def __init__(self):
        super().__init__(["__len__"])

    def is_satisfied_by(self, val):
        if isinstance(val, (str, bytes)) or not hasattr(val, "__len__"):
            return False
        try:
            values = np.asarray(val, dtype=object)
        except Exception:  # ragged or odd input
            return False
        if values.ndim != 1:
            return False
        return all(
            isinstance(v, Integral) and not isinstance(v, (bool, np.bool_)) and v >= 1
            for v in values
        )

    def __str__(self):
        return "an array-like of positive ints, e.g. (64,)"
