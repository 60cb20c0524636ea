"""Crafted detector files: each ends in a named DetectorFileError, fast and small.

Every malicious file is built here from a real detector; nothing hostile is
committed (issue 13, items 1-4).
"""

import json
import os
import resource
import struct
import time
import warnings
import zipfile

import numpy as np
import pytest
import safetensors.torch
import torch

from skacd import CLIPFeaturizer
from skacd.io import DetectorFileError, load, save

from conftest import tiny_detector


def images(seed, n=12, size=40):
    rng = np.random.RandomState(seed)
    X = rng.randint(0, 256, (n, size, size, 3), dtype=np.uint8)
    X[n // 2 :, ::2, ::2] = 255
    return X, np.repeat([0, 1], [n // 2, n - n // 2])


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    X, y = images(0)
    pipe = tiny_detector()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pipe.fit(X, y)
    path = tmp_path_factory.mktemp("hostile") / "detector.skacd"
    save(pipe, path)
    return path


def parts(path):
    with zipfile.ZipFile(path) as zf:
        return json.loads(zf.read("manifest.json")), zf.read("tensors.safetensors")


def write(out, manifest_bytes, tensor_bytes, tensor_method=zipfile.ZIP_STORED,
          extra=()):
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr("manifest.json", manifest_bytes, compress_type=zipfile.ZIP_DEFLATED)
        zf.writestr("tensors.safetensors", tensor_bytes, compress_type=tensor_method)
        for name, data in extra:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "Duplicate name"
                zf.writestr(name, data)
    return out


def crafted(saved, out, edit=None, edit_tensors=None):
    manifest, tensor_bytes = parts(saved)
    if edit is not None:
        edit(manifest)
    if edit_tensors is not None:
        tensors = safetensors.torch.load(tensor_bytes)
        edit_tensors(tensors)
        tensor_bytes = safetensors.torch.save(tensors)
    return write(out, json.dumps(manifest).encode(), tensor_bytes)


def step(manifest, index):
    return manifest["estimator"]["steps"][index][1]


def refused(path, match):
    """load(path) raises a DetectorFileError naming the file, fast."""
    start = time.perf_counter()
    with pytest.raises(DetectorFileError, match=match) as info:
        load(path)
    assert os.fspath(path) in str(info.value)
    assert time.perf_counter() - start < 10
    return str(info.value)


def _rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -- item 1: memory and time bounds ---------------------------------------


def test_compressed_tensors_are_refused_before_decompression(saved, tmp_path):
    # A bomb: 64 MB of zeros deflate to ~64 KB; the real attack declared 4 GiB.
    _, tensor_bytes = parts(saved)
    bomb = tensor_bytes + b"\0" * (64 * 2**20)
    before = _rss_mb()
    path = write(tmp_path / "bomb.skacd", json.dumps(parts(saved)[0]).encode(), bomb,
                 tensor_method=zipfile.ZIP_DEFLATED)
    assert os.path.getsize(path) < 2**20
    refused(path, "tensors.safetensors is compressed .* "
                  "refused before it is decompressed")
    assert _rss_mb() - before < 200


def test_safetensors_header_declaring_more_than_it_holds(saved, tmp_path):
    header = json.dumps({"x": {"dtype": "F32", "shape": [2**30],
                               "data_offsets": [0, 2**32]}}).encode()
    blob = struct.pack("<Q", len(header)) + header + b"\0" * 16
    path = write(tmp_path / "liar.skacd", json.dumps(parts(saved)[0]).encode(), blob)
    refused(path, r"declares 4294967296 bytes of tensors but holds 16")


def test_safetensors_header_with_a_repeated_key(saved, tmp_path):
    entry = '{"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}'
    header = f'{{"a": {entry}, "a": {entry}}}'.encode()
    blob = struct.pack("<Q", len(header)) + header + b"\0" * 4
    path = write(tmp_path / "dup.skacd", json.dumps(parts(saved)[0]).encode(), blob)
    refused(path, "duplicate key 'a'")


def test_string_array_dtype_is_not_trusted(saved, tmp_path):
    junk = {"__ndarray__": {"dtype": "<U999999", "shape": [2000], "data": ["a"] * 2000}}
    path = crafted(saved, tmp_path / "wide.skacd",
                   lambda m: step(m, 2)["fitted"].update(junk_=junk))
    before = _rss_mb()
    assert load(path)[-1].junk_.dtype == np.dtype("<U1")  # 8 KB, not 8 GB
    assert _rss_mb() - before < 200
    long = {"__ndarray__": {"dtype": "object", "shape": [1], "data": ["x" * 5000]}}
    path = crafted(saved, tmp_path / "long.skacd",
                   lambda m: step(m, 2)["fitted"].update(junk_=long))
    refused(path, r"string array AttributionClassifier.junk_ .* 4096 characters")
    shape = {"__ndarray__": {"dtype": "<U1", "shape": [10**12, 0], "data": []}}
    path = crafted(saved, tmp_path / "shape.skacd",
                   lambda m: step(m, 2)["fitted"].update(junk_=shape))
    refused(path, "malformed array shape")


@pytest.mark.parametrize("layers", [[1] * 100_000, [10**9]])
def test_module_config_sizes_are_bounded(saved, tmp_path, layers):
    def edit(m):
        step(m, 2)["fitted"]["module_config_"]["hidden_layer_sizes"] = layers

    path = crafted(saved, tmp_path / "deep.skacd", edit)
    refused(path, r"cannot rebuild AttributionClassifier.module_: "
                  r".*'hidden_layer_sizes'"
                  r".* out of bounds \(at most 64 entries, sizes 0 to 1048576\)")


@pytest.mark.parametrize("depth", [40, 500, 5000])
def test_nesting_depth_is_bounded(saved, tmp_path, depth):
    manifest, tensor_bytes = parts(saved)
    step(manifest, 2)["fitted"]["junk_"] = "JUNK"
    text = json.dumps(manifest).replace('"JUNK"', "[" * depth + "]" * depth)
    path = write(tmp_path / "nested.skacd", text.encode(), tensor_bytes)
    refused(path, "nested (more than 32 levels deep|too deeply)")


def test_estimator_nesting_depth_is_bounded(saved, tmp_path):
    manifest, tensor_bytes = parts(saved)
    node = {"class": "skacd.BlockSelector", "params": {}}
    for _ in range(40):
        node = {"class": "skacd.ConformalThresholdClassifier",
                "params": {"estimator": {"__estimator__": node}}}
    manifest["estimator"] = node
    path = write(tmp_path / "russian.skacd", json.dumps(manifest).encode(),
                 tensor_bytes)
    refused(path, "more than 32 levels deep")


# -- item 2: every failure is a DetectorFileError ------------------------


def _patch_central(path, out, offset, value):
    data = bytearray(open(path, "rb").read())
    at = data.index(b"PK\x01\x02")  # the manifest's central directory entry
    data[at + offset : at + offset + 2] = struct.pack("<H", value)
    open(out, "wb").write(bytes(data))
    return out


def test_damaged_zip_members_are_detector_file_errors(saved, tmp_path):
    manifest_bytes = json.dumps(parts(saved)[0]).encode()
    path = write(tmp_path / "ok.skacd", manifest_bytes, parts(saved)[1])
    refused(_patch_central(path, tmp_path / "enc.skacd", 8, 1), "damaged .*encrypted")
    refused(_patch_central(path, tmp_path / "m99.skacd", 10, 99),
            "damaged .*NotImplementedError")
    data = bytearray(open(path, "rb").read())
    start = data.index(b"manifest.json") + len("manifest.json") + 40
    data[start] ^= 0xFF  # one flipped byte inside the deflated manifest
    (tmp_path / "flip.skacd").write_bytes(bytes(data))
    refused(tmp_path / "flip.skacd", "damaged")


def test_repeated_zip_members_are_refused(saved, tmp_path):
    manifest, tensor_bytes = parts(saved)
    path = write(tmp_path / "two.skacd", json.dumps(manifest).encode(), tensor_bytes,
                 extra=[("manifest.json", b"{}")])
    refused(path, "holds manifest.json more than once")


@pytest.mark.parametrize("edit, match", [
    (lambda m: m.update(format_version=2, created_with="x"),
     "format version 2 .*a newer skacd"),
    (lambda m: step(m, 2)["fitted"].update(classes_=[1]),
     "between 2 and 65536 classes"),
    (lambda m: step(m, 2)["fitted"].update(classes_=[0, {"__float__": "nan"}]),
     "classes_ holds NaN"),
    (lambda m: step(m, 2)["fitted"].update(classes_=[0, 0]), "distinct"),
    (lambda m: step(m, 2).pop("modules"), r"AttributionClassifier.module_ is missing"),
    (lambda m: step(m, 1)["fitted"].update(device_="/etc/passwd"),
     r"device_='/etc/passwd' is not a device"),
    (lambda m: step(m, 0)["params"].update(device="/etc/passwd"),
     r"device='/etc/passwd' is not a device"),
])
def test_crafted_values_are_detector_file_errors(saved, tmp_path, edit, match):
    refused(crafted(saved, tmp_path / "crafted.skacd", edit), match)


def test_a_fifo_is_not_read_as_a_detector(tmp_path):
    os.mkfifo(tmp_path / "det.skacd")
    refused(tmp_path / "det.skacd", r"is not a regular file \(a FIFO\)")


# -- item 3: no NaN weights -------------------------------------------------


@pytest.mark.parametrize("key, value", [
    ("steps.2.module_.mlp.0.weight", float("nan")),
    ("steps.1.module_.standardize.scale", float("inf")),
    ("steps.2.module_.mlp.0.weight", 3e38),
])
def test_non_finite_or_huge_weights_are_refused(saved, tmp_path, key, value):
    def edit(tensors):
        tensors[key] = tensors[key].clone()
        tensors[key].view(-1)[0] = value

    path = crafted(saved, tmp_path / "nan.skacd", edit_tensors=edit)
    refused(path, rf"the stored tensor '{key}' holds "
                  r"(NaN or infinite|a value of magni)")


# -- item 4: settings a file must not carry ---------------------------------


@pytest.mark.parametrize("name, value", [
    ("cache", "/any/dir"), ("cache_dir", "/tmp/x"),
])
def test_machine_local_settings_in_a_file_are_refused(saved, tmp_path, name, value):
    path = crafted(saved, tmp_path / "local.skacd",
                   lambda m: step(m, 0)["params"].update({name: value}))
    refused(path, rf"CLIPFeaturizer.{name}='{value}': "
                  rf"a detector file cannot set {name}")


def test_pipeline_memory_in_a_file_is_refused(saved, tmp_path):
    path = crafted(saved, tmp_path / "mem.skacd",
                   lambda m: m["estimator"]["params"].update(memory="/tmp/joblib"))
    refused(path, "Pipeline.memory='/tmp/joblib': a detector file cannot set memory")


def test_num_workers_from_a_file_is_reset(saved, tmp_path):
    path = crafted(saved, tmp_path / "workers.skacd",
                   lambda m: step(m, 0)["params"].update(num_workers=24))
    assert load(path)[0].num_workers == "auto"
    assert load(saved)[0].num_workers == 0  # a harmless value is kept


def test_weights_file_is_checked_by_size_and_hash(saved, tmp_path):
    weights = tmp_path / "w.bin"
    weights.write_bytes(b"a" * 1000)
    from skacd.io import _file_sha256

    def edit(m):
        m["encoder"].update(pretrained=os.fspath(weights), weights_file_size=1000,
                            weights_file_sha256=_file_sha256(weights))
        step(m, 0)["params"]["pretrained"] = os.fspath(weights)

    path = crafted(saved, tmp_path / "weights.skacd", edit)
    weights.write_bytes(b"b" * 1000)  # swapped, same size
    refused(path, r"w.bin.* has changed since the detector was saved \(SHA-256")
    weights.write_bytes(b"b" * 999)
    refused(path, r"w.bin.* is 999 bytes; the detector was saved with 1000")


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def test_a_pickled_weights_file_is_a_value_error_and_never_runs(tmp_path):
    marker = os.fspath(tmp_path / "PWNED")
    torch.save({"x": _Payload(marker)}, tmp_path / "evil.pt")
    featurizer = CLIPFeaturizer("skacd-tiny-ViT",
                                pretrained=os.fspath(tmp_path / "evil.pt"),
                                device="cpu", num_workers=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError,
                           match=r"evil.pt' holds Python objects other than "
                                 "weights, which skacd never unpickles"):
            featurizer.fit_transform([np.zeros((32, 32, 3), np.uint8)])
    assert not os.path.exists(marker)
