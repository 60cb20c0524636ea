"""Every gallery example runs headless, offline, in fast mode.

Each ``examples/plot_*.py`` runs in a subprocess with the Agg backend and
``SKACD_EXAMPLES_FAST=1`` (smaller data, the same code paths) and must exit 0
and say which data it used. The robustness example is also run the way
Sphinx-Gallery runs it (no ``__file__``, from the examples folder), and on its
synthetic stand-in when no image set is found.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("matplotlib")

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES_DIR = ROOT / "examples"
EXAMPLES = sorted(EXAMPLES_DIR.glob("plot_*.py"))
SHARED_DATA = ROOT.parent / "shared" / "data"
HAS_SHARED_DATA = (SHARED_DATA / "sd-coco" / "train").is_dir()

TIMEOUT_S = 600


def _env(**extra):
    env = {k: v for k, v in os.environ.items() if k != "SKACD_DATA"}
    env.update({"MPLBACKEND": "Agg", "SKACD_EXAMPLES_FAST": "1"})
    # One torch thread: the examples' networks are tiny, and on a busy machine
    # (tests run beside other jobs) torch's intra-op threads wait on each other
    # far longer than they compute. A value set by the caller wins.
    env.setdefault("OMP_NUM_THREADS", "1")
    env.update(extra)
    return env


def _run(args, env):
    result = subprocess.run(
        [sys.executable, *args],
        cwd=EXAMPLES_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    assert result.returncode == 0, (
        f"{args} exited with {result.returncode}\n--- stdout ---\n"
        f"{result.stdout[-4000:]}\n--- stderr ---\n{result.stderr[-4000:]}"
    )
    return result.stdout


def test_the_gallery_has_its_examples():
    names = {path.name for path in EXAMPLES}
    assert {
        "plot_quick_start.py",
        "plot_cross_generator_grid_search.py",
        "plot_diagnostics.py",
        "plot_robustness.py",
    } <= names


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda path: path.name)
def test_example_runs(example):
    stdout = _run([example.name], _env())
    # Every example says which data it used.
    assert "SYNTHETIC" in stdout or "REAL images" in stdout, stdout[-2000:]


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda path: path.name)
def test_example_opens_with_a_titled_docstring(example):
    source = example.read_text()
    assert source.startswith('"""'), "Sphinx-Gallery needs the docstring first"
    lines = source.split('"""')[1].strip().splitlines()
    # "=====", "Title", "=====" (or "Title", "=====")
    title = lines[1] if set(lines[0]) == {"="} else lines[0]
    assert title.strip() and set(title.strip()) != {"="}
    assert "# %%" in source, "cells are separated with '# %%'"


@pytest.mark.slow
@pytest.mark.data
@pytest.mark.skipif(not HAS_SHARED_DATA, reason="../shared/data is absent")
def test_robustness_uses_real_images_without_file_like_sphinx_gallery():
    # Sphinx-Gallery executes the code without __file__, from the example's
    # folder: the example must still find ../shared/data.
    code = (
        "g = {'__name__': '__main__'}; "
        "src = open('plot_robustness.py').read(); "
        "exec(compile(src, 'plot_robustness.py', 'exec'), g)"
    )
    stdout = _run(["-c", code], _env())
    assert "REAL images" in stdout
    assert "efficientnet_lite2" in stdout


def test_robustness_falls_back_to_synthetic_features(tmp_path):
    stdout = _run(["plot_robustness.py"], _env(SKACD_DATA=str(tmp_path)))
    assert "SYNTHETIC" in stdout
    assert "REAL images" not in stdout

