"""Precision modes and the fast featurization path: shapes, dtypes, invariances.

No timings here: speed is measured by benchmarks/throughput.py.
"""

import importlib.util
import sys

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import clone

from skacd import CLIPFeaturizer, TimmFeaturizer
from skacd.featurizers import _encoder, _loading

HAS_ONNXRUNTIME = (
    importlib.util.find_spec("onnxruntime") is not None
    and importlib.util.find_spec("onnx") is not None
)
needs_onnxruntime = pytest.mark.skipif(
    not HAS_ONNXRUNTIME, reason="the onnx extra (onnxruntime, onnx) is not installed"
)

PRECISIONS = [
    "float32",
    "bfloat16",
    "float16",
    "int8",
    pytest.param("onnx-float32", marks=needs_onnxruntime),
    pytest.param("onnx-int8", marks=needs_onnxruntime),
]


@pytest.fixture
def lite0():
    return TimmFeaturizer(
        "efficientnet_lite0", device="cpu", num_workers=0, batch_size=4
    )


@pytest.mark.parametrize("precision", PRECISIONS)
def test_every_precision_gives_float32_rows_of_the_right_shape(
    tiny_clip, image_folder, precision
):
    _, paths, _, _ = image_folder
    reference = tiny_clip.fit_transform(paths[:5])
    featurizer = clone(tiny_clip).set_params(precision=precision)
    features = featurizer.fit_transform(paths[:5])
    assert features.shape == (5, 32)
    assert features.dtype == np.float32
    assert np.all(np.isfinite(features))
    assert featurizer.precision_ == precision
    # Both are L2-normalised; a loose bound, the benchmark reports the real drift.
    assert np.sum(features * reference, axis=1).min() > 0.9


@pytest.mark.parametrize("precision", PRECISIONS)
def test_every_precision_on_a_convnet(lite0, image_folder, precision):
    _, paths, _, _ = image_folder
    features = clone(lite0).set_params(precision=precision).fit_transform(paths[:3])
    assert features.shape == (3, 1280)
    assert features.dtype == np.float32
    assert np.all(np.isfinite(features))


@needs_onnxruntime
def test_onnx_float32_gives_the_float32_features(tiny_clip, lite0, image_folder):
    _, paths, _, _ = image_folder
    for featurizer in (tiny_clip, lite0):
        reference = clone(featurizer).fit_transform(paths[:4])
        onnx = clone(featurizer).set_params(precision="onnx-float32")
        assert_allclose(onnx.fit_transform(paths[:4]), reference, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("batch_size", [1, 3, 16])
def test_float32_does_not_depend_on_batch_size(
    tiny_clip, lite0, image_folder, batch_size
):
    _, paths, _, _ = image_folder
    for featurizer in (tiny_clip, lite0):
        reference = clone(featurizer).set_params(batch_size=5).fit_transform(paths[:7])
        batched = clone(featurizer).set_params(batch_size=batch_size)
        other = batched.fit_transform(paths[:7])
        assert_allclose(other, reference, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("num_workers", [1, 2, "auto"])
def test_float32_does_not_depend_on_worker_count(
    tiny_clip, lite0, image_folder, num_workers
):
    _, paths, _, _ = image_folder
    for featurizer in (tiny_clip, lite0):
        reference = clone(featurizer).set_params(batch_size=3).fit_transform(paths[:8])
        other = clone(featurizer).set_params(batch_size=3, num_workers=num_workers)
        assert_array_equal(other.fit_transform(paths[:8]), reference)


def test_uint8_pixel_stage_matches_the_per_image_preprocess(
    tiny_clip, lite0, image_folder, monkeypatch
):
    """Workers hand over uint8 pixels; the features are those of ``preprocess``."""
    _, paths, _, _ = image_folder
    fast = {}
    for featurizer in (tiny_clip, lite0):
        encoder = clone(featurizer)._get_encoder()
        assert encoder.pixel_stage is not None  # both use the split path
        fast[type(featurizer).__name__] = clone(featurizer).fit_transform(paths[:6])
    monkeypatch.setattr(
        _loading.PixelStage, "from_preprocess", classmethod(lambda c, p: None)
    )
    monkeypatch.setattr(_encoder, "_ENCODER_CACHE", type(_encoder._ENCODER_CACHE)())
    for featurizer in (tiny_clip, lite0):
        assert clone(featurizer)._get_encoder().pixel_stage is None
        plain = clone(featurizer).fit_transform(paths[:6])
        # The same float32 operations on the same pixels: identical on the CPU.
        assert_array_equal(fast[type(featurizer).__name__], plain)


def test_pixel_stage_refuses_an_unusual_preprocess():
    from torchvision import transforms

    assert _loading.PixelStage.from_preprocess(lambda image: image) is None
    custom = transforms.Compose(
        [transforms.ToTensor(), transforms.Lambda(lambda x: x * 2)]
    )
    assert _loading.PixelStage.from_preprocess(custom) is None
    usual = transforms.Compose(
        [
            transforms.Resize(8),
            transforms.CenterCrop(8),
            transforms.ToTensor(),
            transforms.Normalize((0.1, 0.2, 0.3), (0.3, 0.2, 0.1)),
        ]
    )
    assert _loading.PixelStage.from_preprocess(usual) is not None


def test_convnets_run_channels_last_and_vits_do_not(tiny_clip, lite0):
    assert clone(lite0)._get_encoder().memory_format == torch.channels_last
    assert clone(tiny_clip)._get_encoder().memory_format == torch.contiguous_format


def test_featurize_writes_into_a_memory_mapped_out(tiny_clip, image_folder, tmp_path):
    _, paths, _, _ = image_folder
    items = paths[:5] + [str(tmp_path / "missing.png")] + paths[5:7]
    featurizer = clone(tiny_clip).set_params(on_error="skip", batch_size=3)
    out = np.lib.format.open_memmap(
        tmp_path / "features.npy", mode="w+", dtype=np.float32, shape=(8, 32)
    )
    result = featurizer.featurize(items, out=out)
    assert result.features is out
    assert list(result.errors) == [5]
    out.flush()
    stored = np.load(tmp_path / "features.npy")
    assert np.isnan(stored[5]).all()
    expected = clone(tiny_clip).set_params(batch_size=3).fit_transform(paths[:7])
    assert_allclose(np.delete(stored, 5, axis=0), expected, rtol=1e-5, atol=1e-6)


def test_featurize_out_of_the_wrong_shape_is_refused(tiny_clip, image_folder):
    _, paths, _, _ = image_folder
    with pytest.raises(ValueError, match=r"out must have shape \(3, 32\)"):
        tiny_clip.featurize(paths[:3], out=np.empty((3, 31), dtype=np.float32))


@pytest.mark.parametrize("precision", ["int8", "onnx-float32", "onnx-int8"])
def test_cpu_only_modes_refuse_cuda(precision):
    featurizer = CLIPFeaturizer("skacd-tiny-ViT", pretrained=None, precision=precision)
    featurizer.device = torch.device("cuda")
    if torch.cuda.is_available():
        with pytest.raises(ValueError, match="runs on the CPU only"):
            featurizer.fit()
    else:
        with pytest.raises(ValueError, match="CUDA is not available"):
            featurizer.fit()


def test_onnx_int8_without_onnxruntime_names_the_extra(monkeypatch, image_folder):
    from skacd.featurizers import _onnx

    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(ImportError, match=r"skacd\[onnx\]"):
        _onnx._import_onnxruntime()
    featurizer = CLIPFeaturizer(
        "skacd-tiny-ViT", pretrained=None, device="cpu", precision="onnx-int8"
    )
    featurizer.set_params(cache_dir="no-onnxruntime")  # a fresh encoder-cache key
    with pytest.raises(ImportError, match=r"skacd\[onnx\]"):
        featurizer.fit()
