"""One hierarchy: every skacd error is a SkacdError, every warning a SkacdWarning."""

import inspect
import os
import subprocess
import sys
import warnings

import pytest

from skacd import exceptions
from skacd.exceptions import (
    CacheWarning,
    CalibrationWarning,
    DetectorFileError,
    DeviceWarning,
    ImageLoadError,
    ImageLoadWarning,
    PreprocessingMismatchError,
    SkacdError,
    SkacdWarning,
    UsageError,
    WeightsUnavailableError,
)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _defined_here():
    return [
        obj for _, obj in inspect.getmembers(exceptions, inspect.isclass)
        if obj.__module__ == exceptions.__name__
    ]


def test_every_class_is_under_the_base_error_or_warning():
    for cls in _defined_here():
        if cls in (SkacdError, SkacdWarning):
            continue
        assert issubclass(cls, (SkacdError, SkacdWarning)), cls
        assert cls.__name__ in exceptions.__all__
    assert issubclass(SkacdWarning, UserWarning)
    assert not issubclass(SkacdError, Warning)


@pytest.mark.parametrize("cls, standard", [
    (DetectorFileError, ValueError),
    (ImageLoadError, ValueError),
    (PreprocessingMismatchError, ValueError),
    (WeightsUnavailableError, OSError),
    (CacheWarning, UserWarning),
    (CalibrationWarning, UserWarning),
    (DeviceWarning, UserWarning),
    (ImageLoadWarning, UserWarning),
])
def test_standard_base_classes_are_kept(cls, standard):
    assert issubclass(cls, standard)


def test_errors_keep_their_messages_and_pickle():
    import pickle

    error = ImageLoadError("a.png", "truncated")
    assert isinstance(error, SkacdError) and isinstance(error, ValueError)
    again = pickle.loads(pickle.dumps(error))
    assert (again.source, again.reason, str(again)) == (
        error.source, error.reason, str(error)
    )
    with pytest.raises(SkacdError, match="missing folder"):
        raise UsageError("missing folder")


def test_one_home_for_the_moved_classes():
    import skacd.cache
    import skacd.io

    assert skacd.io.DetectorFileError is DetectorFileError
    assert skacd.DetectorFileError is DetectorFileError
    assert skacd.SkacdError is SkacdError and skacd.SkacdWarning is SkacdWarning
    assert skacd.cache.CacheWarning is CacheWarning


def test_not_fitted_error_is_scikit_learns():
    from sklearn.exceptions import NotFittedError

    assert exceptions.NotFittedError is NotFittedError
    from skacd.exceptions import NotFittedError as again

    assert again is NotFittedError
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = exceptions.nope


def test_importing_the_exceptions_imports_nothing_heavy():
    code = ("import sys, skacd.exceptions\n"
            "print(sorted(m for m in ('torch', 'sklearn', 'numpy')"
            " if m in sys.modules))")
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[]"


def test_cache_problems_are_cache_warnings(tmp_path):
    from skacd.cache import FeatureCache

    cache = FeatureCache(tmp_path)
    key = FeatureCache.make_key({"encoder": "x"}, b"image")
    cache.put(key, [1.0, 2.0])
    path = cache._path(key)
    with open(path, "r+b") as fh:
        fh.seek(40)
        fh.write(b"\xff\xff")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert cache.get(key) is None
    assert [w.category for w in caught] == [CacheWarning]
