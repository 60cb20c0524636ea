"""The documentation: every public name in the API reference, an offline
configuration, and (slow) a full ``sphinx -W`` build that runs the gallery.

The build test runs the README's command, with ``SKACD_EXAMPLES_FAST=1`` so
that the examples run on less data, into a temporary folder. It skips when
the ``docs`` extra (Sphinx, numpydoc, sphinx-gallery) is not installed.
"""

import importlib
import importlib.util
import os
import re
import runpy
import subprocess
import sys
import time
from pathlib import Path

import pytest

from _api_reference import documented_objects, public_modules

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
EXAMPLES = sorted((ROOT / "examples").glob("plot_*.py"))

# Re-exports documented where they come from.
NOT_DOCUMENTED_HERE = {
    ("skacd", "__version__"),
    ("skacd.exceptions", "NotFittedError"),  # scikit-learn's
}


def test_api_reference_lists_every_public_name():
    documented = documented_objects()
    documented_ids = set()
    for module, name in documented:
        obj = getattr(importlib.import_module(module), name)
        documented_ids.add(id(obj))
    missing = []
    for module_name in public_modules():
        module = importlib.import_module(module_name)
        for name in getattr(module, "__all__", []):
            if (module_name, name) in NOT_DOCUMENTED_HERE:
                continue
            obj = getattr(module, name)
            if (module_name, name) in documented or id(obj) in documented_ids:
                continue
            missing.append(f"{module_name}.{name}")
    assert not missing, (
        "Public names missing from docs/api.rst (add them to an autosummary "
        f"list): {missing}"
    )


def test_api_reference_names_exist():
    for module, name in documented_objects():
        assert hasattr(importlib.import_module(module), name), f"{module}.{name}"


def test_docs_configuration_fetches_nothing():
    env = {k: v for k, v in os.environ.items() if k != "SKACD_DOCS_INTERSPHINX"}
    code = (
        "import runpy, json; c = runpy.run_path('docs/conf.py'); "
        "print(json.dumps([c['extensions'], c['sphinx_gallery_conf']['plot_gallery'],"
        " c['sphinx_gallery_conf']['run_stale_examples'],"
        " c['sphinx_gallery_conf']['backreferences_dir'],"
        " c['sphinx_gallery_conf']['doc_module']]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
        text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    import json

    extensions, plot_gallery, run_stale, backreferences, doc_module = json.loads(
        result.stdout.strip().splitlines()[-1]
    )
    assert "sphinx.ext.intersphinx" not in extensions
    assert plot_gallery in (True, "True")
    assert run_stale is True
    assert backreferences
    assert doc_module == ["skacd"]


def test_every_example_is_in_the_gallery_order():
    order = runpy.run_path(str(DOCS / "sphinxext" / "skacd_gallery.py"))["ORDER"]
    assert sorted(order) == sorted(path.name for path in EXAMPLES)


def _docs_requirements_missing():
    return [
        name
        for name in ("sphinx", "numpydoc", "sphinx_gallery")
        if importlib.util.find_spec(name) is None
    ]


@pytest.mark.slow
@pytest.mark.skipif(
    bool(_docs_requirements_missing()),
    reason="the docs extra is not installed: pip install -e '.[docs]'",
)
def test_docs_build_without_warnings(tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "html"
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("SKACD_DOCS_PLOT_GALLERY", "SKACD_DOCS_INTERSPHINX")
    }
    env.update({"MPLBACKEND": "Agg", "SKACD_EXAMPLES_FAST": "1"})
    env.setdefault("OMP_NUM_THREADS", "1")  # as in test_examples.py
    started = time.monotonic()
    result = subprocess.run(
        [
            sys.executable, "-m", "sphinx", "-W", "--keep-going", "-b", "html",
            "-d", str(tmp_path / "doctrees"), "docs", str(out),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    elapsed = time.monotonic() - started
    assert result.returncode == 0, (
        f"sphinx -W failed after {elapsed:.0f} s\n--- stdout ---\n"
        f"{result.stdout[-3000:]}\n--- stderr ---\n{result.stderr[-6000:]}"
    )

    for page in ("index", "install", "user_guide", "api", "cli",
                 "auto_examples/index"):
        assert (out / f"{page}.html").is_file(), page

    # The gallery ran: every example page has its figures, on disk.
    gallery = (out / "auto_examples" / "index.html").read_text()
    for example in EXAMPLES:
        stem = example.stem
        assert f"{stem}.html" in gallery, stem
        page = (out / "auto_examples" / f"{stem}.html").read_text()
        images = re.findall(r'src="(\.\./_images/sphx_glr_[^"]+\.png)"', page)
        assert images, f"{stem} shows no figure: was it executed?"
        for src in images:
            assert (out / "auto_examples" / src).resolve().is_file(), src
        assert "SYNTHETIC" in page or "REAL images" in page, stem

    # API pages link back to the examples that use them.
    api_page = (out / "generated" / "skacd.AttributionSpace.html").read_text()
    assert "plot_quick_start.html" in api_page

    # Equations are rendered by MathJax, not left as raw TeX in the page.
    guide = (out / "user_guide.html").read_text()
    assert "mathjax" in guide.lower()
