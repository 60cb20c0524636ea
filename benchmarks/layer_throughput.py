"""Model-only throughput of intermediate-layer readouts: what pruning saves.

A featurizer with ``layers=[0, 1, 2, 3]`` runs only the first four stages of
the network (timm's ``prune_intermediate_layers`` removes the rest); one that
also reads ``"embedding"`` runs the whole network once. This script times the
encoder's forward pass alone (preprocessed tensors already in memory, so image
decoding is not measured), interleaved over configurations, median of
repetitions after a warm-up, and counts each configuration's FLOPs with
``torch.utils.flop_counter``.

    python benchmarks/layer_throughput.py
    python benchmarks/layer_throughput.py --model efficientnet_lite0 --threads 1 2

Prints a table and writes JSON under ``benchmarks/results/``.
"""

import argparse
import json
import os
import platform
import statistics
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))

CONFIGS = {
    "embedding (full network)": None,
    "stages 0-3 (pruned)": [0, 1, 2, 3],
    "stages 0-3 + embedding": [0, 1, 2, 3, "embedding"],
}


def encoder_for(model, layers):
    from skacd import TimmFeaturizer

    featurizer = TimmFeaturizer(model, layers=layers, crop_pct=1.0, device="cpu")
    return featurizer.fit()._get_encoder()


def flops(module, batch):
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        module(batch[:1])
    return counter.get_total_flops()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="efficientnet_lite2")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)

    encoders = {
        name: encoder_for(args.model, layers) for name, layers in CONFIGS.items()
    }
    size = encoders["embedding (full network)"].identity["preprocessing"]["input_size"]
    generator = torch.Generator().manual_seed(0)
    batch = torch.randn((args.batch_size, *size), generator=generator)
    batch = batch.contiguous(memory_format=torch.channels_last)
    load_start = list(os.getloadavg())
    rows = []
    previous = torch.get_num_threads()
    try:
        for threads in args.threads:
            torch.set_num_threads(threads)
            times = {name: [] for name in CONFIGS}
            with torch.inference_mode():
                for encoder in encoders.values():  # warm-up
                    encoder.module(batch)
                for _ in range(args.repeats):
                    for name, encoder in encoders.items():
                        start = time.perf_counter()
                        encoder.module(batch)
                        times[name].append(time.perf_counter() - start)
            base = statistics.median(times["embedding (full network)"])
            for name, encoder in encoders.items():
                seconds = statistics.median(times[name])
                rows.append(
                    {
                        "config": name,
                        "layers": CONFIGS[name],
                        "threads": threads,
                        "n_features": encoder.embed_dim,
                        "gflops_per_image": round(
                            flops(encoder.module, batch) / 1e9, 3
                        ),
                        "images_per_second": round(args.batch_size / seconds, 1),
                        "speedup_vs_full": round(base / seconds, 2),
                    }
                )
    finally:
        torch.set_num_threads(previous)
    result = {
        "model": args.model,
        "input_size": list(size),
        "batch_size": args.batch_size,
        "repeats": args.repeats,
        "rows": rows,
        "machine": {
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "torch": torch.__version__,
            "load_average_start": load_start,
            "load_average_end": list(os.getloadavg()),
        },
    }
    print(f"model-only forward, {args.model} {size[1]}x{size[2]}, batch "
          f"{args.batch_size}, median of {args.repeats}; load average at start "
          f"{load_start[0]:.1f}")
    print(f"{'configuration':28s} {'threads':>7s} {'features':>8s} {'GFLOP/img':>9s} "
          f"{'img/s':>7s} {'speed-up':>8s}")
    for r in rows:
        print(f"{r['config']:28s} {r['threads']:7d} {r['n_features']:8d} "
              f"{r['gflops_per_image']:9.3f} {r['images_per_second']:7.1f} "
              f"{r['speedup_vs_full']:7.2f}x")
    path = args.json or os.path.join(
        HERE, "results", f"layer_throughput-{args.model}.json"
    )
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as fh:
        json.dump(result, fh, indent=2)
    print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
