"""Training-time augmentation: fit a detector on perturbed copies of its images.

Web images are resized, cropped, blurred and re-compressed before anyone
checks them, and those operations erase the low-level traces that detectors
read. Wang et al. (2020, CNNDetection) showed that training on blurred and
JPEG-compressed copies is what makes a detector survive them. Here:

- :class:`Augment` is the augmentation spec and the image transform of one
  copy: crop, resize, blur and JPEG, each applied with a probability, drawn
  from a generator seeded by ``seed``, the copy index and the image's pixels.
  Copy ``k`` of an image is thus always the same image, and its features are
  cached by image content and ``repr(augment)`` like any perturbation.
- :func:`featurize_copies` featurizes the images and ``n_copies`` augmented
  copies of each, and returns ``X, y, groups`` with the rows of one image
  (the original, then its copies) next to each other.
- :class:`CopyKFold` splits such rows so that the copies of one image always
  fall in the same fold (no copy of an image in its own validation fold).
- :func:`with_copy_folds` sets it as the cross-fitting folds of every
  :class:`~skacd.AttributionSpace` and ``StackingClassifier`` of a detector,
  and :func:`fit_augmented` fits a detector (featurizer first) this way.

Test-time images are never augmented: the fitted detector's featurizer keeps
``image_transform=None``.
"""

from numbers import Integral, Real

import numpy as np
from sklearn.base import clone
from sklearn.model_selection import BaseCrossValidator, GroupKFold, StratifiedGroupKFold

from .featurizers._images import (
    RESAMPLE_FILTERS,
    GaussianBlur,
    JPEGCompression,
    content_seed,
    crop_resize,
)

__all__ = [
    "Augment",
    "CopyKFold",
    "featurize_copies",
    "fit_augmented",
    "fit_copies",
    "with_copy_folds",
]

_RANGES = {
    "jpeg_quality": (1, 100),
    "blur_sigma": (0.0, None),
    "resize_factor": (0.0, None),
    "crop_fraction": (0.0, 1.0),
}


def _check_prob(name, value):
    if not (isinstance(value, Real) and not isinstance(value, bool)
            and 0 <= value <= 1):
        raise ValueError(f"{name} must be a probability in [0, 1]; got {value!r}")
    return float(value)


def _check_range(name, value):
    low_bound, high_bound = _RANGES[name]
    if not (
        isinstance(value, (tuple, list))
        and len(value) == 2
        and all(isinstance(v, Real) and not isinstance(v, bool) for v in value)
        and value[0] <= value[1]
    ):
        raise ValueError(f"{name} must be a (low, high) pair with low <= high; "
                         f"got {value!r}")
    low, high = value
    if low < low_bound or (high_bound is not None and high > high_bound) or (
        name in ("resize_factor", "crop_fraction") and low <= 0
    ):
        raise ValueError(f"{name}={value!r} is out of range {_RANGES[name]}")
    if name == "jpeg_quality":
        if not all(isinstance(v, Integral) for v in value):
            raise ValueError(f"jpeg_quality must be a pair of ints; got {value!r}")
        return int(low), int(high)
    return float(low), float(high)


class Augment:
    """CNNDetection-style augmentation of one training-image copy.

    In order: a random crop resized back to the image's size (``crop``), a
    downscale (``resize``), a Gaussian blur (``blur``), a JPEG re-compression
    (``jpeg``); each is applied with its probability, with a strength drawn
    uniformly from its range. The draws come from a generator seeded by
    ``seed``, ``copy`` and the image's pixels: deterministic per (image,
    copy), so augmented features are cacheable by content and ``repr``.

    Parameters
    ----------
    jpeg_prob : float, default=0.5
        Probability of a JPEG re-compression.
    jpeg_quality : (int, int), default=(30, 100)
        Its quality range (CNNDetection's).
    blur_prob : float, default=0.5
        Probability of a Gaussian blur.
    blur_sigma : (float, float), default=(0.0, 3.0)
        Its sigma range in pixels (CNNDetection's).
    resize_prob : float, default=0.5
        Probability of a downscale.
    resize_factor : (float, float), default=(0.5, 1.0)
        Its range of side scale factors.
    crop_prob : float, default=0.0
        Probability of a random crop resized back to the image's size.
    crop_fraction : (float, float), default=(0.5, 1.0)
        The crop's side relative to the image's.
    resample : {"bicubic", "bilinear", "lanczos", "box", "nearest"}, default="bicubic"
        Filter of the resize and the crop.
    seed : int, default=0
        Seeds every draw (with ``copy`` and the image's pixels).
    copy : int, default=1
        The copy index: copies ``1, 2, ...`` of one image differ.

    Notes
    -----
    The defaults are CNNDetection's blur and JPEG (p = 0.5 each) plus a
    downscale. Measured on the dev protocol (``benchmarks/README.md``,
    EfficientNet-Lite2, 1 copy per image), they cost the fused detector about
    4 AP on unseen generators, while a downscale-only augmentation
    (``Augment.from_string("jpeg=0,blur=0,resize=0.5")``) was within the seed
    spread of no augmentation; the linear probe gains 1-7 AP from either.

    Examples
    --------
    >>> import numpy as np
    >>> from PIL import Image
    >>> from skacd.augmentation import Augment
    >>> image = Image.fromarray(
    ...     np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    >>> augment = Augment(resize_prob=1.0, resize_factor=(0.5, 0.5))
    >>> augment(image).size
    (32, 32)
    >>> augment(image) == augment(image)  # the same copy of the same image
    True
    """

    def __init__(
        self,
        jpeg_prob=0.5,
        jpeg_quality=(30, 100),
        blur_prob=0.5,
        blur_sigma=(0.0, 3.0),
        resize_prob=0.5,
        resize_factor=(0.5, 1.0),
        crop_prob=0.0,
        crop_fraction=(0.5, 1.0),
        resample="bicubic",
        seed=0,
        copy=1,
    ):
        self.jpeg_prob = _check_prob("jpeg_prob", jpeg_prob)
        self.jpeg_quality = _check_range("jpeg_quality", jpeg_quality)
        self.blur_prob = _check_prob("blur_prob", blur_prob)
        self.blur_sigma = _check_range("blur_sigma", blur_sigma)
        self.resize_prob = _check_prob("resize_prob", resize_prob)
        self.resize_factor = _check_range("resize_factor", resize_factor)
        self.crop_prob = _check_prob("crop_prob", crop_prob)
        self.crop_fraction = _check_range("crop_fraction", crop_fraction)
        if resample not in RESAMPLE_FILTERS:
            raise ValueError(
                f"resample must be one of {sorted(RESAMPLE_FILTERS)}; got {resample!r}"
            )
        self.resample = resample
        for name, value in (("seed", seed), ("copy", copy)):
            if not (isinstance(value, Integral) and not isinstance(value, bool)
                    and value >= 0):
                raise ValueError(f"{name} must be a non-negative int; got {value!r}")
        self.seed = int(seed)
        self.copy = int(copy)

    _FIELDS = (
        "jpeg_prob", "jpeg_quality", "blur_prob", "blur_sigma", "resize_prob",
        "resize_factor", "crop_prob", "crop_fraction", "resample", "seed", "copy",
    )

    def get_params(self):
        """Get the parameters.

        Returns
        -------
        params : dict
            Each parameter's name and value.
        """
        return {name: getattr(self, name) for name in self._FIELDS}

    def for_copy(self, copy):
        """Return the same spec for another copy.

        Parameters
        ----------
        copy : int
            The copy index (1 for the first augmented copy).

        Returns
        -------
        augment : Augment
            A new spec, equal to this one but for its ``copy``.
        """
        return type(self)(**dict(self.get_params(), copy=copy))

    def __call__(self, image):
        rng = np.random.default_rng(content_seed(image, self.seed, self.copy))
        # Every draw happens whether or not its step applies, so changing one
        # probability does not reshuffle the other steps' draws.
        draws = {name: (rng.random(), rng.random(), rng.random(), rng.random())
                 for name in ("crop", "resize", "blur", "jpeg")}

        def strength(low_high, u):
            low, high = low_high
            return low + (high - low) * u

        if draws["crop"][0] < self.crop_prob:
            fraction = strength(self.crop_fraction, draws["crop"][1])
            image = crop_resize(
                image, fraction,
                np.random.default_rng(int(draws["crop"][2] * 2**32)), self.resample,
            )
        if draws["resize"][0] < self.resize_prob:
            factor = strength(self.resize_factor, draws["resize"][1])
            width, height = image.size
            size = max(1, round(width * factor)), max(1, round(height * factor))
            image = image.resize(size, RESAMPLE_FILTERS[self.resample])
        if draws["blur"][0] < self.blur_prob:
            sigma = strength(self.blur_sigma, draws["blur"][1])
            image = GaussianBlur(sigma)(image)
        if draws["jpeg"][0] < self.jpeg_prob:
            low, high = self.jpeg_quality
            quality = min(high, low + int(draws["jpeg"][1] * (high - low + 1)))
            image = JPEGCompression(quality)(image)
        return image

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"Augment({args})"

    def __eq__(self, other):
        return type(other) is type(self) and repr(other) == repr(self)

    def __hash__(self):
        return hash(repr(self))

    @classmethod
    def from_string(cls, text, **params):
        """An :class:`Augment` from ``"jpeg=0.5,blur=0.5,resize=0.5,crop=0"``.

        Each ``name=p`` sets ``<name>_prob``; names left out keep their
        default; ``"none"`` sets every probability to 0. ``params`` are
        passed on (``seed``, ranges).

        Examples
        --------
        >>> from skacd.augmentation import Augment
        >>> Augment.from_string("jpeg=1,blur=0").jpeg_prob
        1.0
        """
        steps = ("jpeg", "blur", "resize", "crop")
        text = text.strip()
        if text == "none":
            return cls(**{f"{s}_prob": 0.0 for s in steps}, **params)
        for part in filter(None, (p.strip() for p in text.split(","))):
            name, sep, value = part.partition("=")
            if not sep or name.strip() not in steps:
                raise ValueError(
                    f"augmentation spec {text!r}: {part!r} is not name=probability "
                    f"with name one of {list(steps)}"
                )
            try:
                params[f"{name.strip()}_prob"] = float(value)
            except ValueError:
                raise ValueError(
                    f"augmentation spec {text!r}: {value!r} is not a number"
                ) from None
        return cls(**params)


class CopyKFold(BaseCrossValidator):
    """K folds that keep every augmented copy of an image in the same fold.

    With ``groups`` (the image index of each row, as
    :func:`featurize_copies` returns it), the folds are those of
    ``GroupKFold`` (``StratifiedGroupKFold`` with ``stratify=True``). Without
    them (inside a detector, where the splitter sees only ``X`` and ``y``),
    the rows must come in consecutive blocks of ``n_copies + 1`` rows of one
    image, the order :func:`featurize_copies` returns: every skacd and
    scikit-learn splitter's index arrays are sorted, so subsets that keep or
    drop whole images keep that order. A block whose labels differ, or a row
    count that is not a multiple of the block, raises.

    Parameters
    ----------
    n_splits : int, default=5
        Number of folds, at least 2.
    n_copies : int, default=1
        Augmented copies per image (rows per image minus 1).
    stratify : bool, default=False
        Keep the class proportions in each fold.
    shuffle : bool, default=False
        Shuffle the images before splitting.
    random_state : int or None, default=None
        Seeds the shuffle.

    Examples
    --------
    >>> import numpy as np
    >>> from skacd.augmentation import CopyKFold
    >>> X = np.zeros((8, 1)); y = np.repeat([0, 1, 0, 1], 2)
    >>> [test.tolist() for _, test in CopyKFold(2, n_copies=1).split(X, y)]
    [[2, 3, 6, 7], [0, 1, 4, 5]]
    """

    def __init__(self, n_splits=5, n_copies=1, *, stratify=False, shuffle=False,
                 random_state=None):
        for name, value, low in (("n_splits", n_splits, 2), ("n_copies", n_copies, 0)):
            if not (isinstance(value, Integral) and value >= low):
                raise ValueError(f"{name} must be an int >= {low}; got {value!r}")
        self.n_splits = int(n_splits)
        self.n_copies = int(n_copies)
        self.stratify = bool(stratify)
        self.shuffle = bool(shuffle)
        self.random_state = random_state

    def block_groups(self, n_samples, y=None):
        """Return the image index of each row, for rows in blocks of ``n_copies + 1``.

        Parameters
        ----------
        n_samples : int
            The number of rows.
        y : array-like of shape (n_samples,), default=None
            Labels; when given, every block must hold one label.

        Returns
        -------
        groups : ndarray of shape (n_samples,)
            The image index of each row.
        """
        block = self.n_copies + 1
        if n_samples % block:
            raise ValueError(
                f"CopyKFold(n_copies={self.n_copies}) needs rows in blocks of "
                f"{block} (an image and its copies); got {n_samples} rows, not a "
                "multiple. Pass groups, or keep the order featurize_copies returns."
            )
        groups = np.arange(n_samples) // block
        if y is not None:
            blocks = np.asarray(y).reshape(-1, block)
            if not (blocks == blocks[:, :1]).all():
                raise ValueError(
                    "CopyKFold: a block of an image and its copies holds different "
                    "labels, so the rows are not in featurize_copies' order. Pass "
                    "groups."
                )
        return groups

    def _splitter(self):
        random_state = self.random_state if self.shuffle else None
        if self.stratify:
            return StratifiedGroupKFold(
                self.n_splits, shuffle=self.shuffle, random_state=random_state
            )
        return GroupKFold(
            self.n_splits, shuffle=self.shuffle, random_state=random_state
        )

    def split(self, X, y=None, groups=None):
        """Yield ``(train, test)`` indices; no image on both sides.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Only its length is used.
        y : array-like of shape (n_samples,), default=None
            Labels (required with ``stratify=True``).
        groups : array-like of shape (n_samples,), default=None
            Image index of each row; None: blocks of ``n_copies + 1`` rows.

        Yields
        ------
        train, test : ndarray
            Row indices.
        """
        n_samples = len(X)
        if groups is None:
            groups = self.block_groups(n_samples, y)
        if self.stratify and y is None:
            raise ValueError("CopyKFold(stratify=True) needs y.")
        yield from self._splitter().split(np.zeros((n_samples, 1)), y, groups)

    def get_n_splits(self, X=None, y=None, groups=None):
        """Return the number of folds.

        Parameters
        ----------
        X, y, groups : object, default=None
            Ignored; present for the splitter API.

        Returns
        -------
        n_splits : int
            ``n_splits``.
        """
        return self.n_splits

    def _iter_test_masks(self, X=None, y=None, groups=None):  # pragma: no cover
        raise NotImplementedError  # split is overridden


def featurize_copies(featurizer, images, y=None, *, augment=None, n_copies=1):
    """Featurize ``images`` and ``n_copies`` augmented copies of each.

    Every image is featurized once per copy; with the featurizer's ``cache``,
    a copy already featurized (same image bytes, same ``augment``, same copy
    index) is read back instead.

    Parameters
    ----------
    featurizer : BaseFeaturizer
        With ``image_transform=None`` (its images are the originals).
    images : sequence of paths, PIL images or arrays
        The training images.
    y : array-like of shape (n_images,), default=None
        Their labels, repeated for the copies.
    augment : Augment or None, default=None
        The spec (its ``copy`` is replaced by ``1 .. n_copies``); None:
        ``Augment()``.
    n_copies : int, default=1
        Augmented copies per image; 0 returns the originals only.

    Returns
    -------
    X : ndarray of shape (n_images * (n_copies + 1), n_features)
        Rows of one image next to each other: the original, then its copies.
    y : ndarray or None
        ``y`` repeated ``n_copies + 1`` times per image.
    groups : ndarray of int
        The image index of each row (for ``GroupKFold`` and :class:`CopyKFold`).

    Examples
    --------
    >>> import numpy as np
    >>> from skacd import CLIPFeaturizer
    >>> from skacd.augmentation import featurize_copies
    >>> rng = np.random.default_rng(0)
    >>> images = [rng.integers(0, 255, (32, 32, 3), dtype=np.uint8) for _ in range(3)]
    >>> featurizer = CLIPFeaturizer("skacd-tiny-ViT", pretrained=None, device="cpu")
    >>> X, y, groups = featurize_copies(featurizer.fit(), images, [0, 1, 0], n_copies=1)
    >>> X.shape[0], y.tolist(), groups.tolist()
    (6, [0, 0, 1, 1, 0, 0], [0, 0, 1, 1, 2, 2])
    """
    if not (isinstance(n_copies, Integral) and n_copies >= 0):
        raise ValueError(f"n_copies must be an int >= 0; got {n_copies!r}")
    if featurizer.image_transform is not None:
        raise ValueError(
            "featurize_copies: the featurizer has image_transform="
            f"{featurizer.image_transform!r}; the originals must be featurized "
            "as they are (set it to None)."
        )
    augment = Augment() if augment is None else augment
    if not isinstance(augment, Augment):
        raise ValueError(f"augment must be an Augment or None; got {augment!r}")
    images = list(images)
    blocks = [np.asarray(featurizer.transform(images))]
    for k in range(1, n_copies + 1):
        copier = clone(featurizer).set_params(
            cache=featurizer.cache, image_transform=augment.for_copy(k)
        )
        blocks.append(np.asarray(copier.fit().transform(images)))
    X = np.stack(blocks, axis=1).reshape(len(images) * (n_copies + 1), -1)
    groups = np.repeat(np.arange(len(images)), n_copies + 1)
    if y is not None:
        y = np.asarray(y)
        if len(y) != len(images):
            raise ValueError(f"y has {len(y)} labels for {len(images)} images.")
        y = np.repeat(y, n_copies + 1)
    return X, y, groups


def _cv_owners(estimator):
    from sklearn.ensemble import StackingClassifier

    from .attribution import AttributionSpace

    params = estimator.get_params(deep=True)
    for key, value in params.items():
        if not (key == "cv" or key.endswith("__cv")):
            continue
        owner = estimator if key == "cv" else params[key.rsplit("__", 1)[0]]
        if isinstance(owner, (StackingClassifier, AttributionSpace)):
            yield key, owner, value


def with_copy_folds(estimator, n_copies=1):
    """A clone of ``estimator`` whose cross-fitting keeps an image's copies together.

    Every integer ``cv`` of an :class:`~skacd.AttributionSpace` (its
    cross-fitting) and of a ``StackingClassifier`` (the out-of-fold branch
    scores of the fused detector) becomes a :class:`CopyKFold` with as many
    folds (stratified for the stacking, as scikit-learn's default is).

    Parameters
    ----------
    estimator : estimator
        A detector head on features, e.g. :func:`skacd.make_fusion`'s.
    n_copies : int, default=1
        Augmented copies per image in the rows it will be fitted on.

    Returns
    -------
    estimator : estimator
        The clone; fit it on :func:`featurize_copies`' rows, in that order.

    Examples
    --------
    >>> from skacd import AttributionSpace
    >>> from skacd.augmentation import with_copy_folds
    >>> folds = with_copy_folds(AttributionSpace(cv=3), n_copies=2).cv
    >>> type(folds).__name__, folds.n_splits, folds.n_copies
    ('CopyKFold', 3, 2)
    """
    from sklearn.ensemble import StackingClassifier

    estimator = clone(estimator)
    updates = {}
    for key, owner, value in _cv_owners(estimator):
        if value is None and isinstance(owner, StackingClassifier):
            value = 5  # scikit-learn's default folds
        if isinstance(value, CopyKFold) or value is None:
            continue
        if not isinstance(value, Integral):
            raise ValueError(
                f"with_copy_folds: {key}={value!r} is a splitter of its own; give "
                "an int (it becomes a CopyKFold)."
            )
        if isinstance(owner, StackingClassifier):
            updates[key] = CopyKFold(value, n_copies, stratify=True)
        else:
            seed = owner.random_state
            seed = seed if isinstance(seed, Integral) else None
            updates[key] = CopyKFold(
                value, n_copies, shuffle=owner.shuffle, random_state=seed
            )
    return estimator.set_params(**updates) if updates else estimator


def _restore_int_folds(obj):
    """Replace CopyKFold ``cv`` values by their ``n_splits`` in a fitted tree."""
    from sklearn.ensemble import StackingClassifier
    from sklearn.pipeline import Pipeline

    from .attribution import AttributionSpace

    if isinstance(obj, (AttributionSpace, StackingClassifier)) and isinstance(
        getattr(obj, "cv", None), CopyKFold
    ):
        obj.cv = obj.cv.n_splits
    if isinstance(obj, Pipeline):
        children = [step for _, step in obj.steps]
    elif isinstance(obj, StackingClassifier):
        children = [e for _, e in obj.estimators]
        children += list(getattr(obj, "estimators_", []))
        children += [obj.final_estimator, getattr(obj, "final_estimator_", None)]
    else:
        children = []
    for child in children:
        if child is not None and child != "drop":
            _restore_int_folds(child)


def fit_augmented(detector, images, y, *, augment=None, n_copies=1):
    """Fit ``detector`` (a featurizer-first Pipeline) on augmented copies.

    The featurizer's features of the images and of ``n_copies`` augmented
    copies each (:func:`featurize_copies`) train the rest of the pipeline,
    with cross-fitting folds that keep an image's copies together
    (:func:`with_copy_folds`). After fitting, those folds' ``cv`` parameters
    read as their fold counts again, so the detector is saved by
    :func:`skacd.save` and predicts on unaugmented images as before.

    Parameters
    ----------
    detector : Pipeline
        Featurizer first, e.g. :func:`skacd.make_detector`'s; fitted in place.
    images : sequence of paths, PIL images or arrays
        The training images.
    y : array-like of shape (n_images,)
        Their labels.
    augment : Augment or None, default=None
        The augmentation; None: ``Augment()``.
    n_copies : int, default=1
        Augmented copies per image.

    Returns
    -------
    detector : Pipeline
        ``detector``, fitted.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.pipeline import make_pipeline
    >>> from skacd import CLIPFeaturizer
    >>> from skacd.augmentation import fit_augmented
    >>> rng = np.random.default_rng(0)
    >>> images = [rng.integers(0, 255, (32, 32, 3), dtype=np.uint8) for _ in range(8)]
    >>> detector = make_pipeline(
    ...     CLIPFeaturizer("skacd-tiny-ViT", pretrained=None, device="cpu"),
    ...     LogisticRegression())
    >>> fit_augmented(detector, images, [0, 1] * 4, n_copies=1).predict(images).shape
    (8,)
    """
    from sklearn.pipeline import Pipeline

    from .featurizers import BaseFeaturizer

    if not (isinstance(detector, Pipeline) and isinstance(detector.steps[0][1],
                                                         BaseFeaturizer)):
        raise ValueError(
            "fit_augmented needs a Pipeline whose first step is a featurizer; got "
            f"{type(detector).__name__}."
        )
    featurizer = detector.steps[0][1].fit()
    X, y_rows, _ = featurize_copies(
        featurizer, images, y, augment=augment, n_copies=n_copies
    )
    head = fit_copies(Pipeline(detector.steps[1:]), X, y_rows, n_copies=n_copies)
    detector.steps[1:] = head.steps
    return detector


def fit_copies(estimator, X, y, *, n_copies=1):
    """Fit a clone of ``estimator`` on :func:`featurize_copies`' rows.

    Its cross-fitting folds keep an image's copies together
    (:func:`with_copy_folds`); after fitting, their ``cv`` parameters read
    as the fold counts again, so :func:`skacd.save` stores the result.

    Parameters
    ----------
    estimator : estimator
        A detector head on features.
    X, y : ndarray
        :func:`featurize_copies`' ``X`` and ``y``, in its row order.
    n_copies : int, default=1
        Augmented copies per image in ``X``.

    Returns
    -------
    estimator : estimator
        The fitted clone.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skacd.augmentation import fit_copies
    >>> X = np.random.default_rng(0).normal(size=(8, 3))  # 4 images, 1 copy each
    >>> y = np.repeat([0, 1, 0, 1], 2)
    >>> fit_copies(LogisticRegression(), X, y, n_copies=1).classes_.tolist()
    [0, 1]
    """
    fitted = with_copy_folds(estimator, n_copies).fit(X, y)
    _restore_int_folds(fitted)
    return fitted
