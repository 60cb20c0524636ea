"""Tests of skacd.evaluation: the cross-generator benchmark and its CLI glue.

Tiny image folders are built under tmp_path and featurized with the tiny
random open_clip model, so everything runs offline in seconds.
"""

import argparse
import json
import math

import numpy as np
import pytest
from PIL import Image

from skacd import CLIPFeaturizer, TimmFeaturizer
from skacd.evaluation import (
    HEAD_METHODS,
    METHODS,
    CrossGeneratorResult,
    add_evaluate_arguments,
    cross_generator_benchmark,
    default_cache_dir,
    main,
    make_featurizer,
    make_method,
    run_evaluate,
)

TINY = "clip:skacd-tiny-ViT:none"
# One torch thread: the fits are tiny, and on a shared machine more threads
# only contend (the benchmark restores the caller's setting).
FAST = dict(max_epochs=3, device="cpu", num_workers=0, torch_threads=1, verbose=0)
SWEEPS = dict(jpeg_qualities=(90, 50), blur_sigmas=(0, 1.5), train_sizes=(6, 8),
              resize_factors=(1.0, 0.5))
SEEDS = (0, 1)


def _image(rng, fake):
    """Real: dark, noisy; fake: bright, smooth gradient."""
    if fake:
        ramp = np.linspace(150, 250, 40)
        pixels = np.stack([np.add.outer(ramp, ramp) / 2] * 3, axis=-1)
        pixels += rng.normal(0, 3, pixels.shape)
    else:
        pixels = rng.normal(60, 40, (40, 40, 3))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def _make_folder(root, n):
    rng = np.random.RandomState(abs(hash(str(root))) % 2**31)
    for cls, fake in (("0_real", False), ("1_fake", True)):
        folder = root / cls
        folder.mkdir(parents=True)
        for i in range(n):
            _image(rng, fake).save(folder / f"{i}.png")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    base = tmp_path_factory.mktemp("images")
    _make_folder(base / "source" / "train", 10)
    for group in ("ganA", "ganB"):
        _make_folder(base / "unseen" / group, 5)
    _make_folder(base / "seen_val", 5)
    return {
        "train": base / "source" / "train",
        "test": [base / "seen_val", base / "unseen"],
        "cache": tmp_path_factory.mktemp("cache"),
    }


@pytest.fixture(scope="module")
def runs(data):
    """The same benchmark twice on one cache: first from a string, then an object."""
    import torch

    threads = torch.get_num_threads()
    first = cross_generator_benchmark(
        data["train"], data["test"], encoder=TINY, seeds=SEEDS, cache=data["cache"],
        **SWEEPS, **FAST,
    )
    encoder = CLIPFeaturizer("skacd-tiny-ViT", pretrained=None, device="cpu",
                             num_workers=0)
    second = cross_generator_benchmark(
        data["train"], data["test"], encoder=encoder, seeds=SEEDS,
        cache=data["cache"], **SWEEPS, **FAST,
    )
    assert torch.get_num_threads() == threads  # restored
    assert first.config["machine"]["torch_threads"] == 1
    return first, second


GROUPS = ["seen_val", "unseen/ganA", "unseen/ganB"]


def test_every_method_and_group(runs):
    result, _ = runs
    assert isinstance(result, CrossGeneratorResult)
    assert result.methods == list(HEAD_METHODS)  # "auto" for a CLIP encoder
    assert result.groups == GROUPS
    assert len(result.runs) == len(SEEDS) * len(HEAD_METHODS)
    for method in HEAD_METHODS:
        # "mean unseen": the mean over the groups of the test root "unseen".
        assert set(result.summary[method]) == set(GROUPS) | {"mean", "mean unseen"}
        for group in GROUPS + ["mean"]:
            ap = result.summary[method][group]["ap"]
            assert 0 <= ap["mean"] <= 1 and ap["n"] == len(SEEDS)
            acc = result.summary[method][group]["acc"]
            if method == "deviation":  # AP only
                assert acc["mean"] is None
            else:
                assert 0 <= acc["mean"] <= 1
    for run in result.runs:
        assert set(run["report"]["groups"]) == set(GROUPS)
        counts = run["report"]["groups"]["unseen/ganA"]
        assert (counts["n_real"], counts["n_fake"]) == (5, 5)
    # mean row of the summary: the per-seed means over groups, then over seeds
    lp = [
        r["report"]["mean"]["ap"] for r in result.runs if r["method"] == "linear_probe"
    ]
    assert result.summary["linear_probe"]["mean"]["ap"]["mean"] == pytest.approx(
        np.mean(lp)
    )
    assert result.summary["linear_probe"]["mean"]["ap"]["std"] == pytest.approx(
        np.std(lp, ddof=1), abs=1e-12
    )


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_deviation_is_the_real_source_space(runs, data):
    """deviation = -score_samples of AttributionSpace(source_class=0), AP only."""
    from skacd.datasets import load_image_folder

    result, _ = runs
    featurizer = make_featurizer(TINY, device="cpu", num_workers=0)
    featurizer.set_params(cache=str(data["cache"]))
    train = load_image_folder(data["train"])
    X_train = featurizer.featurize(train.paths).features
    X_test = featurizer.featurize(result.config["data"]["test_paths"]).features
    space = make_method("deviation", 0, device="cpu", max_epochs=3)
    assert space.source_class == 0
    expected = -space.fit(X_train, train.target).score_samples(X_test)
    dev = [r for r in result.runs if r["method"] == "deviation" and r["seed"] == 0][0]
    np.testing.assert_allclose(dev["scores"], expected, rtol=1e-4, atol=1e-5)
    assert dev["report"]["groups"]["seen_val"]["acc"] is None
    assert dev["report"]["threshold"] is None


def test_json_is_valid_and_complete(runs, tmp_path):
    result, _ = runs
    text = result.to_json()
    payload = json.loads(text)  # strict JSON: to_json uses allow_nan=False
    assert set(payload) == {
        "config", "featurization", "timings", "runs", "summary", "records",
        "group_records",
    }
    cfg = payload["config"]
    assert cfg["encoder"]["spec"] == TINY
    assert cfg["encoder"]["identity"]["model_name"] == "skacd-tiny-ViT"
    assert cfg["encoder"]["identity"]["pretrained"].startswith("random-init")
    assert cfg["data"]["test_groups"] == GROUPS
    assert cfg["data"]["n_train_real"] == cfg["data"]["n_train_fake"] == 10
    assert cfg["seeds"] == list(SEEDS)
    assert set(cfg["method_settings"]) == set(HEAD_METHODS)
    assert cfg["sweeps"]["jpeg_quality"] == [90, 50]
    assert cfg["sweeps"]["resize_factor"] == [1.0, 0.5]
    for key in ("skacd", "torch", "scikit-learn", "numpy", "open_clip"):
        assert key in cfg["versions"]
    assert cfg["machine"]["cpu_count"] >= 1 and cfg["machine"]["torch_threads"] >= 1
    # every per-seed number is there
    assert len(payload["runs"]) == len(SEEDS) * len(HEAD_METHODS)
    run = payload["runs"][0]
    assert set(run) == {"seed", "method", "fit_seconds", "warnings", "report", "scores"}
    assert len(run["scores"]) == len(cfg["data"]["test_paths"]) == 30
    assert cfg["data"]["test_target"].count(1) == 15
    load = cfg["machine"]["load_average_start"]
    assert load is None or len(load) == 3

    paths = result.write(tmp_path / "out", "bench")
    assert json.loads((tmp_path / "out" / "bench.json").read_text()) == payload
    markdown = (tmp_path / "out" / "bench.md").read_text()
    assert paths["markdown"].endswith("bench.md")
    assert "encoder: clip:skacd-tiny-ViT:none" in markdown
    for name in GROUPS + list(HEAD_METHODS):
        assert name in markdown
    for title in ("JPEG re-compression", "Gaussian blur", "Bicubic downscaling",
                  "Training-set size"):
        assert title in markdown


def test_second_run_is_served_from_the_cache(runs):
    first, second = runs
    n_images = 20 + 30
    f1, f2 = first.featurization, second.featurization
    assert f1["clean"]["n_images"] == n_images
    assert f1["clean"]["n_computed"] == n_images and f1["clean"]["n_cached"] == 0
    assert f2["clean"]["n_cached"] == n_images and f2["clean"]["n_computed"] == 0
    # perturbed test images are cached too (sigma 0 and resize factor 1 reuse
    # the clean features): JPEG 90, 50, blur 1.5, resize 0.5
    assert f1["perturbed"]["n_images"] == 4 * 30
    assert f2["perturbed"]["n_cached"] == 4 * 30
    assert "from cache" in second.to_markdown()
    # same features, same seeds: the same numbers
    assert second.summary == first.summary
    assert [r["ap"] for r in second.records] == [r["ap"] for r in first.records]


def test_sweep_records_have_the_display_format(runs):
    result, _ = runs
    records = result.records
    params = {r["param"] for r in records}
    assert params == {"jpeg_quality", "blur_sigma", "train_size", "resize_factor"}
    n_values = {"jpeg_quality": 2, "blur_sigma": 2, "train_size": 2,
                "resize_factor": 2}
    for param, n in n_values.items():
        n_records = sum(r["param"] == param for r in records)
        assert n_records == n * len(SEEDS) * len(HEAD_METHODS)
    for record in records:
        assert isinstance(record["method"], str) and record["method"] in HEAD_METHODS
        assert isinstance(record["value"], (int, float))
        assert record["seed"] in SEEDS and record["group"] == "mean"
        metrics = ("ap",) if record["method"] == "deviation" else (
            "ap", "acc", "real_acc", "fake_acc")
        for m in metrics:
            assert 0 <= record[m] <= 1 and math.isfinite(record[m])
        if record["method"] == "deviation":
            assert "acc" not in record
    sizes = [r for r in records if r["param"] == "train_size"]
    assert {(r["value"], r["n_train_real"], r["n_train_fake"]) for r in sizes} == {
        (6, 6, 6), (8, 8, 8)
    }
    assert {r["group"] for r in result.group_records} == set(GROUPS)
    assert len(result.group_records) == len(GROUPS) * len(records)
    # blur sigma 0 is the clean test set
    clean = {
        (r["seed"], r["method"]): r["report"]["mean"]["ap"] for r in result.runs
    }
    for r in records:
        if (r["param"], r["value"]) in (("blur_sigma", 0), ("resize_factor", 1)):
            assert r["ap"] == pytest.approx(clean[(r["seed"], r["method"])])


def test_records_plot_with_robustness_display(runs):
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from skacd.diagnostics import RobustnessCurveDisplay

    result, _ = runs
    disp = RobustnessCurveDisplay.from_results(result.records, x="jpeg_quality")
    assert disp.methods == list(HEAD_METHODS)
    assert [v.tolist() for v in disp.values][0] == [50.0, 90.0]
    assert all(c.tolist() == [len(SEEDS)] * 2 for c in disp.counts)
    disp = RobustnessCurveDisplay.from_results(
        result.group_records, x="train_size", metric="acc",
        methods=["linear_probe", "attribution_real"], where={"group": "unseen/ganA"},
    )
    assert disp.values[0].tolist() == [6.0, 8.0]
    plt.close("all")


def test_make_featurizer_specs():
    tiny = make_featurizer(TINY, device="cpu")
    assert isinstance(tiny, CLIPFeaturizer) and tiny.pretrained is None
    assert make_featurizer("clip:ViT-B-32").pretrained == "openai"
    lite = make_featurizer("efficientnet_lite2")
    assert isinstance(lite, TimmFeaturizer) and lite.model_name == "efficientnet_lite2"
    assert make_featurizer("timm:resnet18").model_name == "resnet18"
    obj = TimmFeaturizer("efficientnet_lite0", batch_size=7)
    clone = make_featurizer(obj)
    assert clone is not obj and clone.batch_size == 7
    with pytest.raises(ValueError, match="Unknown encoder 'resnet'"):
        make_featurizer("resnet")
    # The one spec grammar: a timm checkpoint is a checkpoint, not a model name.
    from_file = make_featurizer("timm:resnet18:/m/r.pth")
    assert from_file.model_name == "resnet18"
    assert from_file.checkpoint_path == "/m/r.pth"
    named = make_featurizer("clip:ViT-L-14:laion2b_s32b_b82k:/m/x.bin")
    assert (named.pretrained, named.weights_tag) == ("/m/x.bin", "laion2b_s32b_b82k")


def test_bad_arguments(data):
    with pytest.raises(ValueError, match="Unknown method"):
        cross_generator_benchmark(data["train"], data["test"], methods=["svm"])
    with pytest.raises(ValueError, match="seeds is empty"):
        cross_generator_benchmark(data["train"], data["test"], seeds=[])
    with pytest.raises(ValueError, match="also training images"):
        cross_generator_benchmark(
            data["train"], [data["train"]], encoder=TINY, cache=None, **FAST
        )


def test_default_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("SKACD_CACHE_DIR", str(tmp_path / "c"))
    assert default_cache_dir() == str(tmp_path / "c")
    monkeypatch.delenv("SKACD_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert default_cache_dir() == str(tmp_path / "x" / "skacd" / "features")


def test_cli(data, tmp_path, capsys):
    argv = [
        "--train", str(data["train"]), "--test", str(data["test"][0]),
        "--encoder", TINY, "--seeds", "0", "--methods", "linear_probe", "deviation",
        "--cache", str(data["cache"]), "--max-epochs", "2", "--device", "cpu",
        "--num-workers", "0", "--torch-threads", "1",
        "--output-dir", str(tmp_path), "--name", "cli",
        "--quiet",
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "| seen_val |" in out and "linear_probe" in out and "deviation" in out
    payload = json.loads((tmp_path / "cli.json").read_text())
    assert payload["config"]["methods"] == ["linear_probe", "deviation"]
    # served from the cache filled by the module fixture
    assert payload["featurization"]["clean"]["n_computed"] == 0

    # a runtime failure, as for every subcommand (it was 2 before the one policy)
    assert main(argv[:1] + [str(tmp_path / "missing")] + argv[2:]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_add_evaluate_arguments_contract():
    parser = argparse.ArgumentParser()
    add_evaluate_arguments(parser)
    with pytest.raises(SystemExit):
        parser.parse_args([])  # --train and --test are required
    args = parser.parse_args(["--train", "a", "--test", "b", "c", "--no-cache"])
    assert args.train == ["a"] and args.test == ["b", "c"] and args.no_cache
    assert args.seeds == [0, 1, 2] and args.methods == "auto"
    assert args.jpeg_quality == [] and args.max_epochs is None
    assert args.resize_factor == []
    args = parser.parse_args(["--train", "a", "--test", "b", "--resize-factor", "1",
                              "0.5"])
    assert args.resize_factor == [1.0, 0.5]
    parser = argparse.ArgumentParser()
    add_evaluate_arguments(parser, defaults={"train": ["t"], "test": ["u"]})
    args = parser.parse_args([])
    assert args.train == ["t"] and args.test == ["u"]
    assert callable(run_evaluate)


def test_intermediate_layer_methods_side_by_side_with_a_timm_encoder(data):
    result = cross_generator_benchmark(
        data["train"], data["test"], encoder="efficientnet_lite0", seeds=[0],
        cache=None, cost_images=4, **FAST,
    )
    assert result.methods == list(METHODS)
    params = result.config["encoder"]["params"]
    assert (params["layers"] == repr([0, 1, 2, 3, "embedding"])
            and params["crop_pct"] == 1.0)
    fused = result.summary["fused"]
    assert 0 <= fused["mean unseen"]["ap"]["mean"] <= 1
    assert fused["mean"]["acc"]["mean"] is not None
    assert result.summary["deviation_early"]["mean"]["acc"]["mean"] is None
    unseen = ["unseen/ganA", "unseen/ganB"]
    expected = np.mean([result.summary["fused"][g]["ap"]["mean"] for g in unseen])
    assert fused["mean unseen"]["ap"]["mean"] == pytest.approx(expected)
    cost = {row["config"]: row for row in result.featurization["cost"]}
    assert set(cost) == {"embedding", "early", "fused"}
    assert all(row["images_per_second"] > 0 for row in cost.values())
    assert "Featurization cost" in result.to_markdown()


def test_early_stage_methods_need_layered_features():
    with pytest.raises(ValueError, match="intermediate-layer features"):
        make_method("fused", 0)


def test_operating_points_and_calibrated_accuracy(runs, data):
    result, _ = runs
    for run in result.runs:  # threshold-free operating points for every method
        row = run["report"]["groups"]["seen_val"]
        assert 0 <= row["acc_oracle"] <= 1 and 0 <= row["tpr_at_fpr_5"] <= 1
        assert row["acc_cal"] is None  # no calibration by default
    assert result.config["calibration_fraction"] == 0.0
    assert "no calibrated ACC" in result.to_markdown()

    calibrated = cross_generator_benchmark(
        data["train"], data["test"], encoder=TINY, seeds=[0], cache=data["cache"],
        methods=["linear_probe", "deviation"], calibration_fraction=0.5, **FAST,
    )
    assert calibrated.config["calibration_fraction"] == 0.5
    for run in calibrated.runs:
        report = run["report"]
        # 5 of the 10 training reals held out: too few for 5%, so +inf (called real)
        assert report["groups"]["seen_val"]["real_acc_cal"] == 1.0
        assert report["groups"]["seen_val"]["acc_cal"] == pytest.approx(0.5)
    md = calibrated.to_markdown()
    assert "ACC (cal.)" in md and "on 50% of the training reals" in md
    with pytest.raises(ValueError, match="calibration_fraction"):
        cross_generator_benchmark(data["train"], data["test"], encoder=TINY,
                                  calibration_fraction=1.0, **FAST)


def test_early_methods_read_the_fused_detectors_early_blocks():
    from skacd.evaluation import _methods
    from skacd.fusion import DEFAULT_BRANCHES

    assert _methods._EARLY_BLOCKS == tuple(DEFAULT_BRANCHES["early"])


@pytest.mark.parametrize("bad, message", [
    ({"jpeg_qualities": [150]}, "quality must be an int in"),
    ({"blur_sigmas": [-1.0]}, "sigma must be a non-negative"),
    ({"resize_factors": [0.0]}, "factor must be a positive"),
    ({"calibration_fraction": 1.0}, "calibration_fraction must be in"),
])
def test_bad_sweep_values_fail_before_any_image_is_read(tmp_path, bad, message):
    # The folders do not even exist: the values are checked first.
    with pytest.raises(ValueError, match=message):
        cross_generator_benchmark(
            tmp_path / "no-train", tmp_path / "no-test", cache=None, verbose=0, **bad
        )


def test_a_failing_write_leaves_the_previous_report_whole(runs, tmp_path, monkeypatch):
    result = runs[0]
    result.write(tmp_path, "bench")
    before = (tmp_path / "bench.md").read_text()

    def broken():
        raise OSError("disk full")

    monkeypatch.setattr(result, "to_markdown", broken)
    with pytest.raises(OSError, match="disk full"):
        result.write(tmp_path, "bench")
    assert (tmp_path / "bench.md").read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bench.json", "bench.md"]
