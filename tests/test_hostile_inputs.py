"""skacd predict on hostile images, folders and outputs (issue 13, items 3, 5, 9).

Every hostile input is made here: links to /dev/zero, FIFOs, a link to /,
weights that overflow to NaN, file names that are spreadsheet formulas.
"""

import csv
import io
import json
import os
import resource
import stat
import struct
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import safetensors.torch
from PIL import Image

import skacd.featurizers
from skacd.cli import main
from skacd.exceptions import ImageLoadError
from skacd.featurizers._images import read_bytes

TINY = "clip:skacd-tiny-ViT:none"
FIT_FAST = ["--detector", "attribution", "--encoder", TINY, "--max-epochs", "3",
            "--cv", "2", "--num-workers", "0", "--quiet"]


def write_images(folder, n, seed):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        path = folder / f"{i:03d}.png"
        Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def detector(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile_cli")
    write_images(root / "train" / "0_real", 8, 0)
    write_images(root / "train" / "1_fake", 8, 1)
    path = root / "detector.skacd"
    assert main(["fit", "--data", str(root / "train"), *FIT_FAST, "-o", str(path)]) == 0
    return path


def predict(*args):
    return main(["predict", *map(str, args), "--quiet", "--num-workers", "0"])


def rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


# -- item 3: a NaN score is an error for that image, never a label ------------


@pytest.fixture(scope="module")
def overflowing(detector, tmp_path_factory):
    """Finite weights (|w| <= 1e29) whose products overflow: inf - inf = NaN."""
    with zipfile.ZipFile(detector) as zf:
        manifest = zf.read("manifest.json")
        tensors = safetensors.torch.load(zf.read("tensors.safetensors"))
    first = [k for k in tensors if k.endswith("module_.mlp.0.weight")][-1]
    second = first.replace("mlp.0.weight", "mlp.2.weight")
    w = tensors[first]
    w[: len(w) // 2] = 1e29
    w[len(w) // 2 :] = -1e29
    tensors[second][:] = 1e29
    tensors[second][0, ::2] = -1e29
    out = tmp_path_factory.mktemp("nan") / "overflow.skacd"
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr("manifest.json", manifest)
        zf.writestr("tensors.safetensors", safetensors.torch.save(tensors))
    return out


def test_non_finite_scores_are_errors_not_labels(overflowing, tmp_path, capsys):
    folder = tmp_path / "imgs"
    write_images(folder, 3, 5)
    out = tmp_path / "p.csv"
    assert predict(overflowing, folder, "-o", out) == 1
    err = capsys.readouterr().err
    assert "the detector gave a non-finite score" in err and "000.png" in err
    assert not out.exists()
    assert predict(overflowing, folder, "-o", out, "--skip-errors") == 0
    result = rows(out)
    assert [r["error"] for r in result] == ["the detector gave a non-finite score"] * 3
    assert all(r["label"] == "" and r["prob_fake"] == "" for r in result)
    assert "0 images scored" in capsys.readouterr().err


# -- item 5: image paths that never finish ----------------------------------


def _rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def test_read_bytes_refuses_devices_fifos_and_big_files(tmp_path, monkeypatch):
    os.symlink("/dev/zero", tmp_path / "zero.jpg")
    os.mkfifo(tmp_path / "pipe.jpg")
    before, start = _rss_mb(), time.perf_counter()
    with pytest.raises(ImageLoadError,
                       match="is a character device, not a regular file"):
        read_bytes(tmp_path / "zero.jpg")
    with pytest.raises(ImageLoadError, match="is a FIFO, not a regular file"):
        read_bytes(tmp_path / "pipe.jpg")
    assert time.perf_counter() - start < 5 and _rss_mb() - before < 100
    big = tmp_path / "big.png"
    big.write_bytes(b"\0" * 5000)
    monkeypatch.setattr(skacd.featurizers, "MAX_IMAGE_FILE_BYTES", 4096)
    with pytest.raises(ImageLoadError, match=(
        r"over the 4096-byte limit \(skacd.featurizers.MAX_IMAGE_FILE_BYTES; raise it "
        r"if you trust the file\): 5000 bytes"
    )):
        read_bytes(big)


def test_predict_does_not_follow_links_out_of_the_folder(detector, tmp_path, capsys):
    folder = tmp_path / "imgs"
    write_images(folder, 2, 3)
    os.symlink("/dev/zero", folder / "x.jpg")
    os.symlink("/", folder / "root")
    os.mkfifo(folder / "p.jpg")
    out = tmp_path / "p.csv"
    start = time.perf_counter()
    assert predict(detector, folder, "-o", out, "--skip-errors") == 0
    assert time.perf_counter() - start < 30
    by_path = {Path(r["path"]).name: r for r in rows(out)}
    assert set(by_path) == {"000.png", "001.png", "x.jpg", "root", "p.jpg"}
    assert ("outside" in by_path["x.jpg"]["error"]
            and "not followed" in by_path["x.jpg"]["error"])
    assert "a symbolic link to '/'" in by_path["root"]["error"]
    assert "is a FIFO, not a regular file" in by_path["p.jpg"]["error"]
    assert by_path["000.png"]["label"] in ("real", "fake")
    # Without --skip-errors the run stops at once, naming the link.
    assert predict(detector, folder, "-o", out) == 1
    assert "not followed; use --skip-errors" in capsys.readouterr().err


def test_a_folder_of_only_bad_files_is_all_rows_of_errors(detector, tmp_path, capsys):
    folder = tmp_path / "imgs"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(b"not an image")
    out = tmp_path / "p.csv"
    assert predict(detector, folder, "-o", out, "--skip-errors") == 0
    assert [r["error"][:27] for r in rows(out)] == ["not a recognised image form"]
    assert "0 images scored" in capsys.readouterr().err


def test_links_inside_the_folder_are_read(detector, tmp_path):
    folder = tmp_path / "imgs"
    (real,) = write_images(folder / "a", 1, 4)
    os.symlink(real, folder / "link.png")
    out = tmp_path / "p.csv"
    assert predict(detector, folder, "-o", out) == 0
    assert [r["error"] for r in rows(out)] == ["", ""]


# -- item 9: output hazards ---------------------------------------------------


@pytest.mark.parametrize("which", ["detector", "image"])
def test_output_may_not_replace_an_input(detector, tmp_path, capsys, which):
    folder = tmp_path / "imgs"
    (image,) = write_images(folder, 1, 6)
    target = detector if which == "detector" else image
    before = target.read_bytes()
    assert predict(detector, folder, "-o", target, "--format", "csv") == 2
    assert "it is one of the inputs" in capsys.readouterr().err
    assert target.read_bytes() == before


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes to read-only folders")
def test_read_only_output_folder_is_refused_before_featurizing(
        detector, tmp_path, capsys):
    folder = tmp_path / "imgs"
    write_images(folder, 1, 7)
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        assert predict(detector, folder, "-o", locked / "p.csv") == 2
    finally:
        locked.chmod(stat.S_IRWXU)
    assert "is not writable" in capsys.readouterr().err


def test_csv_cells_cannot_be_formulas_and_stderr_names_are_quoted(
        detector, tmp_path, capsys, monkeypatch):
    folder = tmp_path / "imgs"
    write_images(folder, 1, 8)
    (folder / "=HYPERLINK(1).png").write_bytes(b"not an image")
    (folder / "bad\nskacd predict: 9 images scored.png").write_bytes(b"x")
    out = tmp_path / "p.csv"
    monkeypatch.chdir(folder)
    assert predict(detector, "=HYPERLINK(1).png", folder, "-o", out,
                   "--skip-errors") == 0
    paths = [r["path"] for r in rows(out)]
    assert paths[0] == "'=HYPERLINK(1).png"
    assert not any(p.startswith("=") for p in paths)
    err = capsys.readouterr().err
    assert "\\nskacd predict: 9 images scored" in err  # quoted, one line
    assert not any(line.startswith("skacd predict: 9 images")
                   for line in err.splitlines())
    jsonl = tmp_path / "p.jsonl"
    assert predict(detector, folder, "-o", jsonl, "--skip-errors") == 0
    names = [json.loads(line)["path"] for line in jsonl.read_text().splitlines()]
    assert any(Path(n).name == "=HYPERLINK(1).png" for n in names)  # JSON: unchanged


# -- item 7: corrupt images and formats outside the allow-list ---------------


def _exif_with_a_tag_past_the_end():
    """A JPEG whose EXIF tag points past the end: Pillow warns and decodes."""
    ifd = (b"II*\x00" + struct.pack("<IH", 8, 1)
           + struct.pack("<HHII", 0x010E, 2, 100, 1000) + struct.pack("<I", 0))
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(
        buffer, format="JPEG", exif=b"Exif\x00\x00" + ifd)
    return buffer.getvalue()


@pytest.mark.parametrize("fmt", ["PCX", "TGA", "SGI", "ICO", "IM", "EPS"])
def test_formats_outside_the_allow_list_are_refused(tmp_path, fmt):
    from skacd.featurizers import load_image

    path = tmp_path / "disguised.jpg"
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(buffer, format=fmt)
    path.write_bytes(buffer.getvalue())
    with pytest.raises(ImageLoadError, match=(
        r"disguised.jpg': not a recognised image format \(skacd reads JPEG, PNG, BMP, "
        r"WEBP, GIF, TIFF files, whatever their extension\)"
    )):
        load_image(path)


def test_a_file_pillow_warns_about_is_never_scored(detector, tmp_path, capsys):
    folder = tmp_path / "imgs"
    write_images(folder, 1, 9)
    (folder / "warned.jpg").write_bytes(_exif_with_a_tag_past_the_end())
    out = tmp_path / "p.csv"
    assert predict(detector, folder, "-o", out) == 1
    err = capsys.readouterr().err
    assert "warned.jpg': corrupt image (Pillow warned: Tag data larger than file" in err
    assert predict(detector, folder, "-o", out, "--skip-errors") == 0
    by_name = {Path(r["path"]).name: r for r in rows(out)}
    assert by_name["warned.jpg"]["label"] == ""
    assert by_name["warned.jpg"]["error"].startswith(
        "corrupt image (Pillow warned: Tag")
    assert "skacd: warning:" not in capsys.readouterr().err  # attached to the row


# -- item 6: decode cost --------------------------------------------------------


def _jpeg_claiming(width, height):
    """An 8x8 JPEG (~600 bytes) whose frame header claims ``width x height``."""
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(buffer, format="JPEG")
    data = bytearray(buffer.getvalue())
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def test_pixel_limit_is_checked_from_the_header(tmp_path, monkeypatch):
    from skacd.featurizers import load_image

    path = tmp_path / "claims.jpg"
    path.write_bytes(_jpeg_claiming(9400, 9400))
    assert path.stat().st_size < 1000
    start = time.perf_counter()
    with pytest.raises(ImageLoadError, match=(
        r"claims.jpg': the image is 9400x9400 pixels, over skacd's limit of 64000000 "
        r"pixels \(skacd.featurizers.MAX_IMAGE_PIXELS; raise it if you trust the file\)"
    )):
        load_image(path)
    assert time.perf_counter() - start < 1
    monkeypatch.setattr(skacd.featurizers, "MAX_IMAGE_PIXELS", 63)
    small = tmp_path / "small.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(small)
    with pytest.raises(ImageLoadError, match="8x8 pixels, over skacd's limit of 63"):
        load_image(small)


def test_16_bit_images_convert_exactly_and_cheaply(tmp_path):
    from skacd.featurizers import load_image

    rng = np.random.default_rng(0)
    values = rng.integers(0, 65536, (64, 64), dtype=np.uint16)
    values[0, :3] = [0, 65535, 32896]
    path = tmp_path / "deep.png"
    Image.fromarray(values).save(path)
    got = np.asarray(load_image(path))
    expected = np.floor(values / 65535 * 255 + 0.5).astype(np.uint8)
    np.testing.assert_array_equal(got[..., 0], expected)
    assert got[0, :3, 0].tolist() == [0, 255, 128]
    # 4096x4096 16-bit (34 MB of pixels): no float64 copy of it.
    big = tmp_path / "big.png"
    Image.fromarray(np.full((4096, 4096), 40000, np.uint16)).save(big)
    before, start = _rss_mb(), time.perf_counter()
    assert load_image(big).getpixel((7, 7)) == (156, 156, 156)
    assert time.perf_counter() - start < 5
    assert _rss_mb() - before < 400


# -- item 10: the encoder cache is sized by memory, and reloads are said ------


def test_encoder_cache_keeps_three_encoders_and_reports_reloads(monkeypatch, capsys):
    from collections import OrderedDict

    from skacd import CLIPFeaturizer
    from skacd.featurizers import _encoder

    monkeypatch.setattr(_encoder, "_ENCODER_CACHE", OrderedDict())
    monkeypatch.setattr(_encoder, "_EVICTED", set())
    X = [np.zeros((32, 32, 3), np.uint8)]
    featurizers = [
        CLIPFeaturizer("skacd-tiny-ViT", pretrained=None, device="cpu", num_workers=0,
                       precision=p, verbose=1)
        for p in ("float32", "int8", "bfloat16")
    ]
    for _ in range(2):
        for f in featurizers:
            f.fit_transform(X)
    # The old fixed size of 2 reloaded each time.
    assert len(_encoder._ENCODER_CACHE) == 3
    assert "reloading the encoder" not in capsys.readouterr().err
    assert all(e.nbytes > 0 for e in _encoder._ENCODER_CACHE.values())
    smallest = min(e.nbytes for e in _encoder._ENCODER_CACHE.values())
    monkeypatch.setattr(skacd.featurizers, "ENCODER_CACHE_BYTES", smallest)
    for f in featurizers:
        f.transform(X)
    assert len(_encoder._ENCODER_CACHE) == 1  # the one in use is always kept
    featurizers[0].transform(X)
    err = capsys.readouterr().err
    assert "[CLIPFeaturizer] reloading the encoder" in err
    assert f"ENCODER_CACHE_BYTES={smallest}" in err
