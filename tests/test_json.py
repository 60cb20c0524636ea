"""skacd._json: one JSON-safe conversion."""

import json
import math
from pathlib import Path

import numpy as np

from skacd._json import json_safe, to_builtin


def test_json_safe_is_strict_json():
    value = {
        np.str_("g"): {"ap": np.float64(0.5), "n": np.int64(3), "ok": np.bool_(False)},
        "nan": float("nan"), "inf": np.float32("inf"), "path": Path("a") / "b",
        "array": np.arange(3, dtype=np.int32), "pair": (1, None),
    }
    out = json_safe(value)
    assert out == {
        "g": {"ap": 0.5, "n": 3, "ok": False}, "nan": None, "inf": None,
        "path": str(Path("a") / "b"), "array": [0, 1, 2], "pair": [1, None],
    }
    assert json.loads(json.dumps(out, allow_nan=False)) == out
    assert type(out["g"]["n"]) is int and type(out["g"]["ok"]) is bool


def test_to_builtin_keeps_other_values():
    assert to_builtin(np.float32(0.25)) == 0.25 and type(to_builtin(np.int8(1))) is int
    assert to_builtin("fake") == "fake" and math.isnan(to_builtin(float("nan")))
    array = np.arange(2)
    assert to_builtin(array) is array
