"""Cross-generator benchmark: the standard protocol of ../shared/data.

Train on ``sd-coco/train`` (Stable Diffusion), test on ``sd-coco/val`` (seen
generator) and every ``forensynths`` group (unseen generators), with the
offline EfficientNet-Lite2 encoder and seeds 0 1 2. Compares, side by side, the
linear probe (UnivFD baseline), the attribution pipelines with the real and
with the fake class as source, and the unsupervised deviation score.

A thin wrapper over :func:`skacd.evaluation.cross_generator_benchmark`; it
takes the options of ``skacd evaluate`` with the standard protocol as
defaults, prints the Markdown table and writes JSON + Markdown under
``benchmarks/results/``. See ``benchmarks/README.md``.

    python benchmarks/cross_generator.py
    python benchmarks/cross_generator.py --jpeg-quality 100 90 75 50 \
        --blur-sigma 0 1 2 3 --train-sizes 50 100 200 300
"""

import argparse
import os
import sys

from skacd.cli import add_evaluate_arguments, run_evaluate

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.normpath(os.path.join(HERE, "..", "..", "shared", "data"))

STANDARD_PROTOCOL = {
    "train": [os.path.join(DATA, "sd-coco", "train")],
    "test": [os.path.join(DATA, "sd-coco", "val"), os.path.join(DATA, "forensynths")],
    "output_dir": os.path.join(HERE, "results"),
}


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_evaluate_arguments(parser, defaults=STANDARD_PROTOCOL)
    return run_evaluate(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
