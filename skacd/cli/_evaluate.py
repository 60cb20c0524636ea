"""``skacd evaluate``: the cross-generator benchmark on labelled folders.

The argparse front end of :func:`skacd.evaluation.cross_generator_benchmark`;
also ``python -m skacd.evaluation`` and ``benchmarks/cross_generator.py``
(through :func:`add_evaluate_arguments` and :func:`run_evaluate`).
"""

import argparse
import sys

from ..evaluation._featurization import default_cache_dir
from ..evaluation._methods import METHODS
from ._arguments import (
    ENCODER_HELP,
    _encoder_arg,
    _jpeg_quality,
    _non_negative_float,
    _non_negative_int,
    _positive_float,
    _positive_int,
    _share,
    _workers,
)
from ._common import EXIT_OK

HELP = "cross-generator benchmark on labelled folders"
DESCRIPTION = (
    "Cross-generator benchmark: fit the linear probe and the attribution "
    "detectors on --train folders and report per-group AP and accuracies on "
    "--test folders."
)


def add_arguments(parser, *, defaults=None):
    """Add the ``skacd evaluate`` options to an argparse parser.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The (sub)parser to fill.
    defaults : dict or None, default=None
        Default values by destination (e.g. ``{"train": [...], "test": [...],
        "output_dir": ...}``); ``--train`` and ``--test`` are required unless
        given here. ``benchmarks/cross_generator.py`` passes the standard
        protocol.

    Examples
    --------
    >>> import argparse
    >>> from skacd.evaluation import add_evaluate_arguments
    >>> parser = argparse.ArgumentParser()
    >>> add_evaluate_arguments(parser)
    >>> args = parser.parse_args(["--train", "train/", "--test", "test/"])
    >>> args.encoder, args.seeds
    ('efficientnet_lite2', [0, 1, 2])
    """
    defaults = dict(defaults or {})
    parser.add_argument(
        "--train", nargs="+", metavar="DIR", required="train" not in defaults,
        help="training folder(s): one source, real and fake",
    )
    parser.add_argument(
        "--test", nargs="+", metavar="DIR", required="test" not in defaults,
        help="test folder(s); every group of every root is reported",
    )
    parser.add_argument(
        "--encoder", default="efficientnet_lite2", type=_encoder_arg,
        metavar="SPEC", help=ENCODER_HELP,
    )
    parser.add_argument(
        "--seeds", nargs="+", type=_non_negative_int, default=[0, 1, 2],
        metavar="SEED",
        help="random_state of every fit (default: 0 1 2)",
    )
    parser.add_argument(
        "--methods", nargs="+", choices=METHODS, default="auto",
        metavar="METHOD",
        help=f"methods to compare, of {', '.join(METHODS)} (default: all for a "
        "timm encoder, the first four for others)",
    )
    cache = parser.add_mutually_exclusive_group()
    cache.add_argument(
        "--cache", metavar="DIR", default=None,
        help=f"feature cache directory (default: {default_cache_dir()}; "
        "$SKACD_CACHE_DIR overrides)",
    )
    cache.add_argument(
        "--no-cache", action="store_true", help="featurize without the cache"
    )
    parser.add_argument(
        "--jpeg-quality", nargs="+", type=_jpeg_quality, default=[], metavar="Q",
        help="JPEG-quality sweep on the test images, e.g. 100 90 75 50",
    )
    parser.add_argument(
        "--blur-sigma", nargs="+", type=_non_negative_float, default=[],
        metavar="SIGMA",
        help="Gaussian-blur sweep on the test images, e.g. 0 1 2 3",
    )
    parser.add_argument(
        "--resize-factor", nargs="+", type=_positive_float, default=[], metavar="F",
        help="bicubic-resize sweep on the test images (side scale), e.g. 1 0.75 0.5",
    )
    parser.add_argument(
        "--train-sizes", nargs="+", type=_positive_int, default=[], metavar="N",
        help="training-set-size curve, images per class, e.g. 50 100 200 300",
    )
    parser.add_argument(
        "--layers", nargs="+", default=None, metavar="LAYER",
        help="featurizer layers to read (stage/block indices and 'embedding'); "
        "default: 0 1 2 3 embedding when a method needs them, else the embedding",
    )
    parser.add_argument(
        "--pooling", default=None,
        help="how each layer is summarised: mean, std, mean_std, cls, ... "
        "(default: the featurizer's, auto)",
    )
    parser.add_argument(
        "--solver", choices=["adam", "pca"], default="adam",
        help="attribution space of attribution_real/attribution_fake/deviation: "
        "the paper's torch autoencoder (adam, default) or the linear one (pca)",
    )
    parser.add_argument(
        "--cost-images", type=_non_negative_int, default=0, metavar="N",
        help="time the featurization of N test images per configuration "
        "(embedding, early stages, fused) and report img/s (default: 0, off)",
    )
    parser.add_argument(
        "--max-epochs", type=_positive_int, default=None, metavar="N",
        help="override max_epochs of the torch estimators (default: theirs, 200)",
    )
    parser.add_argument(
        "--device", choices=["auto", "cpu", "cuda"], default="auto",
        help="device of the encoder and the estimators (default: auto)",
    )
    parser.add_argument(
        "--batch-size", type=_positive_int, default=32, metavar="N",
        help="featurizer batch size (default 32)",
    )
    parser.add_argument(
        "--torch-threads", type=_positive_int, default=None, metavar="N",
        help="torch.set_num_threads for the run (default: torch's own); 1 helps "
        "on a loaded, shared machine",
    )
    parser.add_argument(
        "--num-workers", type=_workers, default="auto", metavar="N",
        help="featurizer DataLoader workers: an int or auto (default)",
    )
    parser.add_argument(
        "--output-dir", default="results", metavar="DIR",
        help="where the .json and .md files go (default: ./results)",
    )
    parser.add_argument(
        "--name", default=None,
        help="output file stem (default: cross_generator-<UTC timestamp>)",
    )
    parser.add_argument(
        "--calibration-fraction", type=_share, default=0.0, metavar="F",
        help="hold this share of the real training images out of every fit and "
        "report ACC at the threshold calibrated on them (target FPR 5%%); "
        "default 0: no calibrated ACC",
    )
    parser.add_argument(
        "--quiet", action="store_true", help="no progress on stderr"
    )
    if defaults:
        parser.set_defaults(**defaults)


def _parse_layers(values):
    """``["0", "1", "embedding"]`` from the command line -> ``[0, 1, "embedding"]``."""
    if values is None:
        return None
    return [int(v) if v.isdigit() else v for v in values]


def run(args):
    """Run ``skacd evaluate`` from parsed arguments; errors propagate (to the
    exit-code policy of :func:`skacd.cli.main`)."""
    from ..evaluation import cross_generator_benchmark

    if args.no_cache:
        cache = None
    elif args.cache is not None:
        cache = args.cache
    else:
        cache = "default"
    result = cross_generator_benchmark(
        args.train,
        args.test,
        encoder=args.encoder,
        seeds=args.seeds,
        methods=args.methods,
        cache=cache,
        jpeg_qualities=args.jpeg_quality,
        blur_sigmas=args.blur_sigma,
        resize_factors=args.resize_factor,
        train_sizes=args.train_sizes,
        cost_images=args.cost_images,
        layers=_parse_layers(args.layers),
        pooling=args.pooling,
        solver=args.solver,
        max_epochs=args.max_epochs,
        device=args.device,
        batch_size=args.batch_size,
        num_workers=args.num_workers,
        torch_threads=args.torch_threads,
        verbose=0 if args.quiet else 1,
        calibration_fraction=args.calibration_fraction,
    )
    print(result.to_markdown())
    paths = result.write(args.output_dir, args.name)
    if not args.quiet:
        print(f"wrote {paths['markdown']} and {paths['json']}", file=sys.stderr)
    return EXIT_OK


def run_evaluate(args):
    """Run ``skacd evaluate`` from parsed arguments.

    Prints the Markdown table to stdout, writes ``<name>.json`` and
    ``<name>.md`` into ``--output-dir`` and reports where.

    Parameters
    ----------
    args : argparse.Namespace
        As filled by :func:`add_evaluate_arguments`.

    Returns
    -------
    exit_code : int
        0 on success, 1 for a runtime failure (a missing folder, bad data,
        unavailable weights), 2 for a usage error, 130 when interrupted; the
        message goes to stderr. The policy of every ``skacd`` subcommand
        (:func:`skacd.cli._main.run_command`).

    Examples
    --------
    >>> import argparse
    >>> from skacd.evaluation import add_evaluate_arguments, run_evaluate
    >>> parser = argparse.ArgumentParser()
    >>> add_evaluate_arguments(parser)
    >>> args = parser.parse_args(["--train", "no/such/dir", "--test", "no/such/dir"])
    >>> run_evaluate(args)  # the error goes to stderr
    1
    """
    from ._main import run_command  # _main imports this module

    return run_command(run, args, "evaluate")


def main(argv=None):
    """``python -m skacd.evaluation``: the same as ``skacd evaluate``."""
    parser = argparse.ArgumentParser(
        prog="skacd evaluate",
        description="Cross-generator benchmark: linear probe vs attribution "
        "pipelines vs deviation score, per test group, over several seeds.",
    )
    add_arguments(parser)
    return run_evaluate(parser.parse_args(argv))


#: The name benchmarks/cross_generator.py and skacd.evaluation know it by.
add_evaluate_arguments = add_arguments
