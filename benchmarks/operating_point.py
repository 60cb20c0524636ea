"""Operating points set on known-real photos: is the false-positive rate kept?

Fits the default detector (:func:`skacd.make_detector`: early-stage and
embedding branches, fused) on ``sd-coco/train`` and measures, at a threshold calibrated
on known-real photos only (:class:`skacd.ConformalThresholdClassifier`):

1. calibrated on the 1,000 reals of ``cifake-mini/train``, the FPR on the 500
   reals of ``cifake-mini/test`` (with its Clopper-Pearson 95% interval) and
   the fake ACC on its 500 fakes;
2. calibrated on a random half of the ``sd-coco/val`` reals, the FPR on the
   other half and the fake ACC on the ``sd-coco/val`` fakes (one split, and the
   mean over ``--splits`` random splits);
3. the one-class detector (:class:`skacd.OneClassDetector` on the stage 0-3
   features with the linear attribution space, as ``skacd fit --one-class``
   builds it; real photos of ``sd-coco/train`` only, cross-fitted threshold)
   on the dev protocol
   (``sd-coco/val`` and every ``forensynths`` group): AP and ACC at its
   calibrated threshold per group.

Prints a table and writes ``operating_point-<encoder>.json`` under
``--output-dir``. Every image is featurized once through ``--cache``.

    OMP_NUM_THREADS=1 python benchmarks/operating_point.py --cache DIR
"""

import argparse
import json
import os
import platform
import sys
import time
import warnings

import numpy as np
from scipy.stats import binomtest

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_DATA = os.path.join(HERE, "..", "..", "shared", "data")


def clopper_pearson(k, n, confidence=0.95):
    ci = binomtest(int(k), int(n)).proportion_ci(confidence, method="exact")
    return [float(ci.low), float(ci.high)]


def rate(flags):
    flags = np.asarray(flags, dtype=bool)
    return count(int(flags.sum()), int(flags.size))


def count(k, n):
    return {"rate": k / n, "k": k, "n": n, "ci95": clopper_pearson(k, n)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=DEFAULT_DATA, help="the shared data folder")
    parser.add_argument("--encoder", default="efficientnet_lite2")
    parser.add_argument("--cache", default=None, help="feature cache folder")
    parser.add_argument("--target-fpr", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--splits", type=int, default=20,
                        help="random halves of the sd-coco/val reals (default 20)")
    parser.add_argument("--max-epochs", type=int, default=None,
                        help="override max_epochs (quick runs only)")
    parser.add_argument("--output-dir", default=os.path.join(HERE, "results"))
    args = parser.parse_args(argv)

    import torch
    from sklearn.pipeline import make_pipeline

    from skacd import (
        AttributionSpace,
        BlockSelector,
        ConformalThresholdClassifier,
        OneClassDetector,
    )
    from skacd.datasets import load_image_folder
    from skacd.featurizers import from_spec
    from skacd.fusion import default_branches, make_fusion, reading_branches
    from skacd.metrics import detection_report

    started = time.perf_counter()
    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    featurizer = reading_branches(
        from_spec(args.encoder, device="cpu", num_workers=0, batch_size=32,
                  cache=args.cache)
    )
    featurizer.fit()
    names = featurizer.get_feature_names_out()
    early = BlockSelector(default_branches(names)["early"], feature_names=names)

    def features(root):
        data = load_image_folder(os.path.join(args.data, root))
        t0 = time.perf_counter()
        result = featurizer.featurize(list(data.paths))
        log(f"  {root}: {len(data.paths)} images, {result.n_cached} from cache, "
            f"{time.perf_counter() - t0:.1f} s")
        if result.errors:
            raise ValueError(f"{len(result.errors)} unreadable images under {root}")
        return result.features, np.asarray(data.target), np.asarray(data.groups)

    log("featurizing:")
    X_train, y_train, _ = features("sd-coco/train")
    X_val, y_val, _ = features("sd-coco/val")
    X_ctr, y_ctr, _ = features("cifake-mini/train")
    X_cte, y_cte, _ = features("cifake-mini/test")
    X_fs, y_fs, g_fs = features("forensynths")

    epochs = {} if args.max_epochs is None else {"max_epochs": args.max_epochs}
    seed, target = args.seed, args.target_fpr
    log("fitting the default detector on sd-coco/train:")
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        head = make_fusion(names, random_state=seed).fit(X_train, y_train)
    fit_seconds = time.perf_counter() - t0
    log(f"  {fit_seconds:.1f} s")

    results = {"target_fpr": target}

    # 1. cifake-mini: calibrate on train reals, test on test reals and fakes
    cal = ConformalThresholdClassifier(head, target_fpr=target).fit(X_ctr[y_ctr == 0])
    pred = cal.predict(X_cte)
    proba = head.predict_proba(X_cte)[:, 1]
    results["cifake"] = {
        "calibration": "cifake-mini/train reals",
        "n_calibration": cal.n_calibration_samples_,
        "threshold": cal.threshold_,
        "fpr": rate(pred[y_cte == 0] == 1),
        "fake_acc": rate(pred[y_cte == 1] == 1),
        "fpr_at_0.5": rate(proba[y_cte == 0] > 0.5),
        "fake_acc_at_0.5": rate(proba[y_cte == 1] > 0.5),
        "ap": float(detection_report(y_cte, proba).pooled["ap"]),
    }

    # 2. sd-coco/val: calibrate on half of its reals, test on the other half
    real = np.flatnonzero(y_val == 0)
    fake = np.flatnonzero(y_val == 1)
    rng = np.random.RandomState(seed)
    splits = []
    for _ in range(args.splits):
        perm = rng.permutation(real)
        half = perm[: real.size // 2]
        rest = perm[real.size // 2:]
        c = ConformalThresholdClassifier(head, target_fpr=target).fit(X_val[half])
        splits.append({
            "threshold": c.threshold_,
            "fpr": rate(c.predict(X_val[rest]) == 1),
            "fake_acc": rate(c.predict(X_val[fake]) == 1),
        })
    first = splits[0]
    proba_val = head.predict_proba(X_val)[:, 1]
    results["sd_coco_val"] = {
        "calibration": f"a random half ({real.size // 2}) of the sd-coco/val reals",
        "n_calibration": real.size // 2,
        "first_split": first,
        "mean_over_splits": {
            "n_splits": len(splits),
            "fpr": float(np.mean([s["fpr"]["rate"] for s in splits])),
            "fake_acc": float(np.mean([s["fake_acc"]["rate"] for s in splits])),
            # the tests of every split pooled (not independent: an interval on
            # them would be too narrow, so none is reported)
            "fpr_pooled_count": [sum(s["fpr"]["k"] for s in splits),
                                 sum(s["fpr"]["n"] for s in splits)],
        },
        "fpr_at_0.5": rate(proba_val[real] > 0.5),
        "fake_acc_at_0.5": rate(proba_val[fake] > 0.5),
    }

    # 3. one-class detector on the dev protocol
    log("fitting the one-class detector on the sd-coco/train reals:")
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        one = make_pipeline(
            early,
            OneClassDetector(
                AttributionSpace(solver="pca", latent_dim=32, random_state=seed,
                                 device="cpu", **epochs),
                target_fpr=target, random_state=seed,
            ),
        ).fit(X_train[y_train == 0])
    one_seconds = time.perf_counter() - t0
    log(f"  {one_seconds:.1f} s")
    X_dev = np.concatenate([X_val, X_fs])
    y_dev = np.concatenate([y_val, y_fs])
    g_fs = np.asarray([f"forensynths/{g}" for g in g_fs], dtype=object)
    g_dev = np.concatenate([np.full(y_val.size, "sd-coco/val", dtype=object), g_fs])
    deviation = one[-1].deviation(one[0].transform(X_dev))
    report = detection_report(y_dev, deviation, g_dev, threshold=one[-1].threshold_)
    results["one_class"] = {
        "fit": "OneClassDetector(AttributionSpace(solver='pca', latent_dim=32), "
               "cv=5) on the stage 0-3 features of the sd-coco/train reals",
        "threshold": one[-1].threshold_,
        "n_calibration": one[-1].n_calibration_samples_,
        "fit_seconds": round(one_seconds, 1),
        "report": report.to_dict(),
    }
    default_report = detection_report(y_dev, head.predict_proba(X_dev)[:, 1], g_dev)
    results["default_detector_dev"] = default_report.to_dict()

    # -- table ------------------------------------------------------------------
    def pct(r):
        return (f"{100 * r['rate']:5.1f}% ({r['k']}/{r['n']}; 95% CI "
                f"{100 * r['ci95'][0]:.1f}-{100 * r['ci95'][1]:.1f}%)")

    c1, c2 = results["cifake"], results["sd_coco_val"]
    lines = [
        f"## Operating point at target FPR {100 * target:g}% — encoder "
        f"{args.encoder}, default detector fitted on sd-coco/train (seed {seed})",
        "",
        "| calibrated on | tested on | threshold (prob_fake >) | FPR on reals | "
        "fake ACC | FPR / fake ACC at 0.5 |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
        f"| cifake-mini/train, {c1['n_calibration']} reals | cifake-mini/test | "
        f"{c1['threshold']:.4g} | {pct(c1['fpr'])} | {pct(c1['fake_acc'])} | "
        f"{100 * c1['fpr_at_0.5']['rate']:.1f}% / "
        f"{100 * c1['fake_acc_at_0.5']['rate']:.1f}% |",
        f"| half of sd-coco/val reals ({c2['n_calibration']}) | other half + val fakes "
        f"| {c2['first_split']['threshold']:.4g} | {pct(c2['first_split']['fpr'])} | "
        f"{pct(c2['first_split']['fake_acc'])} | "
        f"{100 * c2['fpr_at_0.5']['rate']:.1f}% / "
        f"{100 * c2['fake_acc_at_0.5']['rate']:.1f}% |",
        f"| same, mean of {args.splits} random halves | | | "
        f"{100 * c2['mean_over_splits']['fpr']:.1f}% | "
        f"{100 * c2['mean_over_splits']['fake_acc']:.1f}% | |",
        "",
        f"## One-class detector (sd-coco/train reals only), threshold cross-fitted at "
        f"{100 * target:g}% FPR",
        "",
        report.to_markdown(digits=1, percent=True, metrics=[
            "ap", "acc", "real_acc", "fake_acc", "acc_oracle", "tpr_at_fpr_5",
            "n_real", "n_fake"]),
        "",
        "ACC, real ACC and fake ACC at the calibrated threshold (deviation > "
        f"{one[-1].threshold_:.4g}); oracle ACC and TPR@5% choose thresholds on the "
        "test images (optimistic).",
        "",
        "## Default detector (both classes) on the same groups, for reference",
        "",
        default_report.to_markdown(digits=1, percent=True, metrics=[
            "ap", "acc", "real_acc", "fake_acc", "acc_oracle", "tpr_at_fpr_5",
            "n_real", "n_fake"]),
    ]
    table = "\n".join(lines)
    print(table)

    results["config"] = {
        "encoder": args.encoder, "seed": seed, "max_epochs": args.max_epochs,
        "data": os.path.abspath(args.data), "splits": args.splits,
        "detector": "skacd.make_detector() (early-stage + embedding branches, fused), "
                    f"encoder {args.encoder}",
        "fit_seconds": round(fit_seconds, 1),
        "total_seconds": round(time.perf_counter() - started, 1),
        "machine": {"platform": platform.platform(), "cpu_count": os.cpu_count(),
                    "torch_threads": torch.get_num_threads(),
                    "omp_num_threads": os.environ.get("OMP_NUM_THREADS")},
    }
    os.makedirs(args.output_dir, exist_ok=True)
    path = os.path.join(args.output_dir, f"operating_point-{args.encoder}.json")
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(results, fh, indent=2, allow_nan=False,
                  default=lambda v: None if v != v else float(v))
        fh.write("\n")
    with open(path[:-5] + ".md", "w", encoding="utf-8") as fh:
        fh.write(table + "\n")
    log(f"wrote {path} ({time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
