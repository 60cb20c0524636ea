"""The public API as the API reference (``docs/api.rst``) lists it.

Shared by the tests that check the reference is complete (``test_docs.py``)
and that every documented docstring follows numpydoc (``test_docstrings.py``).
"""

import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import skacd

API_PAGE = Path(__file__).resolve().parents[1] / "docs" / "api.rst"


def public_modules():
    """Names of skacd's modules without an underscore anywhere in the path."""
    names = ["skacd"]
    for info in pkgutil.walk_packages(skacd.__path__, prefix="skacd."):
        parts = info.name.split(".")
        if any(part.startswith("_") for part in parts):
            continue
        names.append(info.name)
    return names


def documented_objects():
    """(module, name) of every autosummary entry and autodata in api.rst."""
    documented = set()
    module = None
    in_autosummary = False
    for line in API_PAGE.read_text().splitlines():
        if match := re.match(r"\.\. currentmodule:: (\S+)", line):
            module = match[1]
            in_autosummary = False
        elif line.startswith(".. autosummary::"):
            in_autosummary = True
        elif match := re.match(r"\.\. autodata:: (\S+)", line):
            documented.add((module, match[1]))
        elif in_autosummary and re.match(r"   [A-Za-z_]\w*\s*$", line):
            documented.add((module, line.strip()))
        elif line and not line.startswith(" "):
            in_autosummary = False
    return documented


def documented_callables():
    """Import path and object of each documented class, function and method.

    Methods and properties count when a skacd class defines them (inherited
    scikit-learn methods are scikit-learn's to document).
    """
    seen = set()
    for module, name in sorted(documented_objects()):
        obj = getattr(importlib.import_module(module), name)
        if not (inspect.isclass(obj) or inspect.isfunction(obj)):
            continue
        path = f"{obj.__module__}.{obj.__qualname__}"
        if path in seen:
            continue
        seen.add(path)
        yield path, obj
        if not inspect.isclass(obj):
            continue
        for member_name, member in inspect.getmembers(obj):
            if member_name.startswith("_"):
                continue
            if not (inspect.isfunction(member) or isinstance(member, property)):
                continue
            owner = next(k for k in obj.__mro__ if member_name in vars(k))
            if owner.__module__.startswith("skacd"):
                yield f"{owner.__module__}.{owner.__qualname__}.{member_name}", member
