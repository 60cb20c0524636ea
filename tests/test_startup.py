"""The command line starts without torch; progress off a terminal is plain lines."""

import io
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HEAVY = ("torch", "sklearn", "open_clip", "timm")

_MAIN = """
import json, sys
from skacd.cli import main
code = main({argv!r})
print(json.dumps([code, sorted(m for m in {heavy!r} if m in sys.modules)]),
      file=sys.__stderr__)
"""


def _run_main(argv, heavy=HEAVY):
    """``main(argv)`` in a fresh interpreter: (exit code, heavy modules imported)."""
    run = subprocess.run(
        [sys.executable, "-c", _MAIN.format(argv=argv, heavy=heavy)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    return tuple(json.loads(run.stderr.strip().splitlines()[-1]))


@pytest.mark.parametrize("argv", [
    ["--help"],
    ["--version"],
    ["fit", "--help"],
    ["predict", "--help"],
    ["calibrate", "--help"],
    ["evaluate", "--help"],
    ["demo", "--help"],
    ["info", "--help"],
])
def test_help_imports_no_heavy_module(argv):
    assert _run_main(argv) == (0, [])


@pytest.mark.parametrize("argv", [
    [],
    ["no-such-command"],
    ["fit"],  # missing --data and -o: the default --encoder is converted first
    ["fit", "--data", "x", "-o", "y.skacd", "--latent-dim", "0"],
    ["predict"],
    ["evaluate", "--train", "a"],
    ["evaluate", "--train", "a", "--test", "b", "--methods", "nope"],
    # one usage error of every subcommand, and the known gaps
    ["calibrate"],
    ["calibrate", "d.skacd", "--real", "x", "-o", "c.skacd", "--target-fpr", "2"],
    ["predict", "d.skacd", "x", "--threshold", "nan"],
    ["demo", "--seed", "x"],
    ["info", "--nope"],
    ["evaluate", "--train", "a", "--test", "b", "--batch-size", "0"],
    ["evaluate", "--train", "a", "--test", "b", "--num-workers", "many"],
    # an explicit encoder spec is checked without the featurizers package
    ["fit", "--data", "x", "-o", "y.skacd", "--encoder", "clip:skacd-tiny-ViT:none",
     "--latent-dim", "0"],
    ["fit", "--data", "x", "-o", "y.skacd", "--encoder", "clip:"],
    ["evaluate", "--train", "a", "--test", "b", "--encoder", "bogus:x"],
    ["evaluate", "--train", "a", "--test", "b", "--jpeg-quality", "150"],
    ["evaluate", "--train", "a", "--test", "b", "--calibration-fraction", "1"],
    ["evaluate", "--train", "a", "--test", "b", "--blur-sigma", "-1"],
    ["evaluate", "--train", "a", "--test", "b", "--resize-factor", "0"],
    ["evaluate", "--train", "a", "--test", "b", "--seeds", "-1"],
    # usage errors found by the subcommand itself, before any heavy import
    ["fit", "--one-class", "--augment", "--data", "x", "-o", "y.skacd"],
    ["fit", "--data", "x", "-o", "y.skacd", "--detector", "fused", "--solver", "adam"],
    ["fit", "--data", "x", "-o", os.path.join("no", "such", "folder", "y.skacd")],
    ["fit", "--one-class", "--cv", "1", "--data", "x", "-o", "y.skacd"],
    ["predict", "d.skacd", "x", "-o", "scores.txt"],
    ["calibrate", "d.skacd", "--real", "x", "-o", os.path.join("no", "c.skacd")],
])
def test_usage_error_imports_no_heavy_module(argv):
    assert _run_main(argv) == (2, [])


@pytest.mark.parametrize("command", [
    None, "fit", "predict", "calibrate", "evaluate", "demo", "info",
])
def test_help_imports_not_even_numpy(command):
    argv = ["--help"] if command is None else [command, "--help"]
    assert _run_main(argv, heavy=HEAVY + ("numpy", "PIL")) == (0, [])


def test_encoder_spec_check_is_the_featurizers_own():
    from skacd import _encoder_spec
    from skacd.featurizers import _spec

    assert _spec.parse_spec is _encoder_spec.parse_spec  # one grammar, one home


def test_python_m_skacd_help_imports_no_heavy_module():
    code = ("import runpy, sys\nsys.argv = ['skacd', '--help']\n"
            "try:\n    runpy.run_module('skacd', run_name='__main__', alter_sys=True)\n"
            "except SystemExit as exc:\n    assert exc.code == 0, exc.code\n"
            f"print(sorted(m for m in {HEAVY!r} if m in sys.modules), "
            "file=sys.__stderr__)\n")
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "usage: skacd" in run.stdout
    assert run.stderr.strip().splitlines()[-1] == "[]"


def test_package_root_is_lazy():
    code = ("import sys, skacd\n"
            f"print(sorted(m for m in {HEAVY!r} if m in sys.modules), "
            "skacd.__version__)")
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    import skacd

    assert run.stdout.split() == ["[]", skacd.__version__]


def test_package_root_public_names():
    import skacd
    from skacd import AttributionSpace, TimmFeaturizer, load  # noqa: F401
    from skacd.attribution import AttributionSpace as defined
    from skacd.io import save as save_defined

    assert skacd.__all__ == [
        "AttributionSpace", "AttributionClassifier", "CLIPFeaturizer",
        "ConformalThresholdClassifier", "OneClassDetector", "TimmFeaturizer",
        "BlockSelector", "make_detector", "load", "save", "__version__",
    ]
    assert AttributionSpace is defined and skacd.save is save_defined
    for name in skacd.__all__:
        assert getattr(skacd, name) is not None
        assert name in dir(skacd)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        skacd.nope  # noqa: B018 - the access is what is tested
    assert not hasattr(skacd, "nope")


def test_plain_encoders_are_the_prefixless_specs():
    from skacd._encoder_spec import _LITE
    from skacd.cli._arguments import _encoder_arg

    for spec in _LITE:
        assert _encoder_arg(spec) == spec  # valid as they are, no prefix


# -- progress ----------------------------------------------------------------


class _Terminal(io.StringIO):
    def isatty(self):
        return True


class _Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_progress_off_a_terminal_writes_occasional_plain_lines():
    from skacd._progress import PlainProgress

    stream, clock = io.StringIO(), _Clock()
    report = PlainProgress(1000, "Featurizer", "img", file=stream, interval=10,
                           clock=clock)
    for _ in range(100):  # 100 updates within 9.9 s: nothing yet
        clock.now += 0.099
        report.update(1)
    assert stream.getvalue() == ""
    clock.now += 0.2
    report.update(1)
    report.set_postfix(failed=2)
    for _ in range(5):  # within the next 10 s: still the one line
        clock.now += 1
        report.update(10)
    clock.now += 6
    report.update(10)
    report.close()
    lines = stream.getvalue().splitlines()
    assert "\r" not in stream.getvalue()
    assert lines == [
        "Featurizer: 101/1000 img (10%), 10 s elapsed",
        "Featurizer: 161/1000 img (16%), 21 s elapsed, failed=2",
        "Featurizer: 161/1000 img (16%), 21 s elapsed, failed=2",
    ]


def test_progress_short_run_off_a_terminal_writes_nothing():
    from skacd._progress import PlainProgress, progress

    stream = io.StringIO()
    report = progress(10, "fit", "epoch", file=stream, mininterval=0.5)
    assert isinstance(report, PlainProgress)
    for _ in range(10):
        report.update(1)
    report.close()
    assert stream.getvalue() == ""


def test_progress_on_a_terminal_is_tqdm():
    from tqdm import tqdm

    from skacd._progress import progress

    stream = _Terminal()
    report = progress(3, "fit", "epoch", file=stream, mininterval=0)
    assert isinstance(report, tqdm)
    report.update(3)
    report.close()
    assert "fit" in stream.getvalue() and "3/3" in stream.getvalue()


def test_featurizer_progress_in_a_log_is_plain_lines(tiny_clip, image_folder,
                                                     monkeypatch, capsys):
    import skacd._progress

    _, paths, _, _ = image_folder
    monkeypatch.setattr(skacd._progress, "PLAIN_INTERVAL", 0.0)
    tiny_clip.set_params(verbose=1).fit_transform(paths[:16])
    err = capsys.readouterr().err
    assert "\r" not in err
    lines = [line for line in err.splitlines() if line.startswith("CLIPFeaturizer:")]
    assert lines[0].startswith("CLIPFeaturizer: 8/16 img (50%)")
    assert lines[-1].startswith("CLIPFeaturizer: 16/16 img (100%)")


def test_version_has_one_home():
    import skacd
    from skacd._version import __version__

    assert skacd.__version__ is __version__
    with open(os.path.join(ROOT, "pyproject.toml"), encoding="utf-8") as fh:
        pyproject = fh.read()
    assert 'dynamic = ["version"]' in pyproject
    assert 'attr = "skacd._version.__version__"' in pyproject


def test_one_version_report(capsys):
    import skacd
    from skacd._show_versions import get_versions

    versions = get_versions()
    assert versions["skacd"] == skacd.__version__ and versions["python"]
    assert versions["torch"] and versions["scikit-learn"]
    assert get_versions(["no-such-distribution"])["no-such-distribution"] is None
    skacd.show_versions()
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"skacd: {skacd.__version__}" and len(out) == len(versions)


def test_version_report_imports_no_heavy_module():
    code = ("import sys, skacd\nskacd.show_versions()\n"
            f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))")
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines()[-1] == "[]"


def test_an_import_error_in_the_evaluation_code_surfaces():
    code = ("import sys\nsys.modules['skacd.evaluation._methods'] = None\n"
            "from skacd.cli import main\nmain(['--help'])\n")
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode != 0
    assert "skacd.evaluation._methods" in run.stderr and "Error" in run.stderr


def test_a_bad_encoder_spec_is_reported_whole():
    import argparse

    from skacd.cli._arguments import _encoder_arg

    with pytest.raises(argparse.ArgumentTypeError) as caught:
        _encoder_arg("a: b")
    assert str(caught.value).startswith("expected 'efficientnet_lite2'")
