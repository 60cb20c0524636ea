"""``skacd demo``: the whole method on an embedded default, offline."""

from ._common import EXIT_OK

#: The parent parsers (of :mod:`._arguments`) whose options it takes.
PARENTS = ("quiet",)
HELP = "run the whole method on an embedded default, offline"
DESCRIPTION = (
    "Fit and evaluate the detector next to a linear probe. Without --data: "
    "synthetic features (no images, no encoder). With --data: a folder in the "
    "<group>/{0_real,1_fake} layout, with an EfficientNet-Lite encoder."
)


def add_arguments(parser):
    """Add the options of ``skacd demo`` to ``parser``."""
    add = parser.add_argument
    add("--data", metavar="DIR", help="labelled image folder")
    add("--encoder", choices=["efficientnet_lite2", "efficientnet_lite0"],
        help="encoder for --data (default: efficientnet_lite2)")
    add("--seed", type=int, default=0, help="random seed (default: 0)")


def run(args):
    from .._demo import run_demo

    kwargs = {"data": args.data, "verbose": 0 if args.quiet else 1,
              "random_state": args.seed}
    if args.encoder is not None:
        kwargs["encoder"] = args.encoder
    run_demo(**kwargs)
    return EXIT_OK
