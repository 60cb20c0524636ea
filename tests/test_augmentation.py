"""Resize perturbations and training-time augmentation (skacd.augmentation)."""

import io

import numpy as np
import pytest
from PIL import Image
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline

from skacd import AttributionSpace, load, save
from skacd.augmentation import (
    Augment,
    CopyKFold,
    featurize_copies,
    fit_augmented,
    fit_copies,
    with_copy_folds,
)
from skacd.cache import FeatureCache
from skacd.featurizers import GaussianBlur, JPEGCompression, RandomCropResize, Resize
from skacd.fusion import make_fusion
from skacd.model_selection import CrossGeneratorSplit

from conftest import patterned_image, smooth_image


def noise_image(seed, size=(64, 48)):
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))


def jpeg_bytes(image, quality=95):
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return len(buffer.getvalue())


# -- perturbations -------------------------------------------------------------


@pytest.mark.parametrize(
    "factor, size", [(0.5, (32, 24)), (0.75, (48, 36)), (2, (128, 96))]
)
def test_resize_scales_each_side(factor, size):
    image = noise_image(0)
    out = Resize(factor)(image)
    assert out.size == size
    assert Resize(factor, restore=True)(image).size == image.size
    # down-then-up loses detail: not the original any more
    if factor < 1:
        restored = np.asarray(Resize(factor, restore=True)(image), dtype=float)
        assert np.abs(restored - np.asarray(image, dtype=float)).mean() > 10


def test_resize_filters_differ_and_factor_one_is_identity():
    image = noise_image(1)
    assert Resize(1.0)(image) is image
    a = np.asarray(Resize(0.5, resample="bicubic")(image))
    b = np.asarray(Resize(0.5, resample="nearest")(image))
    assert a.shape == b.shape and not np.array_equal(a, b)
    assert np.array_equal(a, np.asarray(Resize(0.5)(image)))  # deterministic


@pytest.mark.parametrize("bad", [0, -1, float("nan"), "0.5", True])
def test_resize_rejects_bad_factors(bad):
    with pytest.raises(ValueError, match="factor"):
        Resize(bad)


def test_resize_rejects_unknown_filter():
    with pytest.raises(ValueError, match="resample must be one of"):
        Resize(0.5, resample="magic")


def test_random_crop_resize_is_seeded_by_seed_and_image():
    image, other = noise_image(2), noise_image(3)
    crop = RandomCropResize(0.5, seed=0)
    out = crop(image)
    assert out.size == image.size
    assert np.array_equal(np.asarray(out), np.asarray(crop(image)))  # same seed
    fresh = RandomCropResize(0.5, seed=0)(image)
    assert np.array_equal(np.asarray(out), np.asarray(fresh))
    seeds = {
        np.asarray(RandomCropResize(0.5, seed=s)(image)).tobytes() for s in range(6)
    }
    assert len(seeds) > 1  # other seeds, other windows
    assert RandomCropResize(1.0)(image) is image
    assert not np.array_equal(np.asarray(crop(other)), np.asarray(out))
    with pytest.raises(ValueError, match="fraction"):
        RandomCropResize(1.5)


def test_perturbations_compose():
    image = noise_image(4, size=(96, 96))
    composed = GaussianBlur(1.0)(Resize(0.5)(RandomCropResize(0.75, seed=1)(image)))
    out = JPEGCompression(30)(composed)
    assert out.size == (48, 48) and out.mode == "RGB"
    # each step changed the image as stated: blur smooths, JPEG 30 is smaller than 95
    resized = Resize(0.5)(RandomCropResize(0.75, seed=1)(image))
    assert np.asarray(composed, float).std() < np.asarray(resized, float).std()
    assert jpeg_bytes(out, 95) < jpeg_bytes(resized, 95)


def test_detector_files_store_the_resize_transforms(tmp_path, tiny_clip):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(10, tiny_clip.fit().transform([noise_image(0)]).shape[1]))
    head = LogisticRegression().fit(X, [0, 1] * 5)
    for transform in (Resize(0.5, resample="lanczos", restore=True),
                      RandomCropResize(0.8, resample="bilinear", seed=3)):
        save(make_pipeline(tiny_clip.set_params(image_transform=transform), head),
             tmp_path / "d.skacd")
        assert load(tmp_path / "d.skacd")[0].image_transform == transform


# -- Augment -----------------------------------------------------------------------


def test_augment_is_deterministic_per_image_and_copy():
    image = noise_image(5)
    augment = Augment(jpeg_prob=1, blur_prob=1, resize_prob=1, crop_prob=1, seed=0)
    first = np.asarray(augment(image))
    assert np.array_equal(first, np.asarray(Augment(**augment.get_params())(image)))
    others = [np.asarray(augment.for_copy(k)(image)) for k in (2, 3, 4)]
    assert any(o.shape != first.shape or not np.array_equal(o, first) for o in others)
    reseeded = np.asarray(Augment(**dict(augment.get_params(), seed=1))(image))
    assert reseeded.shape != first.shape or not np.array_equal(reseeded, first)
    assert "copy=1" in repr(augment) and "copy=2" in repr(augment.for_copy(2))


def test_augment_steps_do_what_they_say():
    image = noise_image(6, size=(80, 60))
    none = Augment.from_string("none")
    assert none(image) is image
    half = Augment(jpeg_prob=0, blur_prob=0, resize_prob=1, resize_factor=(0.5, 0.5))
    assert half(image).size == (40, 30)
    ranged = Augment(jpeg_prob=0, blur_prob=0, resize_prob=1, resize_factor=(0.5, 0.9))
    for k in range(1, 6):
        width, height = ranged.for_copy(k)(image).size
        assert 40 <= width <= 72 and 30 <= height <= 54
    crop = Augment(jpeg_prob=0, blur_prob=0, resize_prob=0, crop_prob=1)
    assert crop(image).size == image.size
    assert not np.array_equal(np.asarray(crop(image)), np.asarray(image))
    jpeg = Augment(jpeg_prob=1, jpeg_quality=(10, 10), blur_prob=0, resize_prob=0)
    expected = JPEGCompression(10)(image)
    assert np.array_equal(np.asarray(jpeg(image)), np.asarray(expected))
    blur = Augment(jpeg_prob=0, blur_prob=1, blur_sigma=(2.0, 2.0), resize_prob=0)
    assert np.array_equal(np.asarray(blur(image)), np.asarray(GaussianBlur(2.0)(image)))


def test_augment_from_string_and_validation():
    augment = Augment.from_string("jpeg=1, blur=0,resize=0.25", seed=4)
    assert (augment.jpeg_prob, augment.blur_prob, augment.resize_prob) == (1, 0, 0.25)
    assert augment.crop_prob == 0 and augment.seed == 4
    assert Augment.from_string("") == Augment()
    with pytest.raises(ValueError, match="not name=probability"):
        Augment.from_string("sharpen=0.5")
    with pytest.raises(ValueError, match="not a number"):
        Augment.from_string("jpeg=often")
    with pytest.raises(ValueError, match="jpeg_prob"):
        Augment(jpeg_prob=2)
    with pytest.raises(ValueError, match="resize_factor"):
        Augment(resize_factor=(0.9, 0.5))
    with pytest.raises(ValueError, match="crop_fraction"):
        Augment(crop_fraction=(0.5, 1.5))


# -- CopyKFold and cross-fitting -------------------------------------------------


def image_of_rows(n_images, n_copies):
    return np.repeat(np.arange(n_images), n_copies + 1)


@pytest.mark.parametrize(
    "stratify, shuffle", [(False, False), (True, False), (True, True)]
)
def test_copy_kfold_keeps_an_images_copies_in_one_fold(stratify, shuffle):
    n_images, n_copies = 20, 2
    image = image_of_rows(n_images, n_copies)
    y = np.repeat(np.arange(n_images) % 2, n_copies + 1)
    X = np.zeros((image.size, 1))
    cv = CopyKFold(4, n_copies, stratify=stratify, shuffle=shuffle, random_state=0)
    seen = []
    for train, test in cv.split(X, y):
        assert not set(image[train]) & set(image[test])
        assert len(train) + len(test) == image.size
        seen += test.tolist()
        if stratify:
            assert y[test].mean() == pytest.approx(0.5, abs=0.2)
    assert sorted(seen) == list(range(image.size))
    # explicit groups give the same guarantee with rows in any order
    order = np.random.default_rng(0).permutation(image.size)
    for train, test in cv.split(X, y[order], groups=image[order]):
        assert not set(image[order][train]) & set(image[order][test])


def test_copy_kfold_refuses_rows_out_of_order():
    cv = CopyKFold(2, n_copies=1)
    with pytest.raises(ValueError, match="blocks of 2"):
        next(cv.split(np.zeros((7, 1))))
    with pytest.raises(ValueError, match="different labels"):
        next(cv.split(np.zeros((8, 1)), [0, 1, 0, 1, 0, 1, 0, 1]))


def test_cross_fitting_never_sees_a_copy_of_the_held_out_image():
    # Copies identical to their image: a fold that trained on a copy would
    # reconstruct the held-out row exactly (PCA with more axes than rows).
    rng = np.random.default_rng(0)
    n_images, n_copies = 30, 1
    X = np.repeat(rng.normal(size=(n_images, 64)), n_copies + 1, axis=0)
    y = np.zeros(len(X), dtype=int)
    space = AttributionSpace(solver="pca", latent_dim=63, cv=5, random_state=0)
    leaky = space.fit_transform(X, y)
    grouped = with_copy_folds(space, n_copies).fit_transform(X, y)
    # plain KFold leaks: most rows' copy was in the training folds
    assert (np.abs(leaky).mean(axis=1) < 1e-3).mean() > 0.5
    # CopyKFold: every held-out image is new to its fold
    assert (np.abs(grouped).mean(axis=1) > 0.3).all()


def test_fit_copies_restores_integer_folds_and_saves(tmp_path):
    rng = np.random.default_rng(1)
    names = [f"stage0_mean{i}" for i in range(8)] + [f"embedding{i}" for i in range(8)]
    X = np.repeat(rng.normal(size=(40, 16)), 2, axis=0) + rng.normal(0, .1, (80, 16))
    y = np.repeat(np.arange(40) % 2, 2)
    X[y == 1] += 0.5
    fused = make_fusion(names, latent_dim=4, random_state=0)
    fitted = fit_copies(fused, X, y, n_copies=1)
    assert fitted.cv == 5
    assert fitted.estimators_[0][1].cv == 5  # AttributionSpace of the fitted branch
    save(fitted, tmp_path / "fused.skacd")
    np.testing.assert_allclose(load(tmp_path / "fused.skacd").predict_proba(X),
                               fitted.predict_proba(X))


SPLITS = []


class RecordingCopyKFold(CopyKFold):
    """CopyKFold that records the image index sets of every split it makes."""

    def split(self, X, y=None, groups=None):
        for train, test in super().split(X, y, groups):
            SPLITS.append((np.asarray(X)[train, 0].astype(int),
                           np.asarray(X)[test, 0].astype(int)))
            yield train, test


def test_grid_search_with_cross_generator_split_keeps_copies_together():
    # Column 0 carries the image index so the recorder can see which images
    # each split holds; the rest are features.
    rng = np.random.default_rng(2)
    n_images, n_copies = 48, 2
    image = image_of_rows(n_images, n_copies)
    generator = np.repeat(np.arange(n_images) % 3, n_copies + 1)
    y = np.repeat((np.arange(n_images) // 3) % 2, n_copies + 1)
    features = rng.normal(size=(image.size, 8)) + y[:, None]
    X = np.column_stack([image, features]).astype(float)
    names = ["stage0_mean0"] + [f"stage0_mean{i}" for i in range(1, 4)] + [
        f"embedding{i}" for i in range(5)]
    fused = make_fusion(names, latent_dim=2, random_state=0)
    fused.set_params(cv=RecordingCopyKFold(3, n_copies, stratify=True))
    # the early branch reads column 0 (the embedding branch is not recorded)
    fused.set_params(early__attribution__cv=RecordingCopyKFold(
        3, n_copies, shuffle=True, random_state=0))
    fused.set_params(embedding__attribution__cv=CopyKFold(3, n_copies))
    outer = CrossGeneratorSplit(train_groups=[[0, 1]])
    SPLITS.clear()
    search = GridSearchCV(fused, {"final_estimator__weights": [None, [1, 2]]},
                          cv=outer, scoring="average_precision")
    search.fit(X, y, groups=generator)
    for train, test in outer.split(X, y, generator):
        assert not set(image[train]) & set(image[test])
    assert len(SPLITS) > 10  # stacking folds and every branch's cross-fitting
    for train_images, test_images in SPLITS:
        assert not set(train_images) & set(test_images)
    assert np.isfinite(search.best_score_)


# -- featurizing copies --------------------------------------------------------------


def test_featurize_copies_orders_rows_by_image_and_caches(tmp_path, tiny_clip):
    rng = np.random.default_rng(3)
    images = [smooth_image(rng) for _ in range(3)]
    images += [patterned_image(rng) for _ in range(3)]
    paths = []
    for i, pixels in enumerate(images):
        paths.append(str(tmp_path / f"{i}.png"))
        Image.fromarray(pixels).save(paths[-1])
    cache = FeatureCache(tmp_path / "cache")
    featurizer = tiny_clip.set_params(cache=cache).fit()
    augment = Augment(resize_prob=1, resize_factor=(0.5, 0.5), jpeg_prob=1)
    X, y, groups = featurize_copies(featurizer, paths, [0, 0, 0, 1, 1, 1],
                                    augment=augment, n_copies=2)
    assert X.shape[0] == 18 and groups.tolist() == np.repeat(np.arange(6), 3).tolist()
    assert y.tolist() == [0] * 9 + [1] * 9
    clean = featurizer.transform(paths)
    np.testing.assert_allclose(X[::3], clean, rtol=1e-5, atol=1e-6)
    assert not np.allclose(X[1::3], X[::3]) and not np.allclose(X[1::3], X[2::3])
    # the second time every copy comes from the cache, unchanged
    again = featurizer.set_params(image_transform=augment.for_copy(2)).featurize(paths)
    assert again.n_cached == 6
    np.testing.assert_allclose(again.features, X[2::3], rtol=1e-6)
    with pytest.raises(ValueError, match="image_transform"):
        featurize_copies(featurizer, paths, augment=augment)


def test_fit_augmented_leaves_test_images_unaugmented(tmp_path, tiny_clip):
    rng = np.random.default_rng(4)
    images = [smooth_image(rng) for _ in range(6)]
    images += [patterned_image(rng) for _ in range(6)]
    y = [0] * 6 + [1] * 6
    detector = make_pipeline(tiny_clip, LogisticRegression(max_iter=1000))
    fit_augmented(detector, images, y, augment=Augment(seed=1), n_copies=1)
    assert detector[0].image_transform is None
    scores = detector.predict_proba(images)[:, 1]
    X = detector[0].transform(images)
    np.testing.assert_allclose(scores, detector[-1].predict_proba(X)[:, 1])
    with pytest.raises(ValueError, match="first step is a featurizer"):
        fit_augmented(LogisticRegression(), images, y)
