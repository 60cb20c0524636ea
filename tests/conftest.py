"""Shared fixtures: images the tests make, and the tiny random open_clip model."""

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("SKACD_DATA", REPO.parent / "shared" / "data"))


def smooth_image(rng, size=48):
    """A 'real' image: smooth colour gradients plus mild noise."""
    yy, xx = np.mgrid[0:size, 0:size] / size
    channels = []
    for _ in range(3):
        a, b, c = rng.uniform(-1, 1, 3)
        channels.append(128 + 100 * np.sin(3 * (a * xx + b * yy) + c))
    image = np.stack(channels, axis=-1) + rng.normal(0, 4, (size, size, 3))
    return np.clip(image, 0, 255).astype(np.uint8)


def patterned_image(rng, size=48):
    """A 'generated' image: a periodic high-frequency pattern over a base colour."""
    yy, xx = np.mgrid[0:size, 0:size]
    period = rng.integers(2, 5)
    checker = ((xx // period + yy // period) % 2) * 90
    base = rng.uniform(40, 160, 3)
    image = base + checker[..., None] + rng.normal(0, 4, (size, size, 3))
    return np.clip(image, 0, 255).astype(np.uint8)


def write_labelled_folder(root, n_per_class=8, seed=0, groups=("g0",), size=48):
    """Write ``<root>/<group>/{0_real,1_fake}/*.png``; return (paths, y, groups)."""
    rng = np.random.default_rng(seed)
    paths, labels, names = [], [], []
    for group in groups:
        for label, folder, make in (
            (0, "0_real", smooth_image),
            (1, "1_fake", patterned_image),
        ):
            directory = Path(root) / group / folder
            directory.mkdir(parents=True, exist_ok=True)
            for i in range(n_per_class):
                path = directory / f"{i:03d}.png"
                Image.fromarray(make(rng, size)).save(path)
                paths.append(str(path))
                labels.append(label)
                names.append(group)
    return paths, np.asarray(labels), np.asarray(names)


@pytest.fixture(scope="session")
def image_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("images")
    paths, y, groups = write_labelled_folder(root, n_per_class=10, groups=("g0", "g1"))
    return root, paths, y, groups


@pytest.fixture
def tiny_clip():
    from skacd import CLIPFeaturizer

    return CLIPFeaturizer(
        "skacd-tiny-ViT", pretrained=None, device="cpu", num_workers=0, batch_size=8
    )


def tiny_detector():
    """An unfitted tiny image detector: random tiny CLIP -> small attribution
    space -> small classifier (fits in about a second on made images)."""
    from sklearn.pipeline import make_pipeline

    from skacd import AttributionClassifier, AttributionSpace, CLIPFeaturizer

    return make_pipeline(
        CLIPFeaturizer("skacd-tiny-ViT", pretrained=None, device="cpu", num_workers=0),
        AttributionSpace(hidden_layer_sizes=(16,), latent_dim=4, max_epochs=3, cv=2,
                         random_state=0),
        AttributionClassifier(hidden_layer_sizes=(8,), max_epochs=3, random_state=0),
    )
