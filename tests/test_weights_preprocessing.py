"""The weights' own preprocessing: downloaded, cached, offline or from a file.

A test tag, ``skacd_test``, is registered for the tiny random open_clip model
with preprocessing unlike open_clip's defaults; its checkpoint lives in a
temporary Hugging Face cache, so no test touches the network.
"""

import warnings

import numpy as np
import pytest
import torch
from numpy.testing import assert_array_equal
from PIL import Image

from skacd import CLIPFeaturizer
from skacd.featurizers import _encoder

TAG = "skacd_test"
REPO = "skacd/tiny-test"
COMMIT = "0123456789abcdef0123456789abcdef01234567"
TAG_CFG = {
    "url": "",
    "hf_hub": f"{REPO}/",
    "mean": (0.25, 0.5, 0.75),
    "std": (0.2, 0.3, 0.4),
    "interpolation": "bilinear",
    "resize_mode": "squash",
}


def _tiny_state_dict():
    import open_clip

    from skacd.featurizers._open_clip import _open_clip

    _open_clip()  # registers the tiny model config
    torch.manual_seed(123)  # weights unlike the seeded random initialisation
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = open_clip.create_model("skacd-tiny-ViT", pretrained=None)
    return {k: v.contiguous() for k, v in model.state_dict().items()}


@pytest.fixture
def test_tag(monkeypatch, tmp_path):
    """Register ``skacd_test`` and give it a checkpoint and an empty HF cache.

    Returns ``(cache_dir, download)``: ``download()`` puts the checkpoint in the
    cache as ``hf_hub_download`` would (it is what the patched download does).
    """
    import open_clip.pretrained
    import safetensors.torch

    from skacd.featurizers import _open_clip as clip_module

    clip_module._open_clip()
    registry = open_clip.pretrained._PRETRAINED
    monkeypatch.setitem(registry, "skacd-tiny-ViT", {TAG: dict(TAG_CFG)})
    source = tmp_path / "hub" / "open_clip_model.safetensors"
    source.parent.mkdir()
    safetensors.torch.save_file(_tiny_state_dict(), str(source))
    cache_dir = tmp_path / "hf-cache"

    def download():
        repo = cache_dir / ("models--" + REPO.replace("/", "--"))
        (repo / "refs").mkdir(parents=True, exist_ok=True)
        (repo / "refs" / "main").write_text(COMMIT)
        snapshot = repo / "snapshots" / COMMIT
        snapshot.mkdir(parents=True, exist_ok=True)
        target = snapshot / source.name
        target.write_bytes(source.read_bytes())
        return str(target)

    def fake_hf_hub_download(repo_id, filename, revision=None, cache_dir=None, **kw):
        if repo_id != REPO or filename != source.name:
            raise FileNotFoundError(f"{repo_id}/{filename} is not on the fake hub")
        return download()

    monkeypatch.setattr(open_clip.pretrained, "hf_hub_download", fake_hf_hub_download)
    monkeypatch.setattr(clip_module, "check_hub_reachable", lambda *a, **k: None)
    monkeypatch.setattr(_encoder, "_ENCODER_CACHE", type(_encoder._ENCODER_CACHE)())
    return cache_dir, download, source


def _new_process():
    """Forget the loaded encoders, as a new Python process would."""
    _encoder._ENCODER_CACHE.clear()


@pytest.fixture
def images():
    rng = np.random.RandomState(0)
    # Not square, so that "squash" and "shortest" resizing differ.
    shape = (40, 64, 3)
    return [Image.fromarray(rng.randint(0, 256, shape, dtype=np.uint8))
            for _ in range(4)]


def _by_hand(images, state_dict):
    """Features the tag's preprocessing and weights give, computed by hand."""
    import open_clip

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = open_clip.create_model("skacd-tiny-ViT", pretrained=None)
    model.load_state_dict(state_dict)
    mean = torch.tensor(TAG_CFG["mean"]).reshape(3, 1, 1)
    std = torch.tensor(TAG_CFG["std"]).reshape(3, 1, 1)
    rows = []
    for image in images:
        resized = image.resize((32, 32), Image.BILINEAR)  # squash, bilinear
        pixels = torch.from_numpy(np.array(resized)).permute(2, 0, 1).float() / 255
        rows.append((pixels - mean) / std)
    with torch.inference_mode():
        out = model.visual.eval()(torch.stack(rows))
    return torch.nn.functional.normalize(out, dim=-1).numpy()


def _featurizer(cache_dir, **kwargs):
    kwargs.setdefault("pretrained", TAG)
    return CLIPFeaturizer(
        "skacd-tiny-ViT", cache_dir=str(cache_dir), device="cpu", num_workers=0,
        **kwargs,
    )


def test_a_tag_preprocesses_the_same_downloaded_cached_and_offline(
    test_tag, images, monkeypatch
):
    """The defect of issue 11: cached weights lost the tag's preprocessing."""
    cache_dir, _, source = test_tag
    first = _featurizer(cache_dir).fit_transform(images)  # downloads the weights
    assert any(cache_dir.rglob(source.name))
    _new_process()
    later = _featurizer(cache_dir).fit_transform(images)  # reads them from the cache
    _new_process()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    offline = _featurizer(cache_dir).fit_transform(images)
    import safetensors.torch

    expected = _by_hand(images, safetensors.torch.load_file(str(source)))
    np.testing.assert_allclose(first, expected, rtol=0, atol=2e-6)
    assert_array_equal(later, first)
    assert_array_equal(offline, first)


def test_the_tag_sets_the_recorded_preprocessing(test_tag, images):
    cache_dir, download, _ = test_tag
    download()
    featurizer = _featurizer(cache_dir).fit(images)
    assert featurizer.preprocessing_ == {
        "fill_color": 0,
        "interpolation": "bilinear",
        "mean": [0.25, 0.5, 0.75],
        "resize_mode": "squash",
        "size": [32, 32],
        "std": [0.2, 0.3, 0.4],
    }
    assert featurizer._preprocess_config() == featurizer.preprocessing_
    identity = featurizer._get_encoder().identity
    assert identity["preprocessing"] == featurizer.preprocessing_
    assert identity["pretrained"] == f"{TAG}@open_clip_model.safetensors"


def test_a_local_file_with_its_tag_named_gives_the_tag_features(test_tag, images):
    cache_dir, download, source = test_tag
    download()
    by_tag = _featurizer(cache_dir).fit_transform(images)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning: the preprocessing is named
        by_file = _featurizer(cache_dir, pretrained=str(source), weights_tag=TAG)
        assert_array_equal(by_file.fit_transform(images), by_tag)
    assert by_file.preprocessing_ == _featurizer(cache_dir).fit().preprocessing_


def test_a_local_file_without_a_tag_warns_which_defaults_apply(test_tag, images):
    cache_dir, _, source = test_tag
    featurizer = _featurizer(cache_dir, pretrained=str(source))
    with pytest.warns(UserWarning, match=r"no weights_tag.*defaults.*bicubic.*shortest"
                      r".*quick_gelu=False.*skacd_test"):
        features = featurizer.fit_transform(images)
    assert featurizer.preprocessing_["resize_mode"] == "shortest"
    assert not np.allclose(features, _featurizer(cache_dir, pretrained=str(source),
                                                 weights_tag=TAG).fit_transform(images))


def test_offline_without_the_file_fails_fast(test_tag, monkeypatch):
    from skacd.exceptions import WeightsUnavailableError
    from skacd.featurizers import _open_clip as clip_module
    from skacd.featurizers._weights import check_hub_reachable

    cache_dir, _, _ = test_tag
    monkeypatch.setattr(clip_module, "check_hub_reachable", check_hub_reachable)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    match = r"offline mode.*weights_tag='skacd_test'"
    with pytest.raises(WeightsUnavailableError, match=match):
        _featurizer(cache_dir).fit()


def test_weights_tag_errors_name_the_tags(test_tag, tmp_path):
    cache_dir, _, source = test_tag
    match = r"weights_tag='nope' is not .*\['skacd_test'\]"
    with pytest.raises(ValueError, match=match):
        _featurizer(cache_dir, pretrained=str(source), weights_tag="nope").fit()
    with pytest.raises(ValueError, match="contradicts the weights tag"):
        CLIPFeaturizer(
            "ViT-B-32", pretrained="openai", weights_tag="laion2b_s34b_b79k"
        ).fit()


@pytest.mark.parametrize("model, tag, expected", [
    ("ViT-L-14", "laion2b_s32b_b82k", {"mean": [0.5] * 3, "std": [0.5] * 3}),
    ("ViT-B-16-SigLIP", "webli", {"resize_mode": "squash", "size": [224, 224]}),
    ("ViT-B-32", "openai", {"resize_mode": "shortest", "interpolation": "bicubic"}),
    ("ViT-L-14-CLIPA", "datacomp1b", {"interpolation": "bilinear",
                                      "mean": [0.485, 0.456, 0.406]}),
])
def test_real_tags_preprocessing_without_weights(model, tag, expected):
    config = CLIPFeaturizer(model, pretrained=tag)._preprocess_config()
    for key, value in expected.items():
        assert config[key] == value
    # The same tag named for a local file (that need not exist to know it).
    named = CLIPFeaturizer(model, pretrained="/no/such/file.bin", weights_tag=tag)
    assert named._preprocess_config() == config


def test_the_tag_quick_gelu_flag_applies_to_a_local_file(test_tag, images, monkeypatch):
    import open_clip.pretrained
    from open_clip.transformer import QuickGELU

    cache_dir, _, source = test_tag
    monkeypatch.setitem(open_clip.pretrained._PRETRAINED["skacd-tiny-ViT"][TAG],
                        "quick_gelu", True)
    quick = _featurizer(cache_dir, pretrained=str(source), weights_tag=TAG).fit()
    encoder = quick._get_encoder()
    assert encoder.identity["quick_gelu"] is True
    assert any(isinstance(m, QuickGELU) for m in encoder.module.modules())
    plain = _featurizer(cache_dir, pretrained=str(source), weights_tag=TAG)
    monkeypatch.setitem(open_clip.pretrained._PRETRAINED["skacd-tiny-ViT"][TAG],
                        "quick_gelu", False)
    _new_process()
    modules = plain.fit()._get_encoder().module.modules()
    assert not any(isinstance(m, QuickGELU) for m in modules)


# -- timm: user checkpoints through timm's loader, data config from the tag ----


def _timm_state(name, seed):
    import timm

    torch.manual_seed(seed)
    return timm.create_model(name, pretrained=False).state_dict()


def _timm(name, **kwargs):
    from skacd import TimmFeaturizer

    return TimmFeaturizer(name, device="cpu", num_workers=0, **kwargs)


@pytest.mark.parametrize("layout", ["state_dict", "model", "ema", "ddp", "safetensors"])
def test_timm_checkpoints_load_through_timm(tmp_path, images, layout):
    plain, other = _timm_state("test_vit", 1), _timm_state("test_vit", 2)
    torch.save(plain, tmp_path / "plain.pth")
    expected = _timm("test_vit", checkpoint_path=tmp_path / "plain.pth").fit_transform(
        images
    )
    path = tmp_path / f"{layout}.pth"
    if layout == "state_dict":
        torch.save({"state_dict": plain, "epoch": 3}, path)
    elif layout == "model":
        torch.save({"model": plain}, path)
    elif layout == "ema":  # timm prefers the EMA weights
        torch.save({"state_dict": other, "state_dict_ema": plain}, path)
    elif layout == "ddp":
        torch.save({f"module.{k}": v for k, v in plain.items()}, path)
    else:
        import safetensors.torch

        path = tmp_path / "plain.safetensors"
        safetensors.torch.save_file({k: v.contiguous() for k, v in plain.items()}, path)
    assert_array_equal(_timm("test_vit", checkpoint_path=path).fit_transform(images),
                       expected)


def test_timm_checkpoint_of_another_model_is_refused_naming_it(tmp_path):
    path = tmp_path / "resnet.pth"
    torch.save(_timm_state("test_resnet", 0), path)
    with pytest.raises(ValueError, match=r"resnet\.pth.*does not hold weights of the "
                                         r"timm model 'test_vit'"):
        _timm("test_vit", checkpoint_path=path).fit()


def test_timm_data_config_comes_from_the_named_tag(tmp_path, images):
    import timm

    a1, tv = _timm("resnet50.a1_in1k"), _timm("resnet50.tv_in1k")
    assert a1._preprocess_config() != tv._preprocess_config()
    built = timm.create_model("resnet50.tv_in1k", pretrained=False)
    assert tv._preprocess_config() == {
        k: list(v) if isinstance(v, tuple) else v
        for k, v in sorted(timm.data.resolve_data_config({}, model=built).items())
    }
    path = tmp_path / "vit.pth"
    torch.save(_timm_state("test_vit", 0), path)
    tagged = _timm("test_vit.r160_in1k", checkpoint_path=path).fit()
    assert tagged.preprocessing_["input_size"] == [3, 160, 160]
    assert tagged._get_encoder().identity["preprocessing"] == tagged.preprocessing_
    with pytest.raises(ValueError, match=r"no pretrained tag 'nope' for 'resnet50'"):
        _timm("resnet50.nope")._preprocess_config()


# -- detector files: the preprocessing is recorded and checked -----------------


@pytest.fixture
def detector(test_tag, image_folder, tmp_path):
    """A detector fitted on the test tag's features, saved; and its images."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.pipeline import make_pipeline

    from skacd import AttributionClassifier, save

    cache_dir, download, _ = test_tag
    download()
    _, paths, y, _ = image_folder
    pipe = make_pipeline(
        _featurizer(cache_dir), AttributionClassifier(max_epochs=3, random_state=0)
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        pipe.fit(paths, y)
    path = tmp_path / "tag.skacd"
    save(pipe, path)
    return path, pipe, paths


def test_the_detector_file_records_the_preprocessing(detector):
    from skacd.io import read_manifest

    path, pipe, paths = detector
    encoder = read_manifest(path)["encoder"]
    assert encoder["preprocessing"] == pipe[0].preprocessing_
    assert encoder["preprocessing"]["resize_mode"] == "squash"
    assert encoder["spec"] == f"clip:skacd-tiny-ViT:{TAG}"
    from skacd import load

    loaded = load(path)
    assert loaded[0].preprocessing_ == pipe[0].preprocessing_
    assert_array_equal(loaded.predict_proba(paths[:4]), pipe.predict_proba(paths[:4]))


def test_a_detector_whose_preprocessing_changed_is_refused(detector, monkeypatch):
    """As when another open_clip version changes the tag's configuration."""
    import open_clip.pretrained

    from skacd import load
    from skacd.exceptions import PreprocessingMismatchError

    path, _, _ = detector
    entry = open_clip.pretrained._PRETRAINED["skacd-tiny-ViT"][TAG]
    monkeypatch.setitem(entry, "mean", (0.5, 0.5, 0.5))
    with pytest.raises(PreprocessingMismatchError) as info:
        load(path)
    message = str(info.value)
    assert str(path) in message and "differing: mean" in message
    assert "mean (0.25, 0.5, 0.75)" in message and "mean (0.5, 0.5, 0.5)" in message


def test_skacd_predict_refuses_it_too(detector, monkeypatch, capsys):
    import open_clip.pretrained

    from skacd.cli import main

    path, _, paths = detector
    entry = open_clip.pretrained._PRETRAINED["skacd-tiny-ViT"][TAG]
    monkeypatch.setitem(entry, "resize_mode", "shortest")
    assert main(["predict", str(path), paths[0], "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "differing: resize_mode" in err and "resize_mode squash" in err


def test_a_loaded_detector_refuses_features_made_otherwise(detector):
    from skacd import load
    from skacd.exceptions import PreprocessingMismatchError

    path, _, paths = detector
    loaded = load(path)
    # Pointed at the same weights as a plain file, with no weights_tag:
    # open_clip's defaults would apply, so nothing is scored.
    local = next(path.parent.rglob("hub/open_clip_model.safetensors"))
    featurizer = loaded[0]
    featurizer.set_params(pretrained=str(local))
    with pytest.warns(UserWarning, match="no weights_tag"), pytest.raises(
        PreprocessingMismatchError, match="This CLIPFeaturizer was fitted on images"
    ):
        loaded.predict(paths[:2])
    featurizer.set_params(weights_tag=TAG)
    assert loaded.predict(paths[:2]).shape == (2,)


def test_skacd_info_lists_a_cached_tag_with_its_preprocessing(test_tag, monkeypatch,
                                                              capsys):
    import huggingface_hub.constants

    from skacd.cli import main

    cache_dir, download, _ = test_tag
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache_dir))
    assert main(["info"]) == 0
    assert f"clip:skacd-tiny-ViT:{TAG}" not in capsys.readouterr().out
    download()
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    line = next(line for line in out.splitlines() if f"skacd-tiny-ViT:{TAG}:" in line)
    assert "32x32, fill_color 0, interpolation bilinear, resize_mode squash" in line
    assert "mean (0.25, 0.5, 0.75), std (0.2, 0.3, 0.4)" in line


def test_the_features_are_those_open_clip_gives_for_the_tag(test_tag, images,
                                                            monkeypatch):
    """open_clip given the tag itself (its file named in the config) agrees."""
    import open_clip.pretrained

    cache_dir, download, source = test_tag
    download()
    ours = _featurizer(cache_dir).fit_transform(images)
    entry = open_clip.pretrained._PRETRAINED["skacd-tiny-ViT"][TAG]
    monkeypatch.setitem(entry, "file", str(source))  # download_pretrained -> file
    model, _, preprocess = open_clip.create_model_and_transforms(
        "skacd-tiny-ViT", pretrained=TAG
    )
    with torch.inference_mode():
        theirs = model.eval().encode_image(torch.stack([preprocess(i) for i in images]))
    theirs = torch.nn.functional.normalize(theirs, dim=-1).numpy()
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=2e-6)
    assert repr(preprocess) == repr(_featurizer(cache_dir)._get_encoder().preprocess)
