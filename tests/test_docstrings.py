"""Every docstring of the public API follows numpydoc, as scikit-learn's own
``test_docstrings.py`` checks: ``numpydoc.validate`` on each class, function,
method and property that ``docs/api.rst`` documents.
"""

import inspect

import pytest

from _api_reference import documented_callables

numpydoc_validate = pytest.importorskip("numpydoc.validate")

# Checks not held to, as scikit-learn does not hold to them either.
IGNORED = {
    "ES01",  # an extended summary: many short methods need none
    "SA01",  # a See Also section
    "RT02",  # numpydoc wants the type alone on the Returns line; we name values
}


# Records that functions return and users never build: their fields are
# documented under Attributes, their example is the returning function's.
RESULT_RECORDS = {
    "skacd.featurizers._base.FeaturizeResult",  # BaseFeaturizer.featurize
    "skacd.evaluation._results.CrossGeneratorResult",  # cross_generator_benchmark
}
# Abstract bases: their concrete subclasses carry the examples.
ABSTRACT = {"skacd.featurizers._base.BaseFeaturizer"}


def _checked(path, obj, code):
    if code in IGNORED:
        return False
    if path in RESULT_RECORDS and code in ("PR01", "EX01"):
        return False
    if code == "EX01":
        return _examples_required(path, obj)
    return True


def _examples_required(path, obj):
    """Classes and functions carry a runnable example; methods, properties,
    exception classes and abstract bases need none."""
    if isinstance(obj, property) or path in ABSTRACT:
        return False
    if inspect.isclass(obj):
        return not issubclass(obj, (Exception, Warning))
    return "." not in obj.__qualname__


PUBLIC = list(documented_callables())


def test_public_api_is_found():
    paths = {path for path, _ in PUBLIC}
    assert "skacd.attribution.AttributionSpace" in paths
    assert "skacd.attribution.AttributionSpace.fit" in paths
    assert len(paths) > 50
    assert RESULT_RECORDS | ABSTRACT <= paths  # the exceptions name real objects


@pytest.mark.parametrize("path, obj", PUBLIC, ids=[path for path, _ in PUBLIC])
def test_docstring(path, obj):
    result = numpydoc_validate.validate(path)
    errors = [
        f"{code}: {message}"
        for code, message in result["errors"]
        if _checked(path, obj, code)
    ]
    where = f"{path} ({result['file']}:{result['file_line']})"
    assert not errors, where + ":\n" + "\n".join(errors)
