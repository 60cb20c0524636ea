"""Decoding images into RGB PIL images, and the robustness perturbations."""

import io
import os
import stat
import struct
import sys
import threading
import warnings
from numbers import Real

import numpy as np
from PIL import Image, ImageFilter, ImageOps, UnidentifiedImageError

from ..exceptions import ImageLoadError

__all__ = [
    "load_image",
    "describe_item",
    "limit_aspect_ratio",
    "JPEGCompression",
    "GaussianBlur",
    "Resize",
    "RandomCropResize",
]

#: Images more elongated than this (width:height or height:width) are
#: centre-cropped to it before the model's preprocessing. Encoders resize the
#: shorter side and centre-crop a square, so the crop keeps the centre the model
#: sees (the features change only by resampling rounding); without it a 1x20000
#: PNG (60 KB) is resized to 224x4480000 pixels (5 GB, 13 s) by CLIP's
#: preprocessing.
MAX_ASPECT_RATIO = 16

#: The largest image file skacd reads, in bytes (256 MiB). Larger files,
#: like FIFOs and devices, are errors for that image. Set
#: ``skacd.featurizers.MAX_IMAGE_FILE_BYTES`` to change it.
MAX_IMAGE_FILE_BYTES = 256 * 2**20

#: The Pillow formats skacd decodes, judged by the file's content, not its
#: name: a PCX, TGA or EPS file named ``.jpg`` is refused (EPS would be handed
#: to Ghostscript). JPEG includes the multi-picture MPO files of cameras.
IMAGE_FORMATS = ("JPEG", "PNG", "BMP", "WEBP", "GIF", "TIFF")

#: The most pixels (width x height, read from the header before decoding) of
#: an image file skacd decodes: 64 million, below Pillow's own bomb limit
#: (``PIL.Image.MAX_IMAGE_PIXELS``, 89 million) and above a 50-megapixel
#: photo. Set ``skacd.featurizers.MAX_IMAGE_PIXELS`` to change it.
MAX_IMAGE_PIXELS = 64_000_000

_DECODE_LOCK = threading.Lock()


def describe_item(item, index):
    """A short name for an input item, for error messages."""
    if isinstance(item, (str, os.PathLike)):
        return os.fspath(item)
    return f"item {index} ({type(item).__module__}.{type(item).__name__})"


def _to_rgb(image):
    """Convert any PIL mode (L, P, RGBA, CMYK, I;16, ...) to 8-bit RGB."""
    if image.mode == "RGB":
        return image
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16/32-bit grayscale: rescale to 8 bits instead of clipping to white,
        # rounding to nearest, in integers (a float64 copy of a 9400x9400
        # image took 2.4 GB and 12 s): round(x / peak * 255).
        array = np.asarray(image)
        peak = 65535 if image.mode.startswith("I;16") or array.max() > 255 else 255
        if array.dtype != np.uint16:
            array = np.clip(array, 0, peak)
        # A lookup table of round(x / peak * 255) for every value 0..peak.
        table = (np.arange(peak + 1, dtype=np.uint32) * 510 + peak) // (2 * peak)
        array = table.astype(np.uint8)[array]
        return Image.fromarray(array, mode="L").convert("RGB")
    if image.mode in ("RGBA", "LA", "PA") or (
        image.mode == "P" and "transparency" in image.info
    ):
        # Composite transparency over white rather than keeping hidden pixels.
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def _from_array(array, source):
    array = np.asarray(array)
    if array.dtype != np.uint8:
        raise ImageLoadError(
            source, f"arrays must have dtype uint8; got {array.dtype}"
        )
    if array.ndim == 2 or (array.ndim == 3 and array.shape[2] in (1, 3, 4)):
        if array.ndim == 3 and array.shape[2] == 1:
            array = array[:, :, 0]
        return Image.fromarray(np.ascontiguousarray(array))
    raise ImageLoadError(
        source,
        f"arrays must have shape (H, W), (H, W, 3) or (H, W, 4); got {array.shape}",
    )


def _check_pixels(image, source):
    limit = _setting("MAX_IMAGE_PIXELS")
    width, height = image.size
    if width * height > limit:
        raise ImageLoadError(
            source,
            f"the image is {width}x{height} pixels, over skacd's limit of {limit} "
            "pixels (skacd.featurizers.MAX_IMAGE_PIXELS; raise it if you trust "
            "the file)",
        )


def _pillow_warnings(caught):
    """The warnings in ``caught`` that Pillow raised; others are shown again."""
    pillow = []
    for w in caught:
        if issubclass(w.category, Image.DecompressionBombWarning):
            continue
        if f"{os.sep}PIL{os.sep}" in (w.filename or ""):
            pillow.append(str(w.message))
        else:  # another thread's warning, caught in this window by accident
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return pillow


def _open_bytes(data, source):
    if len(data) == 0:
        raise ImageLoadError(source, "the file is empty (0 bytes)")
    try:
        # warnings.catch_warnings is process-wide: one decode at a time records
        # its warnings (the decode threads still resize in parallel).
        with _DECODE_LOCK, warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            Image.init()  # registers MPO, TIFF, WEBP (a no-op once done)
            image = Image.open(io.BytesIO(data), formats=IMAGE_FORMATS)
            _check_pixels(image, source)  # from the header, before decoding
            image.seek(0)  # animated images: the first frame
            image.load()
            image = ImageOps.exif_transpose(image)
        warned = _pillow_warnings(caught)
        if warned:
            # Truncated reads, corrupt EXIF or TIFF tags: the pixels may not be
            # what the file meant; never scored silently.
            raise ImageLoadError(
                source, "corrupt image (Pillow warned: " + "; ".join(warned)[:300] + ")"
            )
    except ImageLoadError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageLoadError(
            source,
            f"the image is larger than Pillow's safety limit "
            f"(Image.MAX_IMAGE_PIXELS={Image.MAX_IMAGE_PIXELS}; raise it if you "
            f"trust the file): {exc}",
        ) from None
    except UnidentifiedImageError:
        raise ImageLoadError(
            source,
            "not a recognised image format (skacd reads "
            + ", ".join(IMAGE_FORMATS) + " files, whatever their extension)",
        ) from None
    except (OSError, SyntaxError, ValueError, EOFError, struct.error) as exc:
        raise ImageLoadError(source, f"corrupt or truncated image ({exc})") from None
    return image


def _setting(name):
    """A limit, as set on :mod:`skacd.featurizers` (where users set it)."""
    package = sys.modules.get("skacd.featurizers")
    return getattr(package, name, globals()[name])


def _file_kind(mode):
    for test, kind in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return kind
    return "not a regular file"


def read_bytes(path):
    """Read a regular file's bytes, at most :data:`MAX_IMAGE_FILE_BYTES`.

    FIFOs, devices (a link to ``/dev/zero``) and sockets are refused without
    being read; OS errors become :class:`ImageLoadError`.
    """
    source = os.fspath(path)
    limit = _setting("MAX_IMAGE_FILE_BYTES")
    try:
        # O_NONBLOCK: opening a FIFO does not wait for a writer.
        fd = os.open(source, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)
                     | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise ImageLoadError(source, "no such file") from None
    except PermissionError:
        raise ImageLoadError(source, "permission denied") from None
    except IsADirectoryError:
        raise ImageLoadError(source, "is a directory, not an image file") from None
    except OSError as exc:
        raise ImageLoadError(source, f"cannot read the file ({exc})") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        if stat.S_ISDIR(info.st_mode):
            raise ImageLoadError(source, "is a directory, not an image file")
        raise ImageLoadError(
            source,
            f"is {_file_kind(info.st_mode)}, not a regular file; skacd reads only "
            "regular image files",
        )
    with os.fdopen(fd, "rb") as fh:
        size = info.st_size
        too_big = (
            f"the file is over the {limit}-byte limit "
            "(skacd.featurizers.MAX_IMAGE_FILE_BYTES; raise it if you trust the file)"
        )
        if size > limit:
            raise ImageLoadError(source, f"{too_big}: {size} bytes")
        try:
            data = fh.read(limit + 1)
        except OSError as exc:
            raise ImageLoadError(source, f"cannot read the file ({exc})") from None
        if len(data) > limit:  # the file grew while it was read
            raise ImageLoadError(source, too_big)
        return data


def load_image(item, index=0, data=None):
    """Return ``item`` as an RGB :class:`PIL.Image.Image`.

    Parameters
    ----------
    item : str, os.PathLike, PIL.Image.Image or ndarray
        A file path, a PIL image, or a uint8 array of shape (H, W), (H, W, 3)
        or (H, W, 4).
    index : int, default=0
        Position of ``item`` in its batch, used in error messages.
    data : bytes, default=None
        The file's bytes when the caller has read them already.

    Returns
    -------
    image : PIL.Image.Image
        Mode ``"RGB"``; EXIF orientation applied; first frame of animations.

    Raises
    ------
    ImageLoadError
        Naming the file (or the item's position) and the reason.

    Examples
    --------
    >>> import numpy as np
    >>> from skacd.featurizers import load_image
    >>> gray = np.zeros((4, 6), dtype=np.uint8)
    >>> image = load_image(gray)
    >>> image.mode, image.size
    ('RGB', (6, 4))
    """
    source = describe_item(item, index)
    if isinstance(item, (str, os.PathLike)):
        image = _open_bytes(read_bytes(item) if data is None else data, source)
    elif isinstance(item, Image.Image):
        image = item
    elif isinstance(item, np.ndarray):
        image = _from_array(item, source)
    else:
        raise ImageLoadError(
            source,
            "expected a file path, a PIL image or a uint8 numpy array; got "
            f"{type(item).__name__}",
        )
    width, height = image.size
    if width < 1 or height < 1:
        raise ImageLoadError(source, f"the image has no pixels ({width}x{height})")
    try:
        return _to_rgb(image)
    except (OSError, ValueError) as exc:
        raise ImageLoadError(source, f"cannot convert to RGB ({exc})") from None


def limit_aspect_ratio(image, max_ratio=MAX_ASPECT_RATIO):
    """Centre-crop ``image`` along its long side to at most ``max_ratio``:1.

    Images within the ratio are returned unchanged. The number of pixels
    removed is kept even, so the crop is centred exactly.

    Examples
    --------
    >>> from PIL import Image
    >>> from skacd.featurizers._images import limit_aspect_ratio
    >>> limit_aspect_ratio(Image.new("RGB", (2000, 1))).size
    (16, 1)
    >>> limit_aspect_ratio(Image.new("RGB", (640, 480))).size
    (640, 480)
    """
    width, height = image.size
    if width > max_ratio * height:
        keep = max_ratio * height
        keep += (width - keep) % 2
        left = (width - keep) // 2
        return image.crop((left, 0, left + keep, height))
    if height > max_ratio * width:
        keep = max_ratio * width
        keep += (height - keep) % 2
        top = (height - keep) // 2
        return image.crop((0, top, width, top + keep))
    return image


class JPEGCompression:
    """Re-compress an image as JPEG at a given quality (a robustness perturbation).

    Apply it before featurization with a featurizer's ``image_transform``
    parameter, as in the paper's robustness study (Fig. 7).

    Parameters
    ----------
    quality : int
        JPEG quality, 1 (worst) to 100.

    Examples
    --------
    >>> import numpy as np
    >>> from PIL import Image
    >>> from skacd.featurizers import JPEGCompression
    >>> image = Image.fromarray(np.zeros((8, 8, 3), dtype=np.uint8))
    >>> JPEGCompression(quality=50)(image).size
    (8, 8)
    """

    def __init__(self, quality):
        if not (isinstance(quality, (int, np.integer)) and 1 <= quality <= 100):
            raise ValueError(f"quality must be an int in [1, 100]; got {quality!r}")
        self.quality = int(quality)

    def __call__(self, image):
        buffer = io.BytesIO()
        image.convert("RGB").save(buffer, format="JPEG", quality=self.quality)
        buffer.seek(0)
        return Image.open(buffer).convert("RGB")

    def __repr__(self):
        return f"JPEGCompression(quality={self.quality})"

    def __eq__(self, other):
        return type(other) is type(self) and other.quality == self.quality

    def __hash__(self):
        return hash(repr(self))


class GaussianBlur:
    """Blur an image with a Gaussian of standard deviation ``sigma`` pixels.

    Parameters
    ----------
    sigma : float
        Standard deviation in pixels; 0 leaves the image unchanged.

    Examples
    --------
    >>> import numpy as np
    >>> from PIL import Image
    >>> from skacd.featurizers import GaussianBlur
    >>> image = Image.fromarray(np.eye(8, dtype=np.uint8) * 255).convert("RGB")
    >>> int(np.asarray(GaussianBlur(sigma=1.0)(image)).max()) < 255
    True
    """

    def __init__(self, sigma):
        if not (isinstance(sigma, Real) and sigma >= 0):
            raise ValueError(f"sigma must be a non-negative number; got {sigma!r}")
        self.sigma = float(sigma)

    def __call__(self, image):
        if self.sigma == 0:
            return image
        return image.filter(ImageFilter.GaussianBlur(radius=self.sigma))

    def __repr__(self):
        return f"GaussianBlur(sigma={self.sigma})"

    def __eq__(self, other):
        return type(other) is type(self) and other.sigma == self.sigma

    def __hash__(self):
        return hash(repr(self))


#: Resampling filters by name, for :class:`Resize` and :class:`RandomCropResize`.
RESAMPLE_FILTERS = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
    "box": Image.Resampling.BOX,
}


def _check_resample(resample):
    if resample not in RESAMPLE_FILTERS:
        raise ValueError(
            f"resample must be one of {sorted(RESAMPLE_FILTERS)}; got {resample!r}"
        )
    return resample


def _scaled_size(size, factor):
    width, height = size
    return max(1, round(width * factor)), max(1, round(height * factor))


def content_seed(image, *salt):
    """A seed from an image's pixels and ``salt`` (ints): same image, same seed.

    Random perturbations draw from it, so a perturbed image depends only on
    the image and the perturbation's parameters: deterministic, and cacheable
    by image content and the perturbation's ``repr``.
    """
    import hashlib

    digest = hashlib.blake2b(digest_size=8)
    digest.update(repr((image.size, image.mode) + tuple(int(s) for s in salt)).encode())
    digest.update(image.tobytes())
    return int.from_bytes(digest.digest(), "little")


class Resize:
    """Rescale an image by ``factor`` with a chosen filter (a robustness perturbation).

    Web images are resized before anyone checks them; resampling erases the
    low-level traces that early-layer detectors read.

    Parameters
    ----------
    factor : float
        Scale of each side, > 0: 0.5 halves the width and height (at least
        1 pixel each), 2 doubles them.
    resample : {"bicubic", "bilinear", "lanczos", "box", "nearest"}, default="bicubic"
        The resampling filter (Pillow's; its downscaling is antialiased).
    restore : bool, default=False
        Resize back to the original size afterwards with the same filter
        (down-then-up: the detail is lost, the size is kept).

    Examples
    --------
    >>> from PIL import Image
    >>> from skacd.featurizers import Resize
    >>> Resize(0.5)(Image.new("RGB", (64, 48))).size
    (32, 24)
    >>> Resize(0.5, restore=True)(Image.new("RGB", (64, 48))).size
    (64, 48)
    """

    def __init__(self, factor, resample="bicubic", restore=False):
        if not (isinstance(factor, Real) and not isinstance(factor, bool)
                and np.isfinite(factor) and factor > 0):
            raise ValueError(f"factor must be a positive number; got {factor!r}")
        if not isinstance(restore, (bool, np.bool_)):
            raise ValueError(f"restore must be a bool; got {restore!r}")
        self.factor = float(factor)
        self.resample = _check_resample(resample)
        self.restore = bool(restore)

    def __call__(self, image):
        if self.factor == 1:
            return image
        resample = RESAMPLE_FILTERS[self.resample]
        out = image.resize(_scaled_size(image.size, self.factor), resample)
        if self.restore:
            out = out.resize(image.size, resample)
        return out

    def __repr__(self):
        return (
            f"Resize(factor={self.factor}, resample={self.resample!r}, "
            f"restore={self.restore})"
        )

    def __eq__(self, other):
        return type(other) is type(self) and repr(other) == repr(self)

    def __hash__(self):
        return hash(repr(self))


class RandomCropResize:
    """Crop a random window, then resize it back to the image's size.

    The window keeps the aspect ratio; its sides are ``fraction`` of the
    image's, at a position drawn from ``seed`` and the image's pixels (the
    same image always gets the same window).

    Parameters
    ----------
    fraction : float
        Side of the window relative to the image's, in (0, 1]; 1 keeps the
        image unchanged.
    resample : {"bicubic", "bilinear", "lanczos", "box", "nearest"}, default="bicubic"
        The filter that resizes the window to the original size.
    seed : int, default=0
        Seeds the window's position.

    Examples
    --------
    >>> import numpy as np
    >>> from PIL import Image
    >>> from skacd.featurizers import RandomCropResize
    >>> image = Image.fromarray(np.arange(48, dtype=np.uint8).reshape(6, 8))
    >>> RandomCropResize(0.5, seed=0)(image.convert("RGB")).size
    (8, 6)
    """

    def __init__(self, fraction, resample="bicubic", seed=0):
        if not (isinstance(fraction, Real) and not isinstance(fraction, bool)
                and 0 < fraction <= 1):
            raise ValueError(f"fraction must be a number in (0, 1]; got {fraction!r}")
        if not (isinstance(seed, (int, np.integer)) and not isinstance(seed, bool)
                and seed >= 0):
            raise ValueError(f"seed must be a non-negative int; got {seed!r}")
        self.fraction = float(fraction)
        self.resample = _check_resample(resample)
        self.seed = int(seed)

    def __call__(self, image):
        if self.fraction == 1:
            return image
        rng = np.random.default_rng(content_seed(image, self.seed))
        return crop_resize(image, self.fraction, rng, self.resample)

    def __repr__(self):
        return (
            f"RandomCropResize(fraction={self.fraction}, "
            f"resample={self.resample!r}, seed={self.seed})"
        )

    def __eq__(self, other):
        return type(other) is type(self) and repr(other) == repr(self)

    def __hash__(self):
        return hash(repr(self))


def crop_resize(image, fraction, rng, resample="bicubic"):
    """Crop a window of ``fraction`` of each side at a position drawn from
    ``rng``, and resize it to the image's size."""
    width, height = image.size
    w, h = _scaled_size(image.size, fraction)
    left = int(rng.integers(0, width - w + 1))
    top = int(rng.integers(0, height - h + 1))
    window = image.crop((left, top, left + w, top + h))
    return window.resize(image.size, RESAMPLE_FILTERS[resample])
