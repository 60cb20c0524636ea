"""Throughput of skacd.distributed.featurize with 1 and 2 local Dask workers.

Featurizes ``--n-images`` JPEGs from ``../shared/data/sd-coco/train`` (real
and fake, interleaved) with the offline EfficientNet-Lite encoder on the CPU:

- in one process, without Dask (``featurizer.transform``; torch uses every
  core), as the baseline;
- with ``skacd.distributed.featurize`` on a ``LocalCluster`` of 1, then 2
  worker processes (1 thread each; Dask's nanny sets ``OMP_NUM_THREADS=1``).

For each setting it reports the first ("cold") call, which includes starting
torch and loading the encoder on every worker, and the best of ``--repeats``
"warm" calls. The load average is read before and after each measurement:
the machine may be shared, and throughput falls with load. The features of
every setting are compared with the baseline. Prints a table and writes JSON
to ``benchmarks/results/dask_throughput.json``.

    python benchmarks/dask_throughput.py
    python benchmarks/dask_throughput.py --workers 1 2 4 --n-images 400
"""

import argparse
import json
import logging
import os
import platform
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.normpath(
    os.path.join(HERE, "..", "..", "shared", "data", "sd-coco", "train")
)


def loadavg():
    with open("/proc/loadavg") as f:
        return [float(v) for v in f.read().split()[:3]]


def uptime():
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    except OSError:  # pragma: no cover
        return ""


def cpu_seconds():
    """User + system CPU time of this process (all its threads)."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def pick_images(root, n):
    """``n`` images, alternating real and fake, in a fixed order."""
    folders = [os.path.join(root, c) for c in ("0_real", "1_fake")]
    suffixes = (".jpg", ".jpeg", ".png")
    lists = [
        sorted(
            os.path.join(d, f) for f in os.listdir(d) if f.lower().endswith(suffixes)
        )
        for d in folders
    ]
    paths = [p for pair in zip(*lists) for p in pair][:n]
    if len(paths) < n:
        raise SystemExit(f"{root} holds {len(paths)} usable images; asked for {n}.")
    return paths


def timed(fn, client=None):
    """Run ``fn``; return its output, wall seconds, load and CPU seconds used.

    CPU seconds count this process and, with a client, every worker: unlike
    wall time they barely depend on what else runs on the machine.
    """
    def cpu():
        own = cpu_seconds()
        if client is None:
            return own
        return own + sum(client.run(cpu_seconds).values())

    before, cpu_before = loadavg(), cpu()
    start = time.perf_counter()
    out = fn()
    seconds = time.perf_counter() - start
    load = {"before": before, "after": loadavg(), "cpu_s": cpu() - cpu_before}
    return out, seconds, load


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=DATA, help="holds 0_real/ and 1_fake/")
    parser.add_argument("--n-images", type=int, default=200)
    parser.add_argument("--model", default="efficientnet_lite0",
                        choices=["efficientnet_lite0", "efficientnet_lite2"])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--chunk-size", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument(
        "--output", default=os.path.join(HERE, "results", "dask_throughput.json")
    )
    args = parser.parse_args(argv)

    import torch
    from distributed import Client, LocalCluster

    from skacd import TimmFeaturizer
    from skacd import distributed as skd

    paths = pick_images(args.data, args.n_images)
    featurizer = TimmFeaturizer(
        args.model, device="cpu", precision="float32", batch_size=args.batch_size,
        num_workers=0,
    )
    n = len(paths)
    rows = []
    print(f"{n} images from {args.data}; {args.model}; batch {args.batch_size}; "
          f"chunk {args.chunk_size}; {os.cpu_count()} CPUs; torch {torch.__version__}")
    uptime_start = uptime()
    print(f"load at start: {uptime_start}")

    # Baseline: one process, no Dask.
    _, cold, load_cold = timed(lambda: featurizer.transform(paths))
    warm_runs = [
        timed(lambda: featurizer.transform(paths)) for _ in range(args.repeats)
    ]
    reference = warm_runs[0][0]
    best = min(warm_runs, key=lambda r: r[1])
    rows.append({
        "setting": "1 process, no Dask",
        "workers": 0,
        "torch_threads": torch.get_num_threads(),
        "cold_s": cold,
        "load_cold": load_cold,
        "warm_s": best[1],
        "warm_img_per_s": n / best[1],
        "warm_s_all": [r[1] for r in warm_runs],
        "img_per_cpu_s": n / best[2]["cpu_s"],
        "load": best[2],
        "max_abs_diff_vs_baseline": 0.0,
    })

    first_worker_features = None
    for n_workers in args.workers:
        start = time.perf_counter()
        with LocalCluster(
            n_workers=n_workers, threads_per_worker=1, processes=True,
            dashboard_address=":0", silence_logs=logging.ERROR,
        ) as cluster, Client(cluster) as client:
            client.wait_for_workers(n_workers)
            startup = time.perf_counter() - start
            run = lambda: skd.featurize(  # noqa: E731
                featurizer, paths, client, chunk_size=args.chunk_size, verbose=0
            )
            first, cold, load_cold = timed(run, client)
            warm_runs = [timed(run, client) for _ in range(args.repeats)]
            threads = client.run(torch.get_num_threads)
        best = min(warm_runs, key=lambda r: r[1])
        diff = float(np.max(np.abs(best[0] - reference)))
        if first_worker_features is None:
            first_worker_features = best[0]
        rows.append({
            "setting": f"Dask LocalCluster, {n_workers} worker(s)",
            "workers": n_workers,
            "torch_threads": sorted(set(threads.values())),
            "cluster_start_s": startup,
            "cold_s": cold,
            "warm_s": best[1],
            "warm_img_per_s": n / best[1],
            "warm_s_all": [r[1] for r in warm_runs],
            "img_per_cpu_s": n / best[2]["cpu_s"],
            "load": best[2],
            "load_cold": load_cold,
            "max_abs_diff_vs_baseline": diff,
            "bitwise_equal_to_baseline": bool(np.array_equal(best[0], reference)),
            "cold_equal_to_warm": bool(np.array_equal(first, best[0])),
            # Workers all run torch on one thread: same bits whatever their number.
            "bitwise_equal_to_first_dask_setting": bool(
                np.array_equal(best[0], first_worker_features)
            ),
        })

    one = next((r for r in rows if r["workers"] == 1), None)
    header = (f"{'setting':<32} {'cold s':>7} {'warm s':>7} {'img/s':>7} "
              f"{'vs 1 wk':>7} {'img/CPU-s':>9} {'load 1m before/after':>21} "
              f"{'max |diff|':>10}")
    print(header)
    print("-" * len(header))
    for r in rows:
        speedup = r["warm_img_per_s"] / one["warm_img_per_s"] if one else float("nan")
        r["speedup_vs_1_worker"] = speedup
        cold = f"{r['cold_s']:.1f}"
        load = f"{r['load']['before'][0]:.2f} / {r['load']['after'][0]:.2f}"
        print(f"{r['setting']:<32} {cold:>7} {r['warm_s']:>7.1f} "
              f"{r['warm_img_per_s']:>7.1f} "
              f"{speedup:>7.2f} {r['img_per_cpu_s']:>9.1f} {load:>21} "
              f"{r['max_abs_diff_vs_baseline']:>10.1e}")
    uptime_end = uptime()
    print(f"load at end: {uptime_end}")

    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    with open(args.output, "w") as f:
        json.dump({
            "command": " ".join([os.path.basename(sys.executable)] + sys.argv),
            "n_images": n,
            "data": args.data,
            "model": args.model,
            "batch_size": args.batch_size,
            "chunk_size": args.chunk_size,
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "uptime_start": uptime_start,
            "uptime_end": uptime_end,
            "rows": rows,
        }, f, indent=2)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
