"""Sphinx configuration of the skacd documentation.

Build offline, warnings as errors, from the repository root::

    python -m sphinx -W --keep-going -b html docs docs/_build/html

Environment variables:

``SKACD_EXAMPLES_FAST=1``
    The gallery examples shrink their data (the docs test uses it). The
    examples still run.
``SKACD_DOCS_PLOT_GALLERY=0``
    Do not execute the examples (pages without outputs); for quick edits of
    the prose only. Release builds leave it unset.
``SKACD_DOCS_INTERSPHINX=1``
    Link to the Python, NumPy, scikit-learn, PyTorch and matplotlib docs. Off
    by default: intersphinx downloads inventories, and the docs build must
    work without network.
"""

import os
import sys
from pathlib import Path

import skacd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "sphinxext"))

# Examples draw with matplotlib; never open a window.
os.environ.setdefault("MPLBACKEND", "Agg")

# -- Project -----------------------------------------------------------------

project = "skacd"
author = "skacd developers"
copyright = "skacd developers, BSD-3-Clause"
release = skacd.__version__
version = ".".join(release.split(".")[:2])

# -- General -----------------------------------------------------------------

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

# MathJax from a local copy when the optional package is installed, so that
# equations render without network; otherwise Sphinx's default CDN URL.
try:
    import importlib

    importlib.import_module("sphinx-mathjax-offline")
except ImportError:
    pass
else:
    extensions.append("sphinx-mathjax-offline")

if os.environ.get("SKACD_DOCS_INTERSPHINX", "0") == "1":
    extensions.append("sphinx.ext.intersphinx")
    intersphinx_mapping = {
        "python": ("https://docs.python.org/3", None),
        "numpy": ("https://numpy.org/doc/stable", None),
        "sklearn": ("https://scikit-learn.org/stable", None),
        "torch": ("https://docs.pytorch.org/docs/stable", None),
        "matplotlib": ("https://matplotlib.org/stable", None),
    }

templates_path = ["_templates"]
exclude_patterns = [
    "_build",
    "auto_examples/*.ipynb",
    "auto_examples/*.py",
    "auto_examples/*.zip",
    "auto_examples/*.md5",
    "auto_examples/*.json",
    "**.ipynb_checkpoints",
]
root_doc = "index"
default_role = "literal"
nitpicky = False

# -- autodoc / autosummary / numpydoc ----------------------------------------

autosummary_generate = True
autodoc_typehints = "none"

numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True
# As scikit-learn does: names in parameter types become :obj: references, so
# that "(n_features_in_,)" is not read as a reST hyperlink reference. Without
# intersphinx they render as code, unlinked.
numpydoc_xref_param_type = True
numpydoc_xref_ignore = {
    "of", "or", "and", "shape", "default", "optional", "instance", "in", "to",
    "the", "a", "an", "with", "than", "is", "as", "same", "like", "any", "one",
    "int", "float", "str", "bool", "dict", "list", "tuple", "object", "None",
    "callable", "ndarray", "array-like", "sparse", "matrix", "dtype", "file-like",
    "path-like", "iterable", "sequence", "True", "False", "float32", "float64",
    "uint8", "int64", "them", "its", "per", "each", "keyed", "by", "for", "on",
    "objects", "bytes", "scalar", "PIL", "Image",
}
numpydoc_xref_aliases = {
    "Pipeline": "sklearn.pipeline.Pipeline",
    "RandomState": "numpy.random.RandomState",
    "DataFrame": "pandas.DataFrame",
}
if "sphinx.ext.intersphinx" not in extensions:
    # numpydoc's default aliases point at the Python and NumPy docs
    # ("python:int", a glossary term for "array-like"), which only intersphinx
    # resolves: unresolved, they would warn or show as "python:int". Without
    # intersphinx, the names stay plain.
    try:
        from numpydoc.xref import DEFAULT_LINKS
    except ImportError:  # the build itself then stops: numpydoc is needed
        DEFAULT_LINKS = {}
    numpydoc_xref_aliases.update({name: name for name in DEFAULT_LINKS})
    numpydoc_xref_aliases.update(
        {"np.ndarray": "ndarray", "np.random.RandomState": "RandomState"}
    )
# Only checks that matter for rendering; GL08 (no docstring) is left to the
# code review, since inherited scikit-learn methods document themselves.
numpydoc_validation_checks = set()

# -- sphinx-gallery ----------------------------------------------------------

plot_gallery = os.environ.get("SKACD_DOCS_PLOT_GALLERY", "True")

sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "ignore_pattern": r"(__init__|_helpers)\.py",
    "within_subsection_order": "skacd_gallery.ExampleOrder",
    "backreferences_dir": "generated",
    "doc_module": ("skacd",),
    "plot_gallery": plot_gallery,
    "download_all_examples": False,
    # Every build executes every example, even unchanged ones: the gallery
    # shows what this version of skacd does (and a fast-mode test build never
    # leaves its small outputs behind for the next real build).
    "run_stale_examples": True,
    "remove_config_comments": True,
    "min_reported_time": 1,
    "show_memory": False,
    "thumbnail_size": (400, 280),
    "reset_modules": ("matplotlib",),
    "capture_repr": ("_repr_html_", "__repr__"),
    "image_scrapers": ("matplotlib",),
    "matplotlib_animations": False,
}

# -- HTML --------------------------------------------------------------------

try:
    import pydata_sphinx_theme  # noqa: F401
except ImportError:
    html_theme = "alabaster"
    html_theme_options = {"description": "Single-class attribution modeling"}
else:
    html_theme = "pydata_sphinx_theme"
    html_theme_options = {
        "navigation_with_keys": False,
        "show_prev_next": True,
        "navbar_end": ["theme-switcher", "navbar-icon-links"],
        "secondary_sidebar_items": ["page-toc"],
        "footer_start": ["copyright"],
        "footer_end": ["sphinx-version"],
        # Nothing fetched at build or view time.
        "icon_links": [],
    }
    # Pages without sub-pages get the full width (no empty navigation column).
    html_sidebars = {
        page: []
        for page in ("index", "install", "user_guide", "operating_point", "scaling",
                     "cli")
    }

html_title = f"skacd {release}"
html_static_path = []
html_last_updated_fmt = None
html_show_sourcelink = False


# -- Inherited scikit-learn methods ------------------------------------------
#
# ``get_params``, ``set_params``, ``set_output``, ``set_*_request`` and the
# mixins' ``score`` / ``fit_predict`` are scikit-learn's: their docstrings
# link into scikit-learn's own documentation (glossary terms, labels), which
# this offline build cannot resolve. The class pages list them by name
# instead (see _templates/class.rst).


def _defined_in_sklearn(obj):
    func = getattr(obj, "__func__", obj)
    module = getattr(func, "__module__", None) or ""
    return module == "sklearn" or module.startswith("sklearn.")


def _skip_sklearn_members(app, what, name, obj, skip, options):
    if what in ("class", "exception") and _defined_in_sklearn(obj):
        return True
    return None


# -- Command-line help, generated at build time --------------------------------
#
# cli.rst includes the --help text of each subcommand, so that the page never
# drifts from the parser.

CLI_COMMANDS = ("fit", "calibrate", "predict", "evaluate", "demo", "info")


def _write_cli_help(app):
    from skacd.cli import build_parser

    parser = build_parser()
    subparsers = next(
        action
        for action in parser._actions
        if action.__class__.__name__ == "_SubParsersAction"
    )
    out = HERE / "generated" / "cli"
    out.mkdir(parents=True, exist_ok=True)
    pages = {"skacd": parser}
    pages.update({f"skacd-{name}": subparsers.choices[name] for name in CLI_COMMANDS})
    columns = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "80"  # argparse wraps to the terminal width
    try:
        texts = {name: sub.format_help() for name, sub in pages.items()}
    finally:
        if columns is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = columns
    for name, text in texts.items():
        path = out / f"{name}.txt"
        if not path.exists() or path.read_text() != text:
            path.write_text(text)


def setup(app):
    app.connect("autodoc-skip-member", _skip_sklearn_members)
    app.connect("builder-inited", _write_cli_help)
