"""skacd.io: detector files as JSON + safetensors; loading never runs code from them."""

import json
import os
import pickle
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from open_clip.constants import OPENAI_DATASET_MEAN as OPENAI_MEAN
from open_clip.constants import OPENAI_DATASET_STD as OPENAI_STD
from sklearn.decomposition import PCA
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler

from skacd import (
    AttributionClassifier,
    AttributionSpace,
    CLIPFeaturizer,
    TimmFeaturizer,
)
from skacd.cache import FeatureCache
from skacd.datasets import make_generator_manifolds
from skacd.exceptions import DeviceWarning
from skacd.featurizers import GaussianBlur, JPEGCompression
from skacd.io import FORMAT_VERSION, DetectorFileError, load, read_manifest, save

from conftest import tiny_detector

FIXTURES = Path(__file__).parent / "fixtures"


def images(seed, n=12, size=40):
    rng = np.random.RandomState(seed)
    X = rng.randint(0, 256, (n, size, size, 3), dtype=np.uint8)
    X[n // 2 :, ::2, ::2] = 255
    return X, np.repeat([0, 1], [n // 2, n - n // 2])


def quiet_fit(estimator, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return estimator.fit(X, y)


@pytest.fixture(scope="module")
def detector():
    X, y = images(0)
    pipe = tiny_detector()
    return quiet_fit(pipe, X, y)


@pytest.fixture(scope="module")
def saved(detector, tmp_path_factory):
    path = tmp_path_factory.mktemp("io") / "detector.skacd"
    save(detector, path)
    return path


def rewrite(path, out, edit_manifest=None, tensors=None, extra=None):
    """Copy a detector file with its manifest edited (a crafted file)."""
    with zipfile.ZipFile(path) as zf:
        manifest = json.loads(zf.read("manifest.json"))
        tensor_bytes = zf.read("tensors.safetensors")
    if edit_manifest is not None:
        edit_manifest(manifest)
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr("manifest.json", json.dumps(manifest))
        zf.writestr("tensors.safetensors", tensor_bytes if tensors is None else tensors)
        for name, data in (extra or {}).items():
            zf.writestr(name, data)
    return out


def step(manifest, index):
    return manifest["estimator"]["steps"][index][1]


# -- round trips ---------------------------------------------------------------


def test_pipeline_round_trip_is_exact(detector, saved):
    X, _ = images(1)
    loaded = load(saved)
    np.testing.assert_array_equal(loaded.predict_proba(X), detector.predict_proba(X))
    np.testing.assert_array_equal(loaded[:2].transform(X), detector[:2].transform(X))
    assert [name for name, _ in loaded.steps] == [name for name, _ in detector.steps]
    for (_, a), (_, b) in zip(loaded.steps, detector.steps):
        assert type(a) is type(b)
        assert a.get_params(deep=False) == b.get_params(deep=False)
    space, original = loaded[1], detector[1]
    for attr in ("n_features_in_", "offset_", "loss_curve_", "module_config_",
                 "device_", "n_iter_", "n_source_samples_", "validation_scores_"):
        assert getattr(space, attr) == getattr(original, attr), attr
    assert loaded[2].classes_.dtype == detector[2].classes_.dtype
    assert loaded[0].n_features_out_ == 32
    assert isinstance(loaded[1].hidden_layer_sizes, tuple)


def test_file_layout_and_manifest(saved):
    with zipfile.ZipFile(saved) as zf:
        assert sorted(zf.namelist()) == ["manifest.json", "tensors.safetensors"]
        assert not any(name.endswith(".pkl") for name in zf.namelist())
    manifest = read_manifest(saved)
    assert manifest["format"] == "skacd-detector"
    assert manifest["format_version"] == FORMAT_VERSION == 1
    versions = manifest["created_with"]
    assert versions["torch"] and versions["scikit-learn"] and versions["skacd"]
    assert manifest["encoder"] == {
        "class": "CLIPFeaturizer", "model_name": "skacd-tiny-ViT", "pretrained": None,
        "library": "open_clip_torch",
        "library_version": manifest["encoder"]["library_version"],
        "embed_dim": 32, "weights_tag": None, "spec": "clip:skacd-tiny-ViT:none",
        "preprocessing": {
            "fill_color": 0, "interpolation": "bicubic", "mean": list(OPENAI_MEAN),
            "resize_mode": "shortest", "size": [32, 32], "std": list(OPENAI_STD),
        },
    }
    space = step(manifest, 1)
    assert space["class"] == "skacd.AttributionSpace"
    assert space["params"]["hidden_layer_sizes"] == {"__tuple__": [16]}
    assert space["fitted"]["module_config_"]["latent_dim"] == 4
    assert space["modules"] == {"module_": "steps.1.module_."}
    assert os.stat(saved).st_mode & 0o777 == 0o666 & ~_umask()


def _umask():
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def test_single_estimators_and_string_classes(tmp_path):
    X, y = make_generator_manifolds(n_samples=80, n_features=8, random_state=0)
    labels = np.where(y == 1, "fake", "real")
    space = quiet_fit(
        AttributionSpace(latent_dim=4, max_epochs=3, cv=None, random_state=0), X, y
    )
    head = quiet_fit(AttributionClassifier(max_epochs=3, random_state=0), X, labels)
    save(space, tmp_path / "space.skacd")
    save(head, tmp_path / "head.skacd")
    space2, head2 = load(tmp_path / "space.skacd"), load(tmp_path / "head.skacd")
    np.testing.assert_array_equal(space2.transform(X), space.transform(X))
    np.testing.assert_array_equal(space2.score_samples(X), space.score_samples(X))
    np.testing.assert_array_equal(space2.predict(X), space.predict(X))
    assert head2.classes_.tolist() == ["fake", "real"]
    np.testing.assert_array_equal(head2.predict(X), head.predict(X))
    np.testing.assert_array_equal(head2.predict_proba(X), head.predict_proba(X))


def test_plain_sklearn_steps(tmp_path):
    rng = np.random.RandomState(0)
    X, y = rng.rand(40, 6), rng.randint(0, 2, 40)
    pipe = make_pipeline(
        StandardScaler(), PCA(3, random_state=0), LogisticRegression()
    ).fit(X, y)
    save(pipe, tmp_path / "probe.skacd")
    loaded = load(tmp_path / "probe.skacd")
    Z = rng.rand(9, 6)
    np.testing.assert_array_equal(loaded.predict_proba(Z), pipe.predict_proba(Z))
    assert loaded[0].n_samples_seen_ == pipe[0].n_samples_seen_


def test_timm_featurizer_and_image_transforms_are_stored(tmp_path):
    featurizer = TimmFeaturizer("efficientnet_lite0",
                                image_transform=JPEGCompression(50))
    head = quiet_fit(AttributionClassifier(max_epochs=1), *make_generator_manifolds(
        n_samples=20, n_features=1280, random_state=0))
    save(make_pipeline(featurizer, head), tmp_path / "d.skacd")
    loaded = load(tmp_path / "d.skacd")
    assert loaded[0].image_transform == JPEGCompression(50)
    manifest = read_manifest(tmp_path / "d.skacd")
    assert manifest["encoder"]["model_name"] == "efficientnet_lite0"
    featurizer.set_params(image_transform=GaussianBlur(1.5))
    save(make_pipeline(featurizer, head), tmp_path / "d.skacd")
    assert load(tmp_path / "d.skacd")[0].image_transform == GaussianBlur(1.5)


def test_machine_local_settings_are_not_saved(detector, tmp_path):
    featurizer = CLIPFeaturizer("skacd-tiny-ViT", pretrained=None,
                                cache=FeatureCache(tmp_path / "c"),
                                cache_dir=str(tmp_path))
    pipe = make_pipeline(featurizer, detector[1], detector[2])
    save(pipe, tmp_path / "d.skacd")
    node = step(read_manifest(tmp_path / "d.skacd"), 0)
    assert node["params"]["cache"] is None and node["params"]["cache_dir"] is None
    assert set(node["not_saved"]) == {"cache", "cache_dir"}
    assert load(tmp_path / "d.skacd")[0].cache is None


# -- what save refuses ------------------------------------------------------------


def test_save_refuses_what_it_cannot_store(detector, tmp_path):
    path = tmp_path / "d.skacd"
    path.write_bytes(b"previous")
    X = np.random.rand(10, 3)
    with pytest.raises(TypeError,
                       match=r"cannot store a sklearn.preprocessing.*MinMaxScaler"):
        save(make_pipeline(MinMaxScaler().fit(X)), path)
    with pytest.raises(TypeError, match=r"CLIPFeaturizer.image_transform = <function"):
        save(make_pipeline(CLIPFeaturizer(image_transform=lambda im: im), detector[1]),
             path)
    with pytest.raises(NotFittedError, match="AttributionSpace is not fitted yet"):
        save(AttributionSpace(), path)
    assert path.read_bytes() == b"previous"  # untouched, and no temporary file left
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.skacd"]


# -- newer formats, devices --------------------------------------------------------


def test_newer_format_version_is_a_clear_error(saved, tmp_path):
    def bump(manifest):
        manifest["format_version"] = FORMAT_VERSION + 1
        manifest["created_with"]["skacd"] = "9.0"

    crafted = rewrite(saved, tmp_path / "new.skacd", bump)
    with pytest.raises(DetectorFileError, match=(
        r"'.*new.skacd' was written in skacd detector format version 2 "
        r"\(by skacd 9.0\); "
        r"this skacd .* reads format version 1 at most. Upgrade skacd"
    )):
        load(crafted)


def test_gpu_fitted_detector_loads_on_cpu(detector, saved, tmp_path, monkeypatch):
    """device_="cuda" in the file (as a GPU fit writes it): loads on the CPU, warns."""
    def on_cuda(manifest):
        for _, node in manifest["estimator"]["steps"]:
            node["fitted"]["device_"] = "cuda"
        step(manifest, 2)["params"]["device"] = "cuda:1"

    crafted = rewrite(saved, tmp_path / "gpu.skacd", on_cuda)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.warns(DeviceWarning,
                      match="fitted on a CUDA device that is not available") as w:
        loaded = load(crafted)
    assert len(w) == 1
    assert "AttributionClassifier.device='cuda:1'" in str(w[0].message)
    assert [s.device_ for _, s in loaded.steps] == ["cpu", "cpu", "cpu"]
    assert loaded[2].device == "cpu"
    assert next(loaded[1].module_.parameters()).device.type == "cpu"
    X, _ = images(2)
    np.testing.assert_array_equal(loaded.predict_proba(X), detector.predict_proba(X))


def test_committed_cuda_fixture():
    """A file with CUDA devices (see tests/fixtures/README.md) loads and predicts."""
    expected = json.loads((FIXTURES / "cuda_detector.json").read_text())
    if torch.cuda.is_available():
        detector = load(FIXTURES / "cuda_detector.skacd")
    else:
        with pytest.warns(DeviceWarning, match="loaded on the CPU instead"):
            detector = load(FIXTURES / "cuda_detector.skacd")
        assert detector[1].device_ == detector[2].device_ == "cpu"
    features = np.asarray(expected["features"], dtype=np.float32)
    np.testing.assert_allclose(
        detector[1:].predict_proba(features)[:, 1], expected["proba"],
        rtol=1e-5, atol=1e-6,
    )
    X = np.random.RandomState(0).randint(0, 256, (3, 40, 40, 3), dtype=np.uint8)
    assert np.isfinite(detector.predict_proba(X)).all()


# -- files that must not run code ----------------------------------------------------


class Payload:
    """Unpickling this creates a marker file: proof that code ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.fixture
def marker(tmp_path):
    path = tmp_path / "PWNED"
    yield path
    assert not path.exists(), "loading the crafted file ran code"


def test_pickle_file_is_refused(tmp_path, marker):
    path = tmp_path / "evil.skacd"
    path.write_bytes(pickle.dumps(Payload(marker)))
    with pytest.raises(DetectorFileError,
                       match="looks like a Python pickle. skacd never unpickles"):
        load(path)


def test_torch_save_file_is_refused(tmp_path, marker):
    path = tmp_path / "evil.skacd"
    torch.save({"model": Payload(marker)}, path)
    with pytest.raises(DetectorFileError,
                       match=r"torch.save / pickle archive \(it holds data.pkl\)"):
        load(path)


def test_pickle_inside_a_detector_zip_is_never_read(saved, tmp_path, marker):
    crafted = rewrite(saved, tmp_path / "evil.skacd",
                      extra={"data.pkl": pickle.dumps(Payload(marker))})
    load(crafted)  # the extra member is ignored, never unpickled
    crafted = rewrite(saved, tmp_path / "evil2.skacd",
                      tensors=pickle.dumps(Payload(marker)))
    with pytest.raises(DetectorFileError,
                       match="tensors.safetensors is not a valid safetensors"):
        load(crafted)


@pytest.mark.parametrize("class_name", [
    "builtins.eval", "os.system", "subprocess.Popen",
    "sklearn.preprocessing.FunctionTransformer",
])
def test_class_outside_the_allow_list_is_refused(
    class_name, saved, tmp_path, monkeypatch
):
    def swap(manifest):
        step(manifest, 1)["class"] = class_name
        step(manifest, 1)["params"] = {"args": "touch PWNED"}

    crafted = rewrite(saved, tmp_path / "evil.skacd", swap)
    with pytest.raises(DetectorFileError, match=(
        rf"names the class '{class_name}', which is not on skacd's allow-list .* "
        "nothing was instantiated"
    )):
        load(crafted)


@pytest.mark.parametrize("edit, message", [
    (lambda m: step(m, 0)["params"].update(image_transform={"__transform__": {
        "class": "os.system", "command": "touch PWNED"}}),
     "image transform that is not allowed"),
    (lambda m: step(m, 1)["params"].update(cv={"__reduce__": ["os.system", ["x"]]}),
     "unknown tag"),
    (lambda m: step(m, 1)["fitted"].update(__class__="dict"),
     "cannot take the fitted attribute"),
    (lambda m: step(m, 1)["fitted"].update(transform=1),
     "cannot take the fitted attribute"),
    (lambda m: step(m, 1)["params"].update(evil=1),
     "unexpected keyword argument 'evil'"),
    (lambda m: step(m, 1)["params"].update(cv="many"),
     "The 'cv' parameter of AttributionSpace"),
    (lambda m: step(m, 1)["fitted"]["module_config_"].update(n_features=10**9),
     r"cannot rebuild AttributionSpace.module_"),
    (lambda m: step(m, 1)["fitted"]["module_config_"].update(activation="os.system"),
     r"cannot rebuild AttributionSpace.module_"),
    (lambda m: step(m, 2).update(modules={"module_": "steps.1.module_."}),
     "cannot rebuild AttributionClassifier.module_"),
    (lambda m: step(m, 2)["fitted"].update(classes_={"__tensor__": "nowhere"}),
     "the tensor 'nowhere' named in manifest.json is missing"),
    (lambda m: m.update(format="something-else"),
     "does not say format='skacd-detector'"),
    (lambda m: m["estimator"].update(steps="rm -rf"), "a Pipeline without steps"),
])
def test_crafted_manifests_are_refused(edit, message, saved, tmp_path, marker):
    crafted = rewrite(saved, tmp_path / "evil.skacd", edit)
    with pytest.raises(DetectorFileError, match=message):
        load(crafted)


def test_loading_never_unpickles(saved, monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("pickle was used")

    monkeypatch.setattr(pickle, "loads", forbidden)
    monkeypatch.setattr(pickle, "load", forbidden)
    monkeypatch.setattr(pickle, "Unpickler", forbidden)
    monkeypatch.setattr(torch, "load", forbidden)
    load(saved)


def test_not_a_detector_file(tmp_path, saved):
    (tmp_path / "notes.skacd").write_text("hello")
    with pytest.raises(DetectorFileError, match="not a zip archive"):
        load(tmp_path / "notes.skacd")
    with zipfile.ZipFile(tmp_path / "other.zip", "w") as zf:
        zf.writestr("readme.txt", "hi")
    with pytest.raises(DetectorFileError, match="has no manifest.json"):
        load(tmp_path / "other.zip")
    with pytest.raises(DetectorFileError, match="is a directory"):
        load(tmp_path)
    with pytest.raises(FileNotFoundError, match="No such detector file"):
        load(tmp_path / "missing.skacd")
    data = saved.read_bytes()
    (tmp_path / "cut.skacd").write_bytes(data[: len(data) // 2])
    with pytest.raises(DetectorFileError):
        load(tmp_path / "cut.skacd")


# -- nested detectors (calibrated, one-class) -------------------------------------


def test_calibrated_detector_round_trip_and_nested_allow_list(detector, tmp_path):
    from skacd import ConformalThresholdClassifier

    X, y = images(1)
    calibrated = ConformalThresholdClassifier(detector, target_fpr=0.2).fit(X[y == 0])
    path = tmp_path / "calibrated.skacd"
    save(calibrated, path)
    manifest = read_manifest(path)
    assert manifest["encoder"]["model_name"] == "skacd-tiny-ViT"  # seen through
    node = manifest["estimator"]
    assert node["class"] == "skacd.ConformalThresholdClassifier"
    assert node["fitted"]["n_calibration_samples_"] == 6
    assert node["fitted"]["calibration_fingerprint_"].startswith("sha256:")
    loaded = load(path)
    np.testing.assert_array_equal(loaded.predict_proba(X), calibrated.predict_proba(X))
    np.testing.assert_array_equal(loaded.p_real(X), calibrated.p_real(X))

    def swap(m):
        m["estimator"]["params"]["estimator"]["__estimator__"]["class"] = "os.system"

    crafted = rewrite(path, tmp_path / "evil.skacd", swap)
    with pytest.raises(DetectorFileError, match="'os.system', which is not on skacd's"):
        load(crafted)


def test_old_files_without_a_threshold_still_load(saved):
    manifest = read_manifest(saved)
    assert manifest["estimator"]["class"] == "sklearn.pipeline.Pipeline"
    assert "__estimator__" not in json.dumps(manifest)
    assert not hasattr(load(saved), "threshold_")
