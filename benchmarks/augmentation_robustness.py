"""Resize/JPEG robustness of the fused detector and the head linear probe,
fitted with and without training-time augmentation (skacd.augmentation).

Train on sd-coco/train, test on sd-coco/val and the four forensynths groups,
clean and perturbed (bicubic resize factors, JPEG quality); AP per group,
mean over the unseen (forensynths) groups; mean ± std over seeds.

    OMP_NUM_THREADS=1 python benchmarks/augmentation_robustness.py \
        --data ../shared/data --cache /path/to/cache-copy --torch-threads 1
"""

import argparse
import json
import os
import platform
import time
from datetime import datetime, timezone

import numpy as np
import torch
from sklearn.metrics import average_precision_score

from skacd.augmentation import Augment, featurize_copies, with_copy_folds
from skacd.cache import FeatureCache
from skacd.datasets import load_image_folder
from skacd.evaluation import make_featurizer, make_method
from skacd.featurizers import JPEGCompression, Resize, to_spec
from skacd.fusion import reading_branches


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data")
    parser.add_argument("--cache", required=True)
    parser.add_argument("--encoder", default="efficientnet_lite2")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--n-copies", type=int, default=1)
    parser.add_argument("--augment", default="jpeg=0.5,blur=0.5,resize=0.5,crop=0")
    parser.add_argument("--resize-factors", nargs="+", type=float,
                        default=[1.0, 0.75, 0.5])
    parser.add_argument("--jpeg-quality", nargs="+", type=int, default=[75])
    parser.add_argument("--torch-threads", type=int, default=1)
    parser.add_argument("--out", default="benchmarks/results")
    args = parser.parse_args()
    torch.set_num_threads(args.torch_threads)
    start = time.perf_counter()

    train = load_image_folder(os.path.join(args.data, "sd-coco", "train"))
    test = load_image_folder([os.path.join(args.data, "sd-coco", "val"),
                              os.path.join(args.data, "forensynths")])
    y_tr, y_te = np.asarray(train.target), np.asarray(test.target)
    g_te = np.asarray(test.groups)
    groups = list(dict.fromkeys(g_te.tolist()))
    unseen = [g for g in groups if g.startswith("forensynths")]

    featurizer = reading_branches(make_featurizer(args.encoder, device="cpu"))
    featurizer.set_params(cache=FeatureCache(args.cache)).fit()
    names = featurizer.get_feature_names_out()
    augment = Augment.from_string(args.augment, seed=0)
    t0 = time.perf_counter()
    X_aug, y_aug, _ = featurize_copies(
        featurizer, train.paths, y_tr, augment=augment, n_copies=args.n_copies
    )
    X_tr = X_aug[:: args.n_copies + 1]
    tests = {"clean": featurizer.transform(test.paths)}
    for f in args.resize_factors:
        if f != 1.0:
            tests[f"resize {f:g}"] = featurizer.set_params(
                image_transform=Resize(f)).transform(test.paths)
    for q in args.jpeg_quality:
        tests[f"jpeg {q}"] = featurizer.set_params(
            image_transform=JPEGCompression(q)).transform(test.paths)
    featurizer.set_params(image_transform=None)
    featurize_s = time.perf_counter() - t0

    records = []
    for seed in args.seeds:
        for method in ("fused", "linear_probe"):
            for aug in (False, True):
                model = make_method(method, seed, device="cpu", feature_names=names)
                if aug:
                    model = with_copy_folds(model, args.n_copies).fit(X_aug, y_aug)
                else:
                    model.fit(X_tr, y_tr)
                label = f"{method}{' +aug' if aug else ''}"
                for test_name, X in tests.items():
                    scores = model.predict_proba(X)[:, 1]
                    row = {"method": label, "seed": seed, "test": test_name}
                    for g in groups:
                        m = g_te == g
                        row[g] = 100 * average_precision_score(y_te[m], scores[m])
                    row["mean unseen"] = float(np.mean([row[g] for g in unseen]))
                    records.append(row)
                print(f"seed {seed} {label} done", flush=True)

    methods = list(dict.fromkeys(r["method"] for r in records))
    cols = groups + ["mean unseen"]
    lines = [
        f"Encoder {args.encoder} (skacd layers {featurizer.layers}); "
        f"seeds {args.seeds}; {args.n_copies} augmented copy/image "
        f"({augment!r}); AP %, mean ± std over seeds.",
        "",
        "| test | method | " + " | ".join(cols) + " |",
        "| --- | --- | " + " | ".join("---:" for _ in cols) + " |",
    ]
    summary = {}
    for test_name in tests:
        for method in methods:
            rows = [r for r in records
                    if r["method"] == method and r["test"] == test_name]
            cells = []
            for c in cols:
                v = np.array([r[c] for r in rows])
                std = float(v.std(ddof=1)) if len(v) > 1 else 0.0
                summary.setdefault(test_name, {}).setdefault(method, {})[c] = {
                    "mean": float(v.mean()), "std": std
                }
                cells.append(f"{v.mean():.1f} ± {std:.1f}")
            lines.append(f"| {test_name} | {method} | " + " | ".join(cells) + " |")
    total = time.perf_counter() - start
    lines += ["", f"Featurization {featurize_s:.0f} s, total {total:.0f} s "
              f"({platform.processor() or platform.machine()}, "
              f"{os.cpu_count()} cores, torch threads {args.torch_threads})."]
    table = "\n".join(lines)
    print(table)
    os.makedirs(args.out, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    path = os.path.join(args.out, f"augmentation_robustness-{stamp}.json")
    with open(path, "w") as fh:
        json.dump({
            "config": {**vars(args), "augment": repr(augment),
                       "encoder_spec": to_spec(featurizer)},
            "records": records, "summary": summary, "table": table,
            "featurize_seconds": featurize_s, "total_seconds": total,
        }, fh, indent=1, default=str)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
