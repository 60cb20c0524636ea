import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from skacd.datasets import load_image_folder

REPO = Path(__file__).resolve().parents[1]


def _data_dir():
    return Path(os.environ.get("SKACD_DATA", REPO.parent / "shared" / "data"))


def _write(folder, names):
    """Write tiny images (PNG or JPEG by extension) or text files into folder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        suffix = path.suffix.lower()
        if suffix in (".png", ".jpg", ".jpeg"):
            fmt = "PNG" if suffix == ".png" else "JPEG"
            Image.new("RGB", (4, 4), (10, 20, 30)).save(path, format=fmt)
        else:
            path.write_text("not an image")
    return folder


def _rel(paths, root):
    return [Path(p).relative_to(root).as_posix() for p in paths]


@pytest.fixture
def forensynths(tmp_path):
    root = tmp_path / "forensynths"
    _write(root / "stargan" / "0_real", ["b.png", "a.JPG"])
    _write(root / "stargan" / "1_fake", ["c.jpeg"])
    _write(root / "cyclegan" / "0_real", ["x.png"])
    _write(root / "cyclegan" / "1_fake", ["y.png", "sub/z.PNG"])
    (root / "README.md").write_text("plain files beside the groups are skipped")
    return root


def test_forensynths_layout(forensynths):
    data = load_image_folder(forensynths)
    assert data.layout == "forensynths"
    assert data.target_names == ["real", "fake"]
    # groups sorted, real before fake, files sorted (recursively) inside each
    assert _rel(data.paths, forensynths) == [
        "cyclegan/0_real/x.png",
        "cyclegan/1_fake/sub/z.PNG",
        "cyclegan/1_fake/y.png",
        "stargan/0_real/a.JPG",
        "stargan/0_real/b.png",
        "stargan/1_fake/c.jpeg",
    ]
    assert data.target.tolist() == [0, 1, 1, 0, 0, 1]
    assert np.issubdtype(data.target.dtype, np.integer)
    assert data.groups.tolist() == ["cyclegan"] * 3 + ["stargan"] * 3
    assert data.groups.dtype.kind == "U"
    assert all(isinstance(p, str) for p in data.paths)
    assert "split" not in data


def test_explicit_layout_matches_auto(forensynths):
    auto = load_image_folder(forensynths)
    forced = load_image_folder(str(forensynths), layout="forensynths")
    assert auto.paths == forced.paths
    assert auto.groups.tolist() == forced.groups.tolist()


def test_root_is_the_group(forensynths):
    data = load_image_folder(forensynths / "stargan")
    assert set(data.groups) == {"stargan"}
    assert data.target.tolist() == [0, 0, 1]


def test_nested_object_classes_are_pooled(tmp_path):
    root = tmp_path / "cnn_synth"
    _write(root / "stylegan" / "bedroom" / "0_real", ["a.png"])
    _write(root / "stylegan" / "bedroom" / "1_fake", ["b.png"])
    _write(root / "stylegan" / "car" / "0_real", ["c.png"])
    _write(root / "stylegan" / "car" / "1_fake", ["d.png"])
    _write(root / "biggan" / "0_real", ["e.png"])
    _write(root / "biggan" / "1_fake", ["f.png"])
    data = load_image_folder(root)
    assert data.layout == "forensynths"
    assert data.groups.tolist() == ["biggan"] * 2 + ["stylegan"] * 4
    assert _rel(data.paths, root)[2:] == [
        "stylegan/bedroom/0_real/a.png",
        "stylegan/car/0_real/c.png",
        "stylegan/bedroom/1_fake/b.png",
        "stylegan/car/1_fake/d.png",
    ]
    assert data.target.tolist() == [0, 1, 0, 0, 1, 1]
    # one level down, the object classes become the groups
    progan = load_image_folder(root / "stylegan")
    assert sorted(set(progan.groups)) == ["bedroom", "car"]


def test_genimage_layout_and_split(tmp_path):
    root = tmp_path / "genimage"
    for gen in ["adm", "midjourney"]:
        _write(root / gen / "train" / "nature", ["n1.png", "n2.png"])
        _write(root / gen / "train" / "ai", ["a1.png"])
        _write(root / gen / "val" / "nature", ["n3.jpg"])
        _write(root / gen / "val" / "ai", ["a2.png", "a3.png"])
    data = load_image_folder(root)
    assert data.layout == "genimage"
    assert data.groups.tolist() == ["adm"] * 6 + ["midjourney"] * 6
    assert data.target.tolist()[:6] == [0, 0, 0, 1, 1, 1]
    assert data.split.tolist()[:6] == ["train", "train", "val", "train", "val", "val"]
    val = load_image_folder(root, layout="genimage", split="val")
    assert set(val.split) == {"val"}
    assert val.target.tolist() == [0, 1, 1, 0, 1, 1]
    assert all("/val/" in Path(p).as_posix() for p in val.paths)
    one = load_image_folder(root / "adm", split="train")
    assert set(one.groups) == {"adm"} and len(one.paths) == 3


def test_genimage_wrapped_generator_folders(tmp_path):
    root = tmp_path / "GenImage"
    inner = root / "BigGAN" / "imagenet_ai_0419_biggan"
    _write(inner / "train" / "nature", ["n.png"])
    _write(inner / "train" / "ai", ["a.png"])
    _write(inner / "val" / "nature", ["m.png"])
    _write(inner / "val" / "ai", ["b.png"])
    data = load_image_folder(root, split="val")
    assert data.layout == "genimage"
    assert set(data.groups) == {"BigGAN"}
    assert _rel(data.paths, root) == [
        "BigGAN/imagenet_ai_0419_biggan/val/nature/m.png",
        "BigGAN/imagenet_ai_0419_biggan/val/ai/b.png",
    ]


def test_stray_folder_beside_groups_raises(forensynths):
    stray = forensynths / "logs"
    _write(stray, ["run.txt"])
    with pytest.raises(ValueError, match="unexpected") as excinfo:
        load_image_folder(forensynths)
    assert str(stray) in str(excinfo.value)
    data = load_image_folder(forensynths, on_other_files="ignore")
    assert sorted(set(data.groups)) == ["cyclegan", "stargan"]


def test_genimage_missing_split_raises(tmp_path):
    root = tmp_path / "genimage"
    _write(root / "adm" / "train" / "nature", ["n.png"])
    _write(root / "adm" / "train" / "ai", ["a.png"])
    with pytest.raises(ValueError, match="(?s)hold no 'val' split.*adm"):
        load_image_folder(root, split="val")


def test_split_with_other_layout_raises(forensynths):
    with pytest.raises(ValueError, match="genimage"):
        load_image_folder(forensynths, split="train")
    with pytest.raises(ValueError, match="genimage"):
        load_image_folder(forensynths, layout="forensynths", split="train")


def test_real_fake_layout(tmp_path):
    root = tmp_path / "mydata"
    _write(root / "real", ["r1.png", "r2.jpg"])
    _write(root / "fake", ["f1.png"])
    data = load_image_folder(root)
    assert data.layout == "real_fake"
    assert data.groups.tolist() == ["mydata"] * 3
    assert data.target.tolist() == [0, 0, 1]
    assert _rel(data.paths, root) == ["real/r1.png", "real/r2.jpg", "fake/f1.png"]


def test_list_of_roots_keeps_group_names_unambiguous(tmp_path):
    a = _write(tmp_path / "setA" / "train" / "0_real", ["a.png"]).parents[1]
    _write(a / "train" / "1_fake", ["b.png"])
    b = _write(tmp_path / "setB" / "train" / "0_real", ["c.png"]).parents[1]
    _write(b / "train" / "1_fake", ["d.png"])
    data = load_image_folder([a, b])
    assert data.groups.tolist() == ["setA/train"] * 2 + ["setB/train"] * 2
    assert data.target.tolist() == [0, 1, 0, 1]
    # roots that are groups themselves: named relative to their common parent
    pair = load_image_folder([a / "train", str(b / "train")])
    assert pair.groups.tolist() == ["setA/train"] * 2 + ["setB/train"] * 2
    _write(a / "val" / "0_real", ["e.png"])
    _write(a / "val" / "1_fake", ["f.png"])
    siblings = load_image_folder((a / "val", a / "train"))
    assert siblings.groups.tolist() == ["val"] * 2 + ["train"] * 2  # root order


def test_list_of_roots_with_different_layouts(tmp_path, forensynths):
    other = tmp_path / "mine"
    _write(other / "real", ["r.png"])
    _write(other / "fake", ["f.png"])
    data = load_image_folder([forensynths, other])
    assert data.layout == ["forensynths", "real_fake"]
    assert sorted(set(data.groups)) == [
        "forensynths/cyclegan", "forensynths/stargan", "mine"]


def test_overlapping_roots_raise(forensynths):
    with pytest.raises(ValueError, match="more than once"):
        load_image_folder([forensynths, forensynths / "stargan"])


def test_missing_root_raises(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError, match="nowhere"):
        load_image_folder(missing)
    afile = tmp_path / "file.png"
    _write(tmp_path, ["file.png"])
    with pytest.raises(FileNotFoundError, match="not a folder"):
        load_image_folder(afile)


def test_unknown_layout_raises(tmp_path):
    _write(tmp_path / "root" / "cats", ["a.png"])
    with pytest.raises(ValueError, match="Cannot detect.*root"):
        load_image_folder(tmp_path / "root")


def test_forced_layout_not_followed_raises(forensynths):
    with pytest.raises(ValueError, match="does not follow the 'genimage' layout"):
        load_image_folder(forensynths, layout="genimage")


def test_invalid_layout_name_raises(forensynths):
    with pytest.raises(ValueError, match="'layout' parameter of load_image_folder"):
        load_image_folder(forensynths, layout="imagenet")


def test_empty_class_folder_raises(forensynths):
    empty = forensynths / "stargan" / "1_fake"
    for p in empty.iterdir():
        p.unlink()
    (empty / ".DS_Store").write_text("hidden")  # hidden files do not count
    with pytest.raises(ValueError, match="hold no image") as excinfo:
        load_image_folder(forensynths)
    assert str(empty) in str(excinfo.value)


def test_non_image_file_raises_or_is_ignored(forensynths):
    bad = forensynths / "cyclegan" / "0_real" / "notes.txt"
    bad.write_text("x")
    with pytest.raises(ValueError, match="non-image") as excinfo:
        load_image_folder(forensynths)
    assert str(bad) in str(excinfo.value)
    data = load_image_folder(forensynths, on_other_files="ignore")
    assert len(data.paths) == 6
    assert not any(p.endswith(".txt") for p in data.paths)


def test_unexpected_folder_in_group_raises(forensynths):
    stray = _write(forensynths / "stargan" / "2_other", ["q.png"])
    with pytest.raises(ValueError, match="unexpected") as excinfo:
        load_image_folder(forensynths)
    assert str(stray) in str(excinfo.value)
    data = load_image_folder(forensynths, on_other_files="ignore")
    assert not any("2_other" in p for p in data.paths)


def test_hidden_files_are_skipped(forensynths):
    (forensynths / "stargan" / "0_real" / ".DS_Store").write_text("x")
    (forensynths / "stargan" / "0_real" / "Thumbs.db").write_text("x")
    _write(forensynths / "stargan" / "0_real" / ".hidden", ["h.png"])
    data = load_image_folder(forensynths)
    assert len(data.paths) == 6


def test_order_is_deterministic(tmp_path):
    root = tmp_path / "r"
    names = [f"{i}.png" for i in [10, 2, 1, 33, 4]]
    _write(root / "0_real", names)
    _write(root / "1_fake", names[::-1])
    first = load_image_folder(root).paths
    assert first == load_image_folder(root).paths
    assert _rel(first, root)[:5] == [
        "0_real/1.png", "0_real/10.png", "0_real/2.png", "0_real/33.png",
        "0_real/4.png"]


@pytest.mark.data
def test_shared_data_folder():
    data_dir = _data_dir()
    if not (data_dir / "sd-coco").is_dir() or not (data_dir / "forensynths").is_dir():
        pytest.skip(f"{data_dir} (shared evaluation images) is absent")
    train = load_image_folder(data_dir / "sd-coco" / "train")
    assert set(train.groups) == {"train"}
    assert train.layout == "forensynths"
    assert set(np.unique(train.target)) == {0, 1}
    both = load_image_folder([data_dir / "sd-coco", data_dir / "forensynths"])
    expected = {"sd-coco/train", "sd-coco/val"} | {
        f"forensynths/{g}" for g in ["cyclegan", "stargan", "gaugan", "deepfake"]}
    assert set(both.groups) == expected
    for g in expected:  # both classes in every group
        assert set(both.target[both.groups == g]) == {0, 1}
    assert all(os.path.isfile(p) for p in both.paths[:: max(1, len(both.paths) // 20)])


def test_symlinks_out_of_the_root_are_an_error_unless_followed(tmp_path):
    from PIL import Image

    root, elsewhere = tmp_path / "data", tmp_path / "elsewhere"
    for cls in ("0_real", "1_fake"):
        (root / "g" / cls).mkdir(parents=True)
        Image.new("RGB", (8, 8)).save(root / "g" / cls / "a.png")
    (root / "g" / "0_real" / "sub").mkdir()
    Image.new("RGB", (8, 8)).save(root / "g" / "0_real" / "sub" / "b.png")
    (root / "g" / "1_fake" / "inside").symlink_to(root / "g" / "0_real" / "sub")
    assert len(load_image_folder(root).paths) == 4  # links inside the root: followed
    elsewhere.mkdir()
    Image.new("RGB", (8, 8)).save(elsewhere / "c.png")
    (root / "g" / "0_real" / "out").symlink_to(elsewhere)
    (root / "g" / "0_real" / "slash").symlink_to("/")
    with pytest.raises(ValueError, match="follow_symlinks=True") as info:
        load_image_folder(root)
    assert "slash -> /" in str(info.value) and "out -> " in str(info.value)
    (root / "g" / "0_real" / "slash").unlink()
    assert len(load_image_folder(root, follow_symlinks=True).paths) == 5
