"""Training throughput of AttributionSpace and AttributionClassifier, per epoch.

Synthetic features (the paper's ProGAN training set is 720 000 images; CLIP
ViT-L/14 features have 768 dimensions), default hyper-parameters, and the time
of one epoch measured as the difference between a fit of ``1 + k`` epochs and
a fit of 1 epoch (so loading the data, building the module and the final
inference are not counted). Prints samples/s per epoch and writes JSON.

    python benchmarks/training_throughput.py                        # 720 000 x 768
    python benchmarks/training_throughput.py --n-samples 72000      # a tenth

On a slow machine run a fraction and extrapolate: one epoch's cost is linear in
the number of rows (the data stay on the device; each step draws a batch of
row indices there), so the seconds per epoch of the full set are the measured
seconds times ``720000 / n_samples``; the JSON says when a number is
extrapolated.
"""

import argparse
import json
import os
import sys
import time
import warnings

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
PAPER_ROWS = 720_000


def synthetic(n, d, seed=0):
    """Two classes of float32 rows on different low-rank manifolds plus noise."""
    rng = np.random.default_rng(seed)
    y = (np.arange(n) % 2).astype(np.int64)
    X = np.empty((n, d), dtype=np.float32)
    rank = 32
    for label in (0, 1):
        basis = rng.standard_normal((rank, d), dtype=np.float32) / np.sqrt(rank)
        rows = np.flatnonzero(y == label)
        for start in range(0, rows.size, 65536):
            chunk = rows[start : start + 65536]
            z = rng.standard_normal((chunk.size, rank), dtype=np.float32)
            noise = rng.standard_normal((chunk.size, d), dtype=np.float32)
            X[chunk] = z @ basis + 0.1 * noise
    return X, y


def time_fit(make, X, y, epochs):
    estimator = make(epochs)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning: stopped at max_epochs
        estimator.fit(X, y)
    seconds = time.perf_counter() - start
    assert estimator.n_iter_ == epochs, (estimator.n_iter_, epochs)
    return seconds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-samples", type=int, default=PAPER_ROWS)
    parser.add_argument("--n-features", type=int, default=768)
    parser.add_argument("--epochs", type=int, default=2, help="k extra epochs timed")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    from skacd import AttributionClassifier, AttributionSpace

    X, y = synthetic(args.n_samples, args.n_features)
    common = dict(device=args.device, random_state=0, n_iter_no_change=10**6, tol=0.0)
    estimators = {
        # fit() trains one autoencoder on the source rows (y == 0), with
        # early stopping on 10% of them: the default. Cross-fitting
        # (fit_transform, cv=5) costs 5 more such fits on 4/5 of the rows.
        "AttributionSpace": (
            lambda e: AttributionSpace(max_epochs=e, **common),
            int(np.sum(y == 0) * 0.9),
        ),
        "AttributionClassifier": (
            lambda e: AttributionClassifier(max_epochs=e, **common),
            args.n_samples,
        ),
    }
    rows = []
    load_start = os.getloadavg()
    for name, (make, n_train) in estimators.items():
        one = time_fit(make, X, y, 1)
        more = time_fit(make, X, y, 1 + args.epochs)
        per_epoch = (more - one) / args.epochs
        row = {
            "estimator": name,
            "n_samples": args.n_samples,
            "rows_trained_per_epoch": n_train,
            "fit_1_epoch_s": one,
            f"fit_{1 + args.epochs}_epochs_s": more,
            "seconds_per_epoch": per_epoch,
            "samples_per_s": n_train / per_epoch,
            "overhead_s": one - per_epoch,
        }
        if args.n_samples != PAPER_ROWS:
            scale = PAPER_ROWS / args.n_samples
            row["extrapolated_seconds_per_epoch_720k"] = per_epoch * scale
        rows.append(row)
        print(
            f"  {name}: {per_epoch:.2f} s/epoch, {n_train / per_epoch:,.0f} samples/s",
            file=sys.stderr,
        )
    result = {
        "benchmark": "training_throughput",
        "n_samples": args.n_samples,
        "n_features": args.n_features,
        "device": args.device,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "load_average_start": list(load_start),
        "load_average_end": list(os.getloadavg()),
        "rows": rows,
    }
    lines = [
        f"{args.n_samples:,} x {args.n_features} synthetic float32 features on "
        f"{args.device}, torch {torch.__version__} with {torch.get_num_threads()} "
        f"threads, load {' '.join(f'{v:.2f}' for v in load_start)}",
        "",
        "| estimator | rows trained / epoch | s / epoch | samples/s | fixed cost s | "
        "s / epoch at 720k |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        at_720k = row.get(
            "extrapolated_seconds_per_epoch_720k", row["seconds_per_epoch"]
        )
        note = " (extrapolated)" if "extrapolated_seconds_per_epoch_720k" in row else ""
        lines.append(
            f"| {row['estimator']} | {row['rows_trained_per_epoch']:,} | "
            f"{row['seconds_per_epoch']:.2f} | {row['samples_per_s']:,.0f} | "
            f"{row['overhead_s']:.2f} | {at_720k:.1f}{note} |"
        )
    print("\n".join(lines))
    path = args.json
    if path is None:
        directory = os.environ.get("OUT") or os.path.join(HERE, "results")
        os.makedirs(directory, exist_ok=True)
        name = f"training-throughput-{args.n_samples}-{args.device}.json"
        path = os.path.join(directory, name)
    with open(path, "w") as fh:
        json.dump(result, fh, indent=2)
    print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
