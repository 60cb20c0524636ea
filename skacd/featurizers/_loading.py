"""The image loading plan: from the inputs a featurizer takes to encoder batches.

Input coercion (:func:`as_items`), the dataset that decodes and preprocesses
each image, the collation that keeps failed images apart, the batched pixel
stage, the choice between DataLoader worker processes and a thread pool, and
the loop that runs the encoder with the copy of each batch's result to the
host overlapped with the next forward pass on CUDA (:func:`embed_images`).
"""

import contextlib
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from ..exceptions import ImageLoadError
from ._images import describe_item, limit_aspect_ratio, load_image

__all__ = ["PixelStage", "as_items", "content_for_key", "embed_images", "loader_plan"]

#: CPUs with at most this many cores decode in threads of the main process,
#: one batch at a time, instead of in DataLoader worker processes.
_THREADED_DECODE_MAX_CORES = 4
_MAX_WORKERS_CPU = 8
_MAX_WORKERS_CUDA = 16


def as_items(X):
    """Turn the accepted input containers into a list of items."""
    if isinstance(X, (str, os.PathLike)):
        raise ValueError(
            "X must be a sequence of images (file paths, PIL images or arrays); got "
            f"a single path {os.fspath(X)!r}. Wrap it in a list: [path]."
        )
    if isinstance(X, np.ndarray) and X.dtype == np.uint8 and X.ndim in (3, 4):
        return list(X)  # a stack of images (n, H, W[, C])
    if hasattr(X, "tolist") and not isinstance(X, np.ndarray):  # pandas Series
        X = X.tolist()
    if isinstance(X, np.ndarray):
        if X.ndim != 1:
            raise ValueError(
                "X must be a 1-D sequence of images or a uint8 array of shape "
                f"(n, H, W[, C]); got an array of shape {X.shape} and dtype {X.dtype}."
            )
        return X.tolist()
    try:
        return list(X)
    except TypeError:
        raise ValueError(
            f"X must be a sequence of images; got {type(X).__name__}."
        ) from None


def content_for_key(item, data):
    """The bytes a cache key is computed from, for one item."""
    if data is not None:
        return data
    from PIL import Image

    if isinstance(item, Image.Image):
        header = f"PIL:{item.mode}:{item.size}".encode()
        return header + item.tobytes()
    array = np.ascontiguousarray(item)
    header = f"array:{array.dtype}:{array.shape}".encode()
    return header + array.tobytes()


class PixelStage:
    """``preprocess`` = PIL transforms, then ``ToTensor``, then ``Normalize``.

    Workers run only the PIL part and hand over ``uint8`` pixels (a quarter of
    the bytes of float32); the conversion to float, the scaling by 1/255 and
    the normalisation run once per batch, on the device, with the very same
    float32 operations as ``ToTensor`` and ``Normalize`` (so the features are
    unchanged).
    """

    def __init__(self, pil, mean, std):
        self.pil = pil
        self.mean = torch.as_tensor(mean, dtype=torch.float32).reshape(1, -1, 1, 1)
        self.std = torch.as_tensor(std, dtype=torch.float32).reshape(1, -1, 1, 1)

    @classmethod
    def from_preprocess(cls, preprocess):
        """The split of ``preprocess``, or None if it does not have that shape."""
        from torchvision.transforms import Compose, Normalize

        steps = getattr(preprocess, "transforms", None)
        if not isinstance(preprocess, Compose) or not steps or len(steps) < 2:
            return None
        to_tensor, normalize = steps[-2], steps[-1]
        if (
            type(to_tensor).__name__ not in ("ToTensor", "MaybeToTensor")
            or type(normalize) is not Normalize
        ):
            return None
        stage = cls(Compose(list(steps[:-2])), normalize.mean, normalize.std)
        # Check the split on a small image: any custom step that does not
        # behave as assumed keeps the plain per-image preprocess.
        from PIL import Image

        rng = np.random.RandomState(0)
        probe = Image.fromarray(rng.randint(0, 256, (37, 53, 3), dtype=np.uint8))
        try:
            expected = preprocess(probe)
            pixels = stage.pixels(probe)
            got = stage(pixels[None], torch.device("cpu"), torch.contiguous_format)[0]
        except Exception:
            return None
        if got.shape != expected.shape or not torch.equal(got, expected):
            return None
        return stage

    def pixels(self, image):
        """An RGB PIL image -> its (H, W, 3) uint8 tensor after the PIL part."""
        image = self.pil(image)
        if not hasattr(image, "mode") or image.mode != "RGB":
            raise TypeError(f"expected an RGB PIL image, got {type(image).__name__}")
        return torch.from_numpy(np.array(image))  # a writable copy, as ToTensor

    def __call__(self, batch, device, memory_format):
        """(B, H, W, 3) uint8 on ``device`` -> normalised (B, 3, H, W) float32."""
        if self.mean.device != device:
            self.mean, self.std = self.mean.to(device), self.std.to(device)
        x = batch.permute(0, 3, 1, 2).float()  # channels-last layout, like the input
        x = x.contiguous(memory_format=memory_format)
        return x.div_(255).sub_(self.mean).div_(self.std)


def _available_cores():
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return os.cpu_count() or 1


class _ImageDataset(torch.utils.data.Dataset):
    # ``pool``: a thread pool decoding the images of one batch in parallel
    # (Pillow releases the GIL while decoding and resizing), in the process that
    # runs the model: used instead of worker processes on small CPUs.
    def __init__(
        self, items, positions, preprocess, image_transform, pixel_stage, pool
    ):
        self.items, self.positions = items, positions
        self.preprocess, self.image_transform = preprocess, image_transform
        self.pixel_stage, self.pool = pixel_stage, pool

    def __len__(self):
        return len(self.positions)

    def __getitems__(self, indices):
        if self.pool is not None and len(indices) > 1:
            return list(self.pool.map(self.__getitem__, indices))
        return [self[i] for i in indices]

    def __getitem__(self, i):
        position = self.positions[i]
        item = self.items[position]
        try:
            image = load_image(item, index=position)
            if self.image_transform is not None:
                image = self.image_transform(image)
            image = limit_aspect_ratio(image)
            if self.pixel_stage is not None:
                return position, self.pixel_stage.pixels(image), None
            return position, self.preprocess(image), None
        except ImageLoadError as exc:
            return position, None, exc
        except Exception as exc:  # preprocessing of a decoded image failed
            error = ImageLoadError(describe_item(item, position), repr(exc))
            return position, None, error


def _collate(samples):
    ok = [(p, t) for p, t, e in samples if e is None]
    failed = {p: e for p, _, e in samples if e is not None}
    positions = [p for p, _ in ok]
    batch = torch.stack([t for _, t in ok]) if ok else None
    return positions, batch, failed


def loader_plan(num_workers, n_batches, device, threadable):
    """``(num_workers, decode_threads)`` for featurizing ``n_batches``."""
    cores = _available_cores()
    if num_workers != "auto":
        return num_workers, 0
    if device.type == "cpu" and threadable and cores <= _THREADED_DECODE_MAX_CORES:
        # Few cores: worker processes would run beside torch's intra-op
        # threads and stall them; decode each batch with all cores in turn.
        return 0, cores
    if n_batches < 2:
        return 0, 0
    limit = _MAX_WORKERS_CUDA if device.type == "cuda" else _MAX_WORKERS_CPU
    return max(1, min(cores - 1, limit)), 0


def embed_images(encoder, items, positions, device, options, store, errors, progress):
    """Run ``encoder`` over ``items[positions]``, batch by batch.

    Parameters
    ----------
    encoder : Encoder
    items : list
        The inputs, as :func:`as_items` gives them.
    positions : list of int
        The items to embed.
    device : torch.device
    options : dict
        ``batch_size``, ``num_workers``, ``image_transform``, ``on_error``,
        ``normalize`` (the featurizer's parameters) and ``autocast`` (the
        context of the forward passes).
    store : callable
        ``store(batch_positions, features)``, called for each batch in turn
        with its float32 rows as an ndarray.
    errors : dict
        Failed positions and their :class:`ImageLoadError`, filled in.
    progress : progress bar or None
        Updated by the number of images done.
    """
    n_batches = -(-len(positions) // options["batch_size"])
    pixel_stage = encoder.pixel_stage
    num_workers, decode_threads = loader_plan(
        options["num_workers"], n_batches, device, pixel_stage is not None
    )
    with contextlib.ExitStack() as stack:
        pool = None
        if decode_threads > 1 and num_workers == 0:
            pool = stack.enter_context(
                ThreadPoolExecutor(decode_threads, thread_name_prefix="skacd-decode")
            )
        dataset = _ImageDataset(
            items,
            positions,
            encoder.preprocess,
            options["image_transform"],
            pixel_stage,
            pool,
        )
        loader = torch.utils.data.DataLoader(
            dataset,
            batch_size=options["batch_size"],
            shuffle=False,
            num_workers=num_workers,
            collate_fn=_collate,
            pin_memory=device.type == "cuda",
            persistent_workers=False,
            # Without its own generator a DataLoader draws its worker seed from
            # torch's global RNG, changing the caller's random state.
            generator=torch.Generator().manual_seed(0),
        )
        _consume(loader, encoder, device, options, store, errors, progress)


def _consume(loader, encoder, device, options, store, errors, progress):
    pixel_stage = encoder.pixel_stage
    forward = encoder.forward or encoder.module
    cuda = device.type == "cuda"

    def finish(batch_positions, out, copied):
        # On CUDA the copy to the host was queued behind the forward pass;
        # wait for it only now, after the next batch has been queued, so
        # that the GPU never idles while the host stores results.
        if copied is not None:
            copied.synchronize()
        store(batch_positions, out.numpy())
        if progress is not None:
            progress.update(len(batch_positions))

    queued = None
    try:
        with torch.inference_mode():
            for batch_positions, batch, failed in loader:
                if failed:
                    if options["on_error"] == "raise":
                        raise failed[min(failed)]  # the computed batch is kept below
                    errors.update(failed)
                    if progress is not None:
                        progress.update(len(failed))
                current = None
                if batch is not None:
                    batch = batch.to(device, non_blocking=True)
                    if pixel_stage is not None:
                        batch = pixel_stage(batch, device, encoder.memory_format)
                    with options["autocast"]:
                        out = forward(batch)
                    out = out.float()
                    columns = encoder.embedding_columns
                    if options["normalize"] and columns is not None:
                        out[:, columns] = torch.nn.functional.normalize(
                            out[:, columns], dim=-1
                        )
                    copied = None
                    if cuda:
                        out = out.to("cpu", non_blocking=True)  # pinned
                        copied = torch.cuda.Event()
                        copied.record()
                    current = (batch_positions, out, copied)
                done, queued = queued, current
                if done is not None:
                    finish(*done)
            done, queued = queued, None
            if done is not None:
                finish(*done)
    except BaseException:
        # Ctrl-C, a killed worker, a bad image with on_error="raise": store the
        # batch already computed, so that a rerun with the cache resumes after it.
        if queued is not None:
            try:
                finish(*queued)
            except Exception:
                pass
        raise
