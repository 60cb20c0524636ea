"""Class separation of raw features versus attributions (the paper's Fig. 2e).

Fits the attribution space on a training folder (real images as source, then
generated images as source), and measures on a test folder the inter-class
distance, intra-class variance and Fisher's ratio of

* the raw encoder features,
* their attributions under each source class.

Prints a table and writes JSON. Example (the numbers in the issue notes)::

    python benchmarks/separation.py --train ../shared/data/sd-coco/train \\
        --test ../shared/data/sd-coco/val
"""

import argparse
import json
import os
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning

from skacd import AttributionSpace, TimmFeaturizer, __version__
from skacd.datasets import load_image_folder
from skacd.diagnostics import fisher_ratio, inter_class_distance, intra_class_variance
from skacd.evaluation import default_cache_dir

HERE = Path(__file__).resolve().parent
DATA = HERE.parent.parent / "shared" / "data"


def measures(X, y):
    return {
        "inter_class_distance": float(inter_class_distance(X, y)),
        "intra_class_variance": float(intra_class_variance(X, y)),
        "fisher_ratio": float(fisher_ratio(X, y)),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", default=str(DATA / "sd-coco" / "train"))
    parser.add_argument("--test", default=str(DATA / "sd-coco" / "val"))
    parser.add_argument("--encoder", default="efficientnet_lite2")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--cache", default=None, help="feature cache directory")
    parser.add_argument("--output", default=str(HERE / "results" / "separation.json"))
    args = parser.parse_args(argv)

    train, test = load_image_folder(args.train), load_image_folder(args.test)
    featurizer = TimmFeaturizer(
        args.encoder, cache=args.cache or default_cache_dir(), verbose=1
    )
    started = time.perf_counter()
    X_train = featurizer.fit_transform(train.paths)
    X_test = featurizer.transform(test.paths)
    featurize_s = time.perf_counter() - started
    y_train, y_test = np.asarray(train.target), np.asarray(test.target)

    rows = {"raw features": [measures(X_test, y_test)]}
    sources = ((0, "attributions, source=real"), (1, "attributions, source=fake"))
    for source, name in sources:
        rows[name] = []
        for seed in args.seeds:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                space = AttributionSpace(source_class=source, random_state=seed)
                space.fit(X_train, y_train)
            rows[name].append(measures(space.transform(X_test), y_test))

    header = (
        f"{'features (test set)':<28}{'inter-class D':>18}{'intra-class S':>18}"
        f"{'Fisher D/S':>20}"
    )
    lines = [
        f"Encoder: TimmFeaturizer({args.encoder!r}) (ImageNet weights); train "
        f"{args.train} ({len(y_train)} images), test {args.test} "
        f"({len(y_test)} images); "
        f"attribution rows: mean ± std over seeds {args.seeds}",
        header,
        "-" * len(header),
    ]
    summary = {}
    for name, runs in rows.items():
        cells, summary[name] = [], {}
        for key in ("inter_class_distance", "intra_class_variance", "fisher_ratio"):
            values = np.array([run[key] for run in runs])
            summary[name][key] = {"mean": values.mean(), "std": values.std()}
            spread = f" ± {values.std():.2g}" if len(values) > 1 else ""
            cell = f"{values.mean():.4g}" + spread
            cells.append(cell)
        lines.append(f"{name:<28}{cells[0]:>18}{cells[1]:>18}{cells[2]:>20}")
    print("\n".join(lines))

    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    record = {
        "encoder": args.encoder,
        "train": args.train,
        "test": args.test,
        "seeds": args.seeds,
        "featurize_seconds": featurize_s,
        "runs": rows,
        "summary": summary,
        "versions": {"skacd": __version__, "torch": torch.__version__},
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
    }
    Path(args.output).write_text(json.dumps(record, indent=2))
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
