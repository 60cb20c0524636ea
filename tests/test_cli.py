"""The skacd command line: fit -> predict round trip, bad input, exit codes, resume."""

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import skacd.featurizers._loading as featurizer_base
from skacd import CLIPFeaturizer, TimmFeaturizer
from skacd.cli import main
from skacd.featurizers import from_spec, to_spec
from skacd.io import load, read_manifest

TINY = "clip:skacd-tiny-ViT:none"  # random weights: for tests only


def smooth(rng, size=40):
    yy, xx = np.mgrid[0:size, 0:size] / size
    channels = [128 + 100 * np.sin(3 * (a * xx + b * yy) + c)
                for a, b, c in rng.uniform(-1, 1, (3, 3))]
    return np.clip(np.stack(channels, -1) + rng.normal(0, 4, (size, size, 3)), 0, 255)


def patterned(rng, size=40):
    yy, xx = np.mgrid[0:size, 0:size]
    period = rng.integers(2, 5)
    checker = ((xx // period + yy // period) % 2) * 90
    return np.clip(rng.uniform(40, 160, 3) + checker[..., None]
                   + rng.normal(0, 4, (size, size, 3)), 0, 255)


def write_folder(root, n_per_class, seed, group="g0"):
    """``<root>/<group>/{0_real,1_fake}/*.png``: smooth reals, patterned fakes."""
    rng = np.random.default_rng(seed)
    paths = []
    for folder, make in (("0_real", smooth), ("1_fake", patterned)):
        directory = Path(root) / group / folder
        directory.mkdir(parents=True, exist_ok=True)
        for i in range(n_per_class):
            path = directory / f"{i:03d}.png"
            Image.fromarray(make(rng).astype(np.uint8)).save(path)
            paths.append(str(path))
    return paths


FIT_FAST = ["--detector", "attribution", "--encoder", TINY, "--max-epochs", "5",
            "--cv", "2", "--num-workers", "0", "--quiet"]


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """A detector fitted by ``skacd fit`` on 12 + 12 images, and 4 + 4 new images."""
    root = tmp_path_factory.mktemp("cli")
    write_folder(root / "train", 12, seed=0)
    new = write_folder(root / "new", 4, seed=1, group="other")
    detector = root / "detector.skacd"
    assert main(["fit", "--data", str(root / "train"), *FIT_FAST,
                 "-o", str(detector)]) == 0
    return root, detector, new


def read_csv(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


# -- round trip ------------------------------------------------------------------


def test_fit_predict_round_trip_matches_python_api(fitted, tmp_path, capsys):
    root, detector, new = fitted
    out = tmp_path / "predictions.csv"
    assert main(["predict", str(detector), str(root / "new"), "--output", str(out),
                 "--quiet", "--num-workers", "0"]) == 0
    rows = read_csv(out)
    assert [r["path"] for r in rows] == new  # recursive, sorted
    assert list(rows[0]) == ["path", "prob_fake", "p_real", "label", "encoder", "error"]
    assert all(r["p_real"] == "" for r in rows)  # uncalibrated: no p-values

    pipe = load(detector)
    expected = pipe.predict_proba(new)[:, 1]
    np.testing.assert_array_equal([float(r["prob_fake"]) for r in rows], expected)
    labels = ["fake" if p == 1 else "real" for p in pipe.predict(new)]
    assert [r["label"] for r in rows] == labels
    assert {r["encoder"] for r in rows} == {TINY}
    assert all(r["error"] == "" for r in rows)
    summary = capsys.readouterr().err.strip().splitlines()[-1]
    assert summary.startswith("skacd predict: 8 images scored (")
    assert "0 skipped" in summary and f"wrote {out}" in summary
    assert summary.endswith("threshold: prob_fake > 0.5, the detector's default "
                            "(uncalibrated; see skacd calibrate)")

    # The detector learned something: the two made-up distributions separate.
    assert expected[4:].mean() > expected[:4].mean()
    manifest = read_manifest(detector)
    assert manifest["encoder"]["model_name"] == "skacd-tiny-ViT"
    assert [n for n, _ in pipe.steps] == ["clipfeaturizer", "attributionspace",
                                          "attributionclassifier"]
    assert pipe[1].max_epochs == pipe[2].max_epochs == 5 and pipe[1].cv == 2
    assert pipe[1].random_state == 0 and pipe[0].verbose == 0


def test_default_fit_is_the_fused_detector_and_predict_matches_python_api(
    fitted, tmp_path, capsys
):
    root, _, new = fitted
    detector = tmp_path / "fused.skacd"
    assert main(["fit", "--data", str(root / "train"), "--encoder", TINY,
                 "--num-workers", "0", "-q", "-o", str(detector)]) == 0
    pipe = load(detector)
    assert [n for n, _ in pipe.steps] == ["featurizer", "fusion"]
    assert pipe[0].layers == [0, "embedding"]  # the first half of the tiny ViT's blocks
    assert list(pipe[1].named_estimators_) == ["early", "embedding"]
    out = tmp_path / "fused.csv"
    assert main(["predict", str(detector), str(root / "new"), "-o", str(out), "-q",
                 "--num-workers", "0"]) == 0
    got = [float(r["prob_fake"]) for r in read_csv(out)]
    np.testing.assert_array_equal(got, pipe.predict_proba(new)[:, 1])


@pytest.mark.parametrize(
    "extra", [["--max-epochs", "3"], ["--solver", "adam"], ["--source-class", "fake"]]
)
def test_fused_detector_refuses_options_of_the_attribution_detector(
    fitted, tmp_path, capsys, extra
):
    root, _, _ = fitted
    code = main(["fit", "--data", str(root / "train"), "--encoder", TINY, *extra,
                 "-q", "-o", str(tmp_path / "x.skacd")])
    assert code == 2
    assert "--detector attribution" in capsys.readouterr().err


def test_predict_jsonl_and_stdout(fitted, tmp_path, capsys):
    root, detector, new = fitted
    out = tmp_path / "p.jsonl"
    assert main(["predict", str(detector), new[0], new[5], "-o", str(out), "-q"]) == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["path"] for r in records] == [new[0], new[5]]
    assert set(records[0]) == {"path", "prob_fake", "p_real", "label", "encoder",
                               "error"}
    capsys.readouterr()
    assert main(["predict", str(detector), new[0], new[5], "-q"]) == 0
    stdout = capsys.readouterr().out
    rows = list(csv.DictReader(io.StringIO(stdout)))
    assert [float(r["prob_fake"]) for r in rows] == [r["prob_fake"] for r in records]
    assert main(["predict", str(detector), new[0], "-q", "--format", "jsonl"]) == 0
    assert json.loads(capsys.readouterr().out)["path"] == new[0]


# -- bad input ----------------------------------------------------------------------


def test_skip_errors_lists_bad_images(fitted, tmp_path, capsys):
    root, detector, new = fitted
    folder = tmp_path / "mixed"
    folder.mkdir()
    good = folder / "good.png"
    Image.open(new[0]).save(good)
    (folder / "empty.png").write_bytes(b"")
    (folder / "notes.jpg").write_text("not an image")
    (folder / "readme.txt").write_text("ignored: not an image extension")
    missing = str(tmp_path / "missing.png")
    out = tmp_path / "out.csv"
    assert main(["predict", str(detector), str(folder), missing, "--skip-errors", "-q",
                 "-o", str(out)]) == 0
    rows = {Path(r["path"]).name: r for r in read_csv(out)}
    assert set(rows) == {"empty.png", "good.png", "notes.jpg", "missing.png"}
    assert rows["empty.png"]["error"] == "the file is empty (0 bytes)"
    assert rows["notes.jpg"]["error"].startswith(
        "not a recognised image format (skacd reads")
    assert rows["missing.png"]["error"] == "no such file"
    for name in ("empty.png", "notes.jpg", "missing.png"):
        assert rows[name]["prob_fake"] == "" and rows[name]["label"] == ""
    assert (rows["good.png"]["error"] == ""
            and 0 <= float(rows["good.png"]["prob_fake"]) <= 1)
    err = capsys.readouterr().err
    assert f"skacd predict: skipped {missing}: no such file" in err
    assert "1 images scored" in err and "3 skipped" in err


def test_bad_image_without_skip_errors_fails_naming_it(fitted, tmp_path, capsys):
    root, detector, new = fitted
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 truncated")
    out = tmp_path / "out.csv"
    assert main(["predict", str(detector), new[0], str(bad), "-q", "-o", str(out)]) == 1
    err = capsys.readouterr().err
    message = (f"skacd predict: error: Cannot load image '{bad}': "
               "corrupt or truncated image")
    assert message in err
    assert "--skip-errors" in err
    assert not out.exists()
    assert sorted(os.listdir(tmp_path)) == ["broken.jpg"]


def test_fit_skip_errors(tmp_path, capsys):
    write_folder(tmp_path / "data", 6, seed=2)
    (tmp_path / "data" / "g0" / "1_fake" / "zz_bad.png").write_bytes(b"")
    out = tmp_path / "d.skacd"
    args = ["fit", "--data", str(tmp_path / "data"), *FIT_FAST, "-o", str(out),
            "--cv", "0", "--max-epochs", "2"]
    assert main(args) == 1
    assert "zz_bad.png': the file is empty (0 bytes)" in capsys.readouterr().err
    assert not out.exists()
    assert main(args + ["--skip-errors"]) == 0
    err = capsys.readouterr().err
    assert "zz_bad.png: the file is empty (0 bytes)" in err
    assert "12 images used (0 from cache), 1 skipped" in err
    assert load(out)[2].n_features_in_ == 32 and load(out)[1].cv is None


# -- resumable runs, atomic output ----------------------------------------------------


def test_interrupted_predict_writes_nothing_and_resumes(
    fitted, tmp_path, monkeypatch, capsys
):
    root, detector, new = fitted
    out = tmp_path / "out.csv"
    out.write_text("previous results\n")
    cache = tmp_path / "cache"
    args = ["predict", str(detector), str(root / "new"), "-o", str(out), "-q",
            "--cache", str(cache), "--batch-size", "3", "--num-workers", "0"]
    real_load_image = featurizer_base.load_image
    calls = []

    def ctrl_c_after_five(item, *a, **k):
        calls.append(item)
        if len(calls) > 5:
            raise KeyboardInterrupt
        return real_load_image(item, *a, **k)

    monkeypatch.setattr(featurizer_base, "load_image", ctrl_c_after_five)
    assert main(args) == 130
    err = capsys.readouterr().err
    assert "interrupted; no output was written" in err and f"--cache {cache}" in err
    assert out.read_text() == "previous results\n"
    assert sorted(os.listdir(tmp_path)) == ["cache", "out.csv"]  # no temporary file

    monkeypatch.setattr(featurizer_base, "load_image", real_load_image)
    assert main(args) == 0
    assert "3 from cache" in capsys.readouterr().err  # the one complete batch of 3
    resumed = read_csv(out)
    uncached = tmp_path / "uncached.csv"
    assert main(["predict", str(detector), str(root / "new"), "-o", str(uncached), "-q",
                 "--batch-size", "3", "--num-workers", "0"]) == 0
    assert resumed == read_csv(uncached)  # same batches: identical to the last digit


# -- exit codes, help, other commands --------------------------------------------------


@pytest.mark.parametrize("args", [
    [],
    ["frobnicate"],
    ["fit", "--data", "x"],  # no -o
    ["fit", "--data", "x", "-o", "d.skacd", "--encoder", "resnet"],
    ["fit", "--data", "x", "-o", "d.skacd", "--max-epochs", "0"],
    ["predict", "d.skacd"],
    ["predict", "d.skacd", "x.png", "--format", "xml"],
    ["predict", "d.skacd", "x.png", "--batch-size", "many"],
    ["predict", "d.skacd", "x.png", "--threshold", "nan"],
    ["calibrate", "d.skacd", "-o", "c.skacd"],  # no --real
    ["calibrate", "d.skacd", "--real", "r", "-o", "c.skacd", "--target-fpr", "1.5"],
    ["calibrate", "d.skacd", "--real", "r", "-o", "c.skacd", "--target-fpr", "0"],
])
def test_usage_errors_exit_2(args, capsys):
    assert main(args) == 2
    assert "usage: skacd" in capsys.readouterr().err


def test_output_extension_is_a_usage_error(fitted, tmp_path, capsys):
    root, detector, new = fitted
    assert main(["predict", str(detector), new[0], "-o", str(tmp_path / "p.txt")]) == 2
    assert "cannot tell the output format of" in capsys.readouterr().err
    assert main(["predict", str(detector), new[0],
                 "-o", str(tmp_path / "no" / "p.csv")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_runtime_failures_exit_1(tmp_path, capsys):
    assert main(["fit", "--data", str(tmp_path / "nowhere"),
                 "-o", str(tmp_path / "d.skacd"), "--encoder", TINY]) == 1
    assert "skacd fit: error: Image folder" in capsys.readouterr().err
    evil = tmp_path / "evil.skacd"
    evil.write_bytes(b"\x80\x04\x95 a pickle")
    assert main(["predict", str(evil), str(tmp_path)]) == 1
    assert "looks like a Python pickle" in capsys.readouterr().err
    assert main(["predict", str(tmp_path / "none.skacd"), str(tmp_path)]) == 1
    assert "No such detector file" in capsys.readouterr().err


def test_a_missing_folder_exits_1_in_every_subcommand(tmp_path, capsys):
    missing = str(tmp_path / "nowhere")
    commands = {
        "fit": ["fit", "--data", missing, "-o", str(tmp_path / "d.skacd"),
                "--encoder", TINY],
        "calibrate": ["calibrate", str(tmp_path / "none.skacd"), "--real", missing,
                      "-o", str(tmp_path / "c.skacd")],
        "predict": ["predict", str(tmp_path / "none.skacd"), missing],
        "evaluate": ["evaluate", "--train", missing, "--test", missing,
                     "--encoder", TINY, "--output-dir", str(tmp_path), "--quiet"],
    }
    for command, argv in commands.items():
        assert main(argv) == 1, command
        assert f"skacd {command}: error:" in capsys.readouterr().err


def test_empty_and_unreadable_folders_are_reported(
    fitted, tmp_path, monkeypatch, capsys
):
    root, detector, new = fitted
    (tmp_path / "empty").mkdir()
    assert main(["predict", str(detector), str(tmp_path / "empty"), "-q"]) == 1
    assert "no images found in" in capsys.readouterr().err

    args = ["predict", str(detector), new[0], str(tmp_path / "empty"), "-q"]
    assert main(args) == 1
    assert (f"Cannot read '{tmp_path / 'empty'}': the folder holds no image files"
            in capsys.readouterr().err)
    assert main(args + ["--skip-errors"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert rows[1]["path"] == str(tmp_path / "empty")
    assert rows[1]["error"].startswith("the folder holds no image files (.jpg, ")

    # An unreadable sub-folder (simulated: the tests may run as root).
    locked = tmp_path / "photos" / "locked"
    locked.mkdir(parents=True)
    Image.open(new[0]).save(tmp_path / "photos" / "a.png")
    real_scandir = os.scandir

    def scandir(path="."):
        if os.fspath(path) == str(locked):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    args = ["predict", str(detector), str(tmp_path / "photos"), "-q"]
    assert main(args) == 1
    assert f"Cannot read '{locked}': permission denied" in capsys.readouterr().err
    assert main(args + ["--skip-errors"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [(Path(r["path"]).name, r["error"]) for r in rows] == [
        ("a.png", ""), ("locked", "permission denied (cannot list the folder)")]


@pytest.mark.parametrize("command", ["fit", "calibrate", "predict", "evaluate", "demo",
                                     "info"])
def test_every_subcommand_has_help(command, capsys):
    assert main([command, "--help"]) == 0
    assert capsys.readouterr().out.startswith(f"usage: skacd {command}")


def test_python_dash_m_skacd():
    """The two slow ones: a real subprocess, as a user runs it."""
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    done = subprocess.run([sys.executable, "-m", "skacd", "--help"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    for command in ("fit", "predict", "evaluate", "demo", "info"):
        assert command in done.stdout
    done = subprocess.run([sys.executable, "-m", "skacd", "predict", "--bogus"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 2
    assert "unrecognized arguments: --bogus" in done.stderr or "required" in done.stderr


def test_info(capsys):
    assert main(["info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["versions"]["torch"] and info["detector_format_version"] == 1
    assert set(info["extras"]) == {"plot", "umap", "dask", "docs", "dev"}
    assert set(info["efficientnet_lite_weights"]) == {"efficientnet_lite0",
                                                      "efficientnet_lite2"}
    encoders = info["offline_encoders"]
    lite2 = encoders["efficientnet_lite2"]["preprocessing"]
    assert lite2["input_size"] == [3, 260, 260] and lite2["crop_pct"] == 0.89
    assert encoders[TINY]["preprocessing"]["size"] == [32, 32]
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "  efficientnet_lite2: 260x260, crop_mode center, crop_pct 0.89" in out
    assert (out.startswith("skacd ") and "device: " in out
            and "efficientnet_lite2 weights" in out)


def test_demo_delegates(monkeypatch, capsys):
    import skacd._demo

    calls = []
    monkeypatch.setattr(skacd._demo, "run_demo", lambda **kw: calls.append(kw))
    assert main(["demo"]) == 0
    assert main(["demo", "--data", "somewhere", "--encoder", "efficientnet_lite0", "-q",
                 "--seed", "3"]) == 0
    assert calls == [
        {"data": None, "verbose": 1, "random_state": 0},
        {"data": "somewhere", "verbose": 0, "random_state": 3,
         "encoder": "efficientnet_lite0"},
    ]


def test_evaluate_is_wired(capsys):
    assert main(["evaluate", "--help"]) == 0
    assert "--train" in capsys.readouterr().out


@pytest.mark.parametrize("spec, cls, params", [
    ("efficientnet_lite2", TimmFeaturizer, {"model_name": "efficientnet_lite2"}),
    ("efficientnet_lite0", TimmFeaturizer, {"model_name": "efficientnet_lite0"}),
    ("clip:ViT-L-14", CLIPFeaturizer,
     {"model_name": "ViT-L-14", "pretrained": "openai"}),
    ("clip:ViT-B-32:laion2b_s34b_b79k", CLIPFeaturizer,
     {"pretrained": "laion2b_s34b_b79k"}),
    ("clip:ViT-L-14:/m/w.safetensors", CLIPFeaturizer,
     {"pretrained": "/m/w.safetensors"}),
    (TINY, CLIPFeaturizer, {"model_name": "skacd-tiny-ViT", "pretrained": None}),
    ("timm:resnet18:/m/r.pth", TimmFeaturizer, {"checkpoint_path": "/m/r.pth"}),
    ("timm:resnet18:none", TimmFeaturizer, {"pretrained": False}),
])
def test_encoder_specs(spec, cls, params):
    featurizer = from_spec(spec, device="cpu")
    assert type(featurizer) is cls and featurizer.device == "cpu"
    for key, value in params.items():
        assert featurizer.get_params()[key] == value
    assert from_spec(to_spec(featurizer)).get_params() == from_spec(spec).get_params()


# -- operating points: calibrate, p_real, --threshold, --one-class ---------------------


@pytest.fixture(scope="module")
def calibrated(fitted, tmp_path_factory):
    """``skacd calibrate`` on 24 known-real images of another folder."""
    root, detector, new = fitted
    real_root = tmp_path_factory.mktemp("real")
    reals = [p for p in write_folder(real_root, 24, seed=5) if "0_real" in p]
    out = root / "calibrated.skacd"
    assert main(["calibrate", str(detector),
                 "--real", str(real_root / "g0" / "0_real"), "--target-fpr", "0.1",
                 "-o", str(out), "-q", "--num-workers", "0"]) == 0
    return detector, out, reals, new


def test_fit_calibrate_predict_matches_the_python_api(calibrated, tmp_path, capsys):
    from skacd import ConformalThresholdClassifier
    from skacd.calibration import calibration_fingerprint

    detector, out, reals, new = calibrated
    capsys.readouterr()
    predictions = tmp_path / "p.csv"
    assert main(["predict", str(out), *new, "-o", str(predictions), "-q",
                 "--num-workers", "0"]) == 0
    rows = read_csv(predictions)
    summary = capsys.readouterr().err.strip().splitlines()[-1]

    python = ConformalThresholdClassifier(load(detector), target_fpr=0.1).fit(reals)
    saved = load(out)
    assert isinstance(saved, ConformalThresholdClassifier)
    assert saved.threshold_ == python.threshold_
    assert saved.target_fpr == 0.1 and saved.n_calibration_samples_ == 24
    assert saved.calibration_fingerprint_ == calibration_fingerprint(reals)
    np.testing.assert_array_equal(saved.calibration_scores_, python.calibration_scores_)
    np.testing.assert_array_equal([float(r["prob_fake"]) for r in rows],
                                  python.predict_proba(new)[:, 1])
    np.testing.assert_array_equal([float(r["p_real"]) for r in rows],
                                  python.p_real(new))
    assert [r["label"] for r in rows] == [
        "fake" if p == 1 else "real" for p in python.predict(new)]
    assert summary.endswith(
        f"threshold: prob_fake > {python.threshold_:.6g}, calibrated on 24 real images "
        "at target FPR 0.1")
    assert read_manifest(out)["encoder"]["model_name"] == "skacd-tiny-ViT"


def test_threshold_overrides_the_calibrated_one(calibrated, capsys):
    detector, out, reals, new = calibrated
    capsys.readouterr()
    assert main(["predict", str(out), *new, "-q", "--threshold", "0.0"]) == 0
    captured = capsys.readouterr()
    rows = list(csv.DictReader(io.StringIO(captured.out)))
    assert {r["label"] for r in rows} == {"fake"}  # every prob_fake > 0
    assert all(0 < float(r["p_real"]) <= 1 for r in rows)  # p-values stay
    assert captured.err.strip().endswith("threshold: prob_fake > 0, from --threshold")


def test_calibrate_too_few_images_warns_naming_the_minimum(fitted, tmp_path, capsys):
    root, detector, new = fitted
    out = tmp_path / "c.skacd"
    assert main(["calibrate", str(detector),
                 "--real", str(root / "new" / "other" / "0_real"),
                 "--target-fpr", "0.05", "-o", str(out), "-q"]) == 0
    err = capsys.readouterr().err
    assert "skacd: warning: 4 known-real calibration image(s) are too few" in err
    assert "at least 19 are needed" in err
    assert load(out).threshold_ == np.inf


def test_calibrate_takes_the_reals_of_a_labelled_folder(fitted, tmp_path, capsys):
    root, detector, new = fitted
    out = tmp_path / "c.skacd"
    assert main(["calibrate", str(detector), "--real", str(root / "new"),
                 "--target-fpr", "0.3", "-o", str(out), "-q"]) == 0
    err = capsys.readouterr().err
    assert "from 4 real images (the real class of 1 labelled folder(s), 4 generated " \
           "images left out; 0 skipped" in err
    assert load(out).n_calibration_samples_ == 4


def test_calibrate_bad_images_follow_skip_errors(fitted, tmp_path, capsys):
    root, detector, new = fitted
    folder = tmp_path / "reals"
    folder.mkdir()
    for i, path in enumerate(new[:4]):
        Image.open(path).save(folder / f"{i}.png")
    (folder / "zz_bad.png").write_bytes(b"")
    out = tmp_path / "c.skacd"
    args = ["calibrate", str(detector), "--real", str(folder), "--target-fpr", "0.3",
            "-o", str(out), "-q"]
    assert main(args) == 1
    assert "zz_bad.png': the file is empty (0 bytes)" in capsys.readouterr().err
    assert not out.exists()
    assert main(args + ["--skip-errors"]) == 0
    err = capsys.readouterr().err
    assert f"skacd calibrate: skipped {folder / 'zz_bad.png'}: the file is empty" in err
    assert "from 4 real images (1 skipped" in err
    assert load(out).n_calibration_samples_ == 4


def test_fit_one_class_and_predict(tmp_path, capsys):
    from skacd import OneClassDetector

    reals = [p for p in write_folder(tmp_path / "data", 24, seed=3) if "0_real" in p]
    new = write_folder(tmp_path / "new", 4, seed=4)
    out = tmp_path / "one.skacd"
    # a flat folder of real photos: no labels needed
    assert main(["fit", "--data", str(tmp_path / "data" / "g0" / "0_real"),
                 "--one-class", "--target-fpr", "0.1", *FIT_FAST, "-o", str(out)]) == 0
    err = capsys.readouterr().err
    assert "one-class detector on 24 real images" in err and "target FPR 0.1" in err
    pipe = load(out)
    detector = pipe[-1]
    assert isinstance(detector, OneClassDetector) and detector.cv == 2
    assert detector.n_calibration_samples_ == 24 and detector.target_fpr == 0.1
    features = pipe[0].transform(reals)
    python = OneClassDetector(detector.space, target_fpr=0.1, cv=2,
                              random_state=0).fit(features)
    np.testing.assert_array_equal(python.calibration_scores_,
                                  detector.calibration_scores_)

    assert main(["predict", str(out), *new, "-q"]) == 0
    captured = capsys.readouterr()
    rows = list(csv.DictReader(io.StringIO(captured.out)))
    assert all(r["prob_fake"] == "" for r in rows)  # no probabilities
    np.testing.assert_array_equal([float(r["p_real"]) for r in rows], pipe[-1].p_real(
        pipe[0].transform(new)))
    assert "(OneClassDetector)" in captured.err
    assert main(["predict", str(out), *new, "-q", "--threshold", "0.5"]) == 2
    assert "gives no probabilities" in capsys.readouterr().err
    # a labelled folder works too (its reals only); --cv 0 makes no sense here
    assert main(["fit", "--data", str(tmp_path / "data"), "--one-class", *FIT_FAST,
                 "-o", str(out), "--cv", "0"]) == 2
    assert "--cv must be at least 2" in capsys.readouterr().err


def test_fit_with_augmentation(tmp_path, capsys):
    write_folder(tmp_path / "train", 8, seed=5)
    plain, augmented = tmp_path / "plain.skacd", tmp_path / "aug.skacd"
    cache = ["--cache", str(tmp_path / "cache")]
    assert main(["fit", "--data", str(tmp_path / "train"), *FIT_FAST, *cache,
                 "-o", str(plain)]) == 0
    fast = [a for a in FIT_FAST if a != "--quiet"]
    assert main(["fit", "--data", str(tmp_path / "train"), *fast, *cache,
                 "--augment", "jpeg=1,resize=1", "--augment-copies", "2",
                 "-o", str(augmented)]) == 0
    err = capsys.readouterr().err
    assert "2 augmented copies per image" in err and "jpeg_prob=1.0" in err
    detector = load(augmented)
    assert detector[0].image_transform is None  # test images are never augmented
    assert detector[1].n_features_in_ == load(plain)[1].n_features_in_
    assert detector[1].cv == 2  # stored as its fold count
    new = write_folder(tmp_path / "new", 2, seed=6)
    assert not np.allclose(detector.predict_proba(new), load(plain).predict_proba(new))
    assert main(["fit", "--data", str(tmp_path / "train"), *FIT_FAST,
                 "--augment", "sharpen=1", "-o", str(augmented)]) == 2
    assert "--augment" in capsys.readouterr().err
    assert main(["fit", "--data", str(tmp_path / "train"), *FIT_FAST, "--one-class",
                 "--augment", "-o", str(augmented)]) == 2
    assert "--one-class" in capsys.readouterr().err


@pytest.mark.parametrize("option, value, message", [
    ("--batch-size", "0", "expected a positive integer, got 0"),
    ("--batch-size", "x", "expected an integer, got 'x'"),
    ("--max-epochs", "0", "expected a positive integer"),
    ("--torch-threads", "0", "expected a positive integer"),
    ("--train-sizes", "0", "expected a positive integer"),
    ("--cost-images", "-1", "expected 0 or more"),
    ("--num-workers", "many", "expected an integer"),
])
def test_evaluate_counts_are_validated_like_the_others(option, value, message, capsys):
    argv = ["evaluate", "--train", "a", "--test", "b", option, value]
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_help_states_the_exit_code_policy(capsys):
    assert main(["--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert ("Exit codes, the same for every subcommand: 0 success; "
            "1 runtime failure") in out
    assert "2 usage error" in out and "130 interrupted" in out


@pytest.mark.parametrize("raised, status", [
    (RuntimeError("CUDA out of memory"), 1),
    (PermissionError("output folder is read-only"), 1),
    (KeyboardInterrupt(), 130),
])
def test_python_m_skacd_evaluation_follows_the_one_exit_code_policy(
    monkeypatch, capsys, raised, status
):
    # python -m skacd.evaluation and benchmarks/cross_generator.py enter
    # through run_evaluate, not skacd.cli.main: the same codes and messages.
    import argparse

    from skacd.cli import _evaluate
    from skacd.evaluation import add_evaluate_arguments, run_evaluate

    def run(args):
        raise raised

    monkeypatch.setattr(_evaluate, "run", run)
    parser = argparse.ArgumentParser()
    add_evaluate_arguments(parser)
    assert run_evaluate(parser.parse_args(["--train", "a", "--test", "b"])) == status
    err = capsys.readouterr().err
    assert err.startswith("skacd evaluate: ")
    assert "Traceback" not in err
