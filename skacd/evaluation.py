"""Cross-generator evaluation: train on one source, test on unseen generators.

The paper's claim (arXiv:2603.00717) is generalisation to generators never
seen in training. :func:`cross_generator_benchmark` measures exactly that, in
one run and side by side:

- ``"linear_probe"``: logistic regression on the frozen features (the UnivFD
  baseline),
- ``"attribution_real"``: ``AttributionSpace(source_class=0)`` followed by an
  ``AttributionClassifier`` (the real class as source),
- ``"attribution_fake"``: the same with ``source_class=1`` (Table 3),
- ``"deviation"``: the unsupervised deviation score of the attribution space
  alone (source real), for which only AP is defined,

and, on intermediate-layer features (the featurizer then reads
``layers=[0, 1, 2, 3, "embedding"]``; see :func:`skacd.make_detector`):

- ``"linear_probe_early"``: the linear probe on the early stages,
- ``"branch_early"`` / ``"branch_embedding"``: one branch of the fused
  detector alone (block selection, linear attribution space, logistic
  regression),
- ``"deviation_early"`` / ``"deviation_embedding"``: the deviation score of
  each branch's attribution space (AP only),
- ``"one_class"``: a :class:`~skacd.OneClassDetector` on the early stages of
  the real training images alone (no fake image), its ACC at the threshold
  cross-fitted on them at a 5% target FPR (``skacd fit --one-class``),
- ``"fused"``: the fused detector, the default of :func:`skacd.make_detector`
  and of ``skacd fit``.

Head methods read the ``embedding`` block when the features hold several.

Every image is featurized once per run (through the persistent
:class:`~skacd.cache.FeatureCache`, so a second identical run reads every
feature from disk); all methods and seeds are then fitted on the same arrays.
Optional sweeps perturb the *test* images only (JPEG re-compression, Gaussian
blur; the paper's Fig. 7) or subsample the training set (Fig. 6); their
results are records in the format of
:class:`~skacd.diagnostics.RobustnessCurveDisplay`.

The same code runs as ``skacd evaluate``, ``python -m skacd.evaluation`` and
``python benchmarks/cross_generator.py``.
"""

import argparse
import json
import math
import os
import platform
import sys
import time
import warnings
from datetime import datetime, timezone

import numpy as np

from ._json import json_safe

__all__ = [
    "METHODS",
    "HEAD_METHODS",
    "CrossGeneratorResult",
    "add_evaluate_arguments",
    "cross_generator_benchmark",
    "default_cache_dir",
    "make_featurizer",
    "make_method",
    "run_evaluate",
]

#: The methods compared, in table order.
METHODS = (
    "linear_probe",
    "attribution_real",
    "attribution_fake",
    "deviation",
    "linear_probe_early",
    "branch_embedding",
    "branch_early",
    "deviation_embedding",
    "deviation_early",
    "one_class",
    "fused",
)
#: The methods on the final embedding alone (any encoder).
HEAD_METHODS = ("linear_probe", "attribution_real", "attribution_fake", "deviation")
#: The early blocks: skacd.fusion.DEFAULT_BRANCHES["early"], spelled out here
#: because this module is imported without torch (the CLI's --help); a test
#: checks that the two agree.
_EARLY_BLOCKS = ("stage0", "stage1", "stage2", "stage3")
#: The blocks each method reads when the featurizer reads several layers.
_METHOD_BLOCKS = {
    "linear_probe_early": _EARLY_BLOCKS,
    "branch_early": _EARLY_BLOCKS,
    "deviation_early": _EARLY_BLOCKS,
    "one_class": _EARLY_BLOCKS,
    "fused": None,  # every block, through its branches
}
_HEAD_BLOCKS = ("embedding",)

#: The metrics of skacd.metrics the benchmark reports per group, in its table
#: order (fractions in [0, 1]); ``deviation`` has AP only.
METRICS = ("ap", "acc", "real_acc", "fake_acc", "acc_cal", "real_acc_cal",
           "acc_oracle", "tpr_at_fpr_1", "tpr_at_fpr_5")
_AP_ONLY = frozenset({"deviation", "deviation_embedding", "deviation_early"})

_METHOD_NOTES = {
    "linear_probe": "StandardScaler + LogisticRegression(C=1.0, lbfgs, max_iter=5000) "
    "on the frozen features (UnivFD baseline); deterministic, so its spread over "
    "seeds is 0 unless the training set is subsampled",
    "attribution_real": "AttributionSpace(source_class=0) + AttributionClassifier(), "
    "estimator defaults, random_state=seed",
    "attribution_fake": "AttributionSpace(source_class=1) + AttributionClassifier(), "
    "estimator defaults, random_state=seed",
    "deviation": "-AttributionSpace(source_class=0).score_samples (the attribution "
    "space of attribution_real, fitted on all real training rows); AP only",
    "linear_probe_early": "the linear probe on the stage 0-3 columns",
    "branch_embedding": "skacd.fusion.make_branch(['embedding']): "
    "AttributionSpace(solver='pca', latent_dim=32) + StandardScaler + "
    "LogisticRegression",
    "branch_early": "skacd.fusion.make_branch(['stage0', ..., 'stage3']): as "
    "branch_embedding on the stage 0-3 columns",
    "deviation_embedding": "-score_samples of branch_embedding's attribution space; "
    "AP only",
    "deviation_early": "-score_samples of branch_early's attribution space; AP only",
    "one_class": "OneClassDetector(AttributionSpace(solver='pca', latent_dim=32), "
    "target_fpr=0.05, cv=5) on the stage 0-3 columns of the real training rows "
    "only (skacd fit --one-class); ACC at its cross-fitted threshold",
    "fused": "skacd.fusion.make_fusion(): both branches, combined by "
    "ScoreAveragingClassifier on out-of-fold branch scores (cv=5)",
}


def methods_need_layers(methods):
    """Whether any of ``methods`` reads intermediate-layer blocks."""
    return any(m in _METHOD_BLOCKS for m in methods)


def default_cache_dir():
    """The feature cache directory used when none is given.

    ``$SKACD_CACHE_DIR`` when set, else ``$XDG_CACHE_HOME/skacd/features``,
    else ``~/.cache/skacd/features``. The cache is content-addressed (keyed by
    encoder, weights, preprocessing, perturbation and image bytes), so one
    cache can safely serve every project and working directory.

    Returns
    -------
    directory : str
        An absolute path (not created here).
    """
    explicit = os.environ.get("SKACD_CACHE_DIR")
    if explicit:
        return os.path.abspath(os.path.expanduser(explicit))
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache")
    return os.path.abspath(os.path.expanduser(os.path.join(base, "skacd", "features")))


# ---------------------------------------------------------------------------
# Building blocks: the featurizer and the methods
# ---------------------------------------------------------------------------


def make_featurizer(encoder, *, device="auto", batch_size=32, num_workers="auto"):
    """Build the frozen featurizer an ``encoder`` specification names.

    Parameters
    ----------
    encoder : str or featurizer
        An encoder spec (see :func:`skacd.featurizers.from_spec`), e.g.
        ``"efficientnet_lite2"``, ``"timm:<architecture>[:<checkpoint>]"``,
        ``"clip:<model>[:<tag>]"``, ``"clip:<model>:<tag>:<checkpoint>"`` or
        ``"clip:skacd-tiny-ViT:none"`` (the tiny test encoder); or a
        featurizer object (``CLIPFeaturizer``, ``TimmFeaturizer``), which is
        cloned; ``device``, ``batch_size`` and ``num_workers`` are then its
        own.
    device : {"auto", "cpu", "cuda"}, default="auto"
        Device of a featurizer built from a string.
    batch_size : int, default=32
        Images per forward pass of a featurizer built from a string.
    num_workers : int or "auto", default="auto"
        DataLoader workers of a featurizer built from a string.

    Returns
    -------
    featurizer : BaseFeaturizer
        An unfitted featurizer (no cache, no image transform set yet).
    """
    from sklearn.base import clone

    from .featurizers import BaseFeaturizer, from_spec

    if isinstance(encoder, BaseFeaturizer):
        return clone(encoder)
    if not isinstance(encoder, str):
        raise TypeError(
            "encoder must be a string such as 'efficientnet_lite2' or "
            f"'clip:ViT-L-14:openai', or a featurizer object; got {encoder!r}."
        )
    try:
        return from_spec(
            encoder, device=device, batch_size=batch_size, num_workers=num_workers
        )
    except ValueError as exc:
        raise ValueError(f"Unknown encoder {encoder!r}: {exc}") from None


def make_method(name, seed, *, device="auto", max_epochs=None, feature_names=None,
                solver="adam"):
    """The unfitted estimator of one benchmark method.

    Hyper-parameters are the estimators' defaults, fixed before any test
    result was seen and never tuned per test group; only ``random_state``
    (and ``max_epochs``, when given, for quick runs) is set.

    Parameters
    ----------
    name : {"linear_probe", "attribution_real", "attribution_fake", "deviation"}
        The method.
    seed : int
        ``random_state`` of the torch estimators.
    device : {"auto", "cpu", "cuda"}, default="auto"
        Device of the torch estimators.
    max_epochs : int or None, default=None
        Overrides ``max_epochs`` of ``AttributionSpace`` and
        ``AttributionClassifier``; None keeps their defaults (200).
    feature_names : array-like of str or None, default=None
        The featurizer's column names when it reads several layers: each
        method then starts with a :class:`~skacd.BlockSelector` of its blocks
        (the ``embedding`` block for the head methods). Needed by the
        ``*_early``, ``branch_*`` and ``fused`` methods.

    Returns
    -------
    estimator : estimator
        ``linear_probe``: ``make_pipeline(StandardScaler(),
        LogisticRegression(max_iter=5000))``; ``attribution_*``:
        ``make_pipeline(AttributionSpace(source_class=...),
        AttributionClassifier())``; ``deviation``:
        ``AttributionSpace(source_class=0)``.
    """
    from sklearn.pipeline import make_pipeline

    from .fusion import BlockSelector, make_branch, make_fusion

    if name not in METHODS:
        raise ValueError(f"Unknown method {name!r}; choose from {list(METHODS)}.")
    blocks = _METHOD_BLOCKS.get(name, _HEAD_BLOCKS)
    if feature_names is None:
        if name in _METHOD_BLOCKS:
            raise ValueError(
                f"The method {name!r} needs intermediate-layer features: pass the "
                "featurizer's feature_names (its layers must include stages 0-3 "
                "and 'embedding')."
            )
        return _head_method(
            name, seed, device=device, max_epochs=max_epochs, solver=solver
        )
    if name == "fused":
        return make_fusion(feature_names, random_state=seed)
    if name == "one_class":
        from .attribution import AttributionSpace
        from .one_class import OneClassDetector

        space = AttributionSpace(solver="pca", latent_dim=32, random_state=seed)
        return make_pipeline(
            BlockSelector(list(blocks), feature_names=list(feature_names)),
            OneClassDetector(space, target_fpr=0.05, random_state=seed),
        )
    if name.startswith(("branch_", "deviation_")):
        branch = make_branch(blocks, feature_names, random_state=seed)
        return branch if name.startswith("branch_") else branch[:2]
    select = BlockSelector(list(blocks), feature_names=list(feature_names))
    base = name.replace("_early", "")
    return make_pipeline(
        select,
        _head_method(base, seed, device=device, max_epochs=max_epochs, solver=solver),
    )


def _head_method(name, seed, *, device, max_epochs, solver):
    """The head methods of :func:`make_method` on the features as given."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from .attribution import AttributionSpace
    from .classifier import AttributionClassifier

    torch_params = {"device": device, "random_state": seed}
    if max_epochs is not None:
        torch_params["max_epochs"] = int(max_epochs)
    space_params = dict(torch_params, solver=solver)
    if name == "linear_probe":
        # Standardised features: the encoders' raw feature scales differ
        # widely (EfficientNet pooled activations vs. unit-norm CLIP), and
        # one C=1.0 then means the same regularisation for both.
        return make_pipeline(
            StandardScaler(), LogisticRegression(max_iter=5000, random_state=seed)
        )
    if name in ("attribution_real", "attribution_fake"):
        source = 0 if name == "attribution_real" else 1
        return make_pipeline(
            AttributionSpace(source_class=source, **space_params),
            AttributionClassifier(**torch_params),
        )
    if name == "deviation":
        return AttributionSpace(source_class=0, **space_params)
    raise ValueError(f"Unknown method {name!r}; choose from {list(METHODS)}.")


def _fake_scores(name, model, X):
    """Scores, larger meaning more likely fake, and whether ACC is defined."""
    if name in _AP_ONLY:
        return -model.score_samples(X), False
    if name == "one_class":  # its deviation; fake above threshold_ (see _report)
        return model[-1].deviation(model[0].transform(X)), True
    return model.predict_proba(X)[:, 1], True


def _threshold(name, model):
    """The decision threshold of a method's scores: 0.5, or the one it set itself."""
    if name == "one_class":  # cross-fitted on the real training rows
        return float(model[-1].threshold_)
    return 0.5


def _report(name, model, X, y, groups, keep_scores=False, X_cal=None):
    """Per-group metrics of one fitted method as a plain dict.

    ``X_cal``: held-out real training rows; their scores set the calibrated
    threshold of the ``*_cal`` metrics (see :func:`skacd.metrics.detection_report`).
    """
    from .metrics import AT_THRESHOLD, detection_report

    scores, has_acc = _fake_scores(name, model, X)
    cal = None if X_cal is None else _fake_scores(name, model, X_cal)[0]
    report = detection_report(
        y, scores, groups, threshold=_threshold(name, model), calibration_scores=cal
    ).to_dict()
    if not has_acc:  # a deviation score has no calibrated threshold
        for row in [*report["groups"].values(), report["mean"], report["pooled"]]:
            for key in AT_THRESHOLD:
                row[key] = None
        report["threshold"] = None
    if keep_scores:
        return report, [round(float(v), 6) for v in scores]
    return report


# ---------------------------------------------------------------------------
# Featurization
# ---------------------------------------------------------------------------


def _featurize(featurizer, paths, label, log):
    start = time.perf_counter()
    result = featurizer.featurize(paths)
    seconds = time.perf_counter() - start
    n = len(paths)
    stats = {
        "set": label,
        "n_images": n,
        "n_cached": int(result.n_cached),
        "n_computed": n - int(result.n_cached),
        "seconds": round(seconds, 3),
    }
    log(
        f"  {label}: {n} images, {stats['n_cached']} from cache, "
        f"{stats['n_computed']} computed, {seconds:.1f} s"
    )
    return result.features, stats


def _transform_for(param, value):
    from .featurizers import GaussianBlur, JPEGCompression, Resize

    if param == "resize_factor":
        # factor 1 is the identity: reuse the clean features.
        return None if float(value) == 1 else Resize(float(value))
    if param == "jpeg_quality":
        return JPEGCompression(int(value))
    if param == "blur_sigma":
        # sigma 0 is the identity: reuse the clean features.
        return None if float(value) == 0 else GaussianBlur(float(value))
    raise ValueError(param)  # pragma: no cover - internal


# ---------------------------------------------------------------------------
# Statistics and formatting
# ---------------------------------------------------------------------------


def _finite(values):
    return [v for v in values if v is not None and not math.isnan(v)]


def _stats(values):
    """Mean and sample standard deviation (ddof=1) over seeds."""
    kept = _finite(values)
    if not kept:
        return {"mean": None, "std": None, "n": 0}
    mean = float(np.mean(kept))
    std = float(np.std(kept, ddof=1)) if len(kept) > 1 else None
    return {"mean": mean, "std": std, "n": len(kept)}


def _cell(stat, digits=1):
    if stat is None or stat["mean"] is None:
        return "—"
    text = f"{100 * stat['mean']:.{digits}f}"
    if stat["std"] is not None:
        text += f" ± {100 * stat['std']:.{digits}f}"
    return text


def _md_table(header, rows, align=None):
    align = align or (["---"] + ["---:"] * (len(header) - 1))
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


class CrossGeneratorResult:
    """What :func:`cross_generator_benchmark` returns.

    Not meant to be built by hand. All metrics are fractions in [0, 1]; the
    tables show percent. ``None`` marks an undefined value (ACC of the
    deviation score, a standard deviation over one seed).

    Attributes
    ----------
    config : dict
        The run's configuration: encoder (spec, featurizer parameters,
        weights identity), data roots and counts, seeds, methods and their
        settings, sweeps, cache, versions and machine.
    featurization : dict
        ``"sets"``: per featurized set (``train``, ``test``, each perturbed
        test set) the images, how many came from the cache, how many were
        computed and the seconds; ``"clean"``/``"perturbed"``: their totals.
    runs : list of dict
        One per (seed, method) on the clean test set: ``"seed"``,
        ``"method"``, ``"fit_seconds"``, ``"warnings"``, ``"report"``
        (:meth:`skacd.metrics.DetectionReport.to_dict`: per group, the
        unweighted ``mean`` over groups and the ``pooled`` row) and
        ``"scores"`` (the fake score of every test image, in the order of
        ``config["data"]["test_paths"]``, for paired comparisons).
    summary : dict
        ``summary[method][group][metric]`` is ``{"mean", "std", "n"}`` over
        seeds, for every test group and for ``"mean"`` (the mean over
        groups, taken per seed first).
    records : list of dict
        Sweep results averaged over the test groups, one record per
        (param, value, method, seed), in the format of
        :class:`~skacd.diagnostics.RobustnessCurveDisplay` (keys ``method``,
        ``param``, ``value``, ``seed``, ``group="mean"``, the metrics, the
        encoder); ``deviation`` records carry ``"ap"`` only.
    group_records : list of dict
        The same per test group (``group`` names it); select one with
        ``RobustnessCurveDisplay.from_results(..., where={"group": name})``.
    timings : dict
        Seconds spent featurizing, fitting and in total.
    """

    def __init__(self, config, featurization, runs, summary, records,
                 group_records, timings):
        self.config = config
        self.featurization = featurization
        self.runs = runs
        self.summary = summary
        self.records = records
        self.group_records = group_records
        self.timings = timings

    @property
    def methods(self):
        """The methods compared, in table order."""
        return list(self.config["methods"])

    @property
    def groups(self):
        """The test groups, in table order."""
        return list(self.config["data"]["test_groups"])

    # -- serialisation -----------------------------------------------------

    def to_dict(self):
        """Everything as plain JSON-serialisable objects (NaN becomes None).

        Returns
        -------
        result : dict
            Keys ``"config"``, ``"featurization"``, ``"timings"``, ``"runs"``,
            ``"summary"``, ``"records"`` and ``"group_records"``.
        """
        return json_safe(
            {
                "config": self.config,
                "featurization": self.featurization,
                "timings": self.timings,
                "runs": self.runs,
                "summary": self.summary,
                "records": self.records,
                "group_records": self.group_records,
            }
        )

    def to_json(self, **kwargs):
        """The result as strict JSON text (``allow_nan=False``)."""
        kwargs.setdefault("indent", 2)
        return json.dumps(self.to_dict(), allow_nan=False, **kwargs)

    # -- tables ------------------------------------------------------------

    def _encoder_line(self):
        enc = self.config["encoder"]
        ident = enc.get("identity", {})
        parts = [ident.get("library", ""), ident.get("model_name", "")]
        desc = " ".join(p for p in parts if p)
        return (
            f"{enc['spec']} ({desc}; weights {ident.get('pretrained', '?')}; "
            f"{ident.get('precision', '?')} on {ident.get('device_type', '?')})"
        )

    def to_markdown(self):
        """The cross-generator tables (and sweep tables) as Markdown.

        Returns
        -------
        markdown : str
            A header naming the encoder, data and seeds; AP and ACC side by
            side per group and method; the full per-group table (AP, ACC,
            real ACC, fake ACC); then one table per sweep. Values are percent,
            mean ± sample standard deviation over seeds.
        """
        from .metrics import _LONG_HEADERS, AT_THRESHOLD

        cfg = self.config
        seeds = ", ".join(map(str, cfg["seeds"]))
        data = cfg["data"]
        methods = self.methods
        extra = [k for k in self.summary[methods[0]] if k.startswith("mean ")]
        groups = self.groups + ["mean"] + extra
        out = [
            f"## Cross-generator benchmark — encoder: {self._encoder_line()}",
            "",
            f"- train: {', '.join(data['train_roots'])} "
            f"({data['n_train_real']} real + {data['n_train_fake']} fake)",
            f"- test: {', '.join(data['test_roots'])} "
            f"({len(self.groups)} groups, {data['n_test']} images)",
            f"- seeds: {seeds}; cells are mean ± std over seeds (sample std, "
            "ddof=1), in percent; ACC at probability 0.5 (one_class: at its own "
            "threshold, cross-fitted on the real training images at 5% FPR); "
            "**mean** is the unweighted mean over test groups (taken per seed, then "
            "over seeds)",
            "- hyper-parameters: estimator defaults"
            + (
                f" except max_epochs={cfg['max_epochs']}"
                if cfg.get("max_epochs") is not None
                else ""
            )
            + "; nothing tuned per test group; deviation has no ACC at 0.5",
            "- operating points: ACC (oracle) at the best threshold per test group "
            "(an optimistic bound, as UnivFD reports it); TPR at 1% / 5% FPR on each "
            "group's reals; "
            + (
                f"ACC (cal.) at the threshold calibrated (conformal, target FPR 5%) "
                f"on {100 * cfg['calibration_fraction']:g}% of the training reals, "
                "held out of every fit"
                if cfg.get("calibration_fraction")
                else "no calibrated ACC (run with --calibration-fraction)"
            ),
            "",
        ]
        for metric in ("ap", "acc"):
            out.append(f"### {_LONG_HEADERS[metric]} by test group")
            out.append("")
            rows = []
            for group in groups:
                name = f"**{group}**" if group.startswith("mean") else group
                rows.append(
                    [name]
                    + [
                        "—"
                        if (metric != "ap" and m in _AP_ONLY)
                        else _cell(self.summary[m][group][metric])
                        for m in methods
                    ]
                )
            out.append(_md_table(["group"] + methods, rows))
            out.append("")
        cost = self.featurization.get("cost")
        if cost:
            out.append("### Featurization cost (no cache, this machine)")
            out.append("")
            out.append(
                _md_table(
                    ["configuration", "layers", "img/s", "methods"],
                    [
                        [c["config"], str(c["layers"]), f"{c['images_per_second']:.1f}",
                         ", ".join(c["methods"])]
                        for c in cost
                    ],
                )
            )
            out.append("")
        out.append("### All metrics")
        out.append("")
        rows = []
        for group in groups:
            for m in methods:
                stats = self.summary[m][group]
                name = f"**{group}**" if group.startswith("mean") else group
                rows.append(
                    [name, m]
                    + [
                        "—" if (k in AT_THRESHOLD and m in _AP_ONLY) else _cell(stats[k])
                        for k in METRICS
                    ]
                )
        out.append(
            _md_table(
                ["group", "method"] + [_LONG_HEADERS[k] for k in METRICS],
                rows,
                ["---", "---"] + ["---:"] * len(METRICS),
            )
        )
        out.append("")
        out.append(self._featurization_line())
        for param, title in (
            ("jpeg_quality", "JPEG re-compression of the test images (Fig. 7)"),
            ("blur_sigma", "Gaussian blur of the test images (Fig. 7)"),
            ("resize_factor", "Bicubic downscaling of the test images"),
            ("train_size", "Training-set size, images per class (Fig. 6)"),
        ):
            table = self._sweep_markdown(param, title)
            if table:
                out += ["", table]
        return "\n".join(out) + "\n"

    def _featurization_line(self):
        f = self.featurization
        clean, pert = f["clean"], f["perturbed"]
        line = (
            f"Featurization: {clean['n_images']} clean images, {clean['n_cached']} "
            f"from cache, {clean['n_computed']} computed, {clean['seconds']:.1f} s"
        )
        if pert["n_images"]:
            line += (
                f"; {pert['n_images']} perturbed test images, {pert['n_cached']} "
                f"from cache, {pert['n_computed']} computed, {pert['seconds']:.1f} s"
            )
        return line + f". Total run time {self.timings['total_seconds']:.1f} s."

    def _sweep_markdown(self, param, title):
        records = [r for r in self.records if r["param"] == param]
        if not records:
            return ""
        values = sorted(
            {r["value"] for r in records},
            reverse=param in ("jpeg_quality", "resize_factor"),
        )
        methods = [m for m in self.methods if any(r["method"] == m for r in records)]
        lines = [f"### {title}", ""]
        lines.append(
            "Mean over test groups, then mean ± std over seeds, in percent"
            + (
                "; the models are fitted once per seed on clean training features."
                if param != "train_size"
                else "; subsampled per class with the seed, tested on the clean "
                "test set."
            )
        )
        lines.append("")
        header = [param] + [f"{m} AP" for m in methods] + [
            f"{m} ACC" for m in methods if m not in _AP_ONLY
        ]
        rows = []
        for value in values:
            row = [f"{value:g}"]
            for metric in ("ap", "acc"):
                for m in methods:
                    if metric == "acc" and m in _AP_ONLY:
                        continue
                    picked = [
                        r.get(metric)
                        for r in records
                        if r["method"] == m and r["value"] == value
                    ]
                    row.append(_cell(_stats(picked)))
            rows.append(row)
        lines.append(_md_table(header, rows))
        return "\n".join(lines)

    def write(self, directory, stem=None):
        """Write ``<stem>.json`` and ``<stem>.md`` into ``directory``.

        Parameters
        ----------
        directory : str or path-like
            Created when missing.
        stem : str or None, default=None
            File name without suffix; default
            ``cross_generator-<UTC timestamp of the run>``.

        Returns
        -------
        paths : dict
            ``{"json": path, "markdown": path}``.
        """
        os.makedirs(directory, exist_ok=True)
        if stem is None:
            stamp = self.config["started_utc"].replace(":", "").replace("-", "")
            stem = f"cross_generator-{stamp}"
        json_path = os.path.join(directory, stem + ".json")
        md_path = os.path.join(directory, stem + ".md")
        with open(json_path, "w", encoding="utf-8") as fh:
            fh.write(self.to_json())
            fh.write("\n")
        with open(md_path, "w", encoding="utf-8") as fh:
            fh.write(self.to_markdown())
        return {"json": json_path, "markdown": md_path}

    def __repr__(self):
        return (
            f"<CrossGeneratorResult: {len(self.methods)} methods x "
            f"{len(self.groups)} groups x {len(self.config['seeds'])} seeds, "
            f"{len(self.records)} sweep records>"
        )


# ---------------------------------------------------------------------------
# The benchmark
# ---------------------------------------------------------------------------


def _versions(identity):
    """The versions of the run's libraries, and of the encoder's own."""
    from ._show_versions import get_versions

    versions = get_versions(("numpy", "scikit-learn", "torch"))
    library = identity.get("library")
    if library:
        versions[library] = identity.get("library_version")
    return versions


def _machine():
    import torch

    machine = {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    return machine


def _featurization_cost(featurizer, paths, n_images, log):
    """Images per second of each configuration the methods use, without cache.

    ``embedding``: the whole network, final embedding only (``layers=None``);
    ``early``: stages 0-3 only, the rest of the network pruned; ``fused``:
    stages 0-3 and the embedding in one pass.
    """
    from sklearn.base import clone

    configs = [
        ("embedding", None, [m for m in METHODS if m not in _METHOD_BLOCKS]),
        ("early", [0, 1, 2, 3], [m for m, b in _METHOD_BLOCKS.items() if b]),
        ("fused", [0, 1, 2, 3, "embedding"], ["fused"]),
    ]
    sample = list(paths[:n_images])
    rows = []
    for name, layers, users in configs:
        timed = clone(featurizer).set_params(cache=None, layers=layers, verbose=0)
        timed.fit()
        timed.transform(sample[: min(4, len(sample))])  # warm-up
        start = time.perf_counter()
        timed.transform(sample)
        seconds = time.perf_counter() - start
        rows.append(
            {
                "config": name,
                "layers": layers,
                "n_images": len(sample),
                "seconds": round(seconds, 3),
                "images_per_second": round(len(sample) / seconds, 2),
                "methods": users,
            }
        )
        log(f"  cost {name}: {len(sample) / seconds:.1f} img/s")
    return rows


def _root_means(groups):
    """``{"mean <root>": [its groups]}`` for test roots with several groups.

    With ``--test sd-coco/val forensynths`` the groups are ``sd-coco/val``
    and ``forensynths/<generator>``: ``"mean forensynths"`` is then the mean
    over the unseen generators alone.
    """
    by_root = {}
    for group in groups:
        root, sep, _ = group.partition("/")
        if sep:
            by_root.setdefault(root, []).append(group)
    return {f"mean {root}": members for root, members in by_root.items()
            if len(members) > 1 and len(members) < len(groups)}


def _mean_or_none(values):
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


def _is_timm_spec(encoder):
    from .featurizers import TimmFeaturizer

    if isinstance(encoder, TimmFeaturizer):
        return True
    return isinstance(encoder, str) and (
        encoder.startswith("efficientnet_lite") or encoder.startswith("timm:")
    )


def _check_methods(methods):
    methods = list(methods)
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise ValueError(
            f"Unknown method(s) {unknown}; choose from {list(METHODS)}."
            if unknown
            else "methods is empty: choose at least one of " + str(list(METHODS))
        )
    return [m for m in METHODS if m in methods]  # table order, no duplicates


def _space_of_attribution_real(model):
    """The source-real attribution space inside a fitted ``attribution_real``."""
    from sklearn.pipeline import make_pipeline

    if hasattr(model[0], "columns_"):  # BlockSelector, then the head pipeline
        return make_pipeline(model[0], model[1][0])
    return model[0]


def _fit_methods(methods, X, y, seed, *, device, max_epochs, log, label="",
                 feature_names=None, solver="adam"):
    """Fit every method for one seed; return models, seconds and warnings."""
    models, seconds, caught = {}, {}, {}
    for name in methods:
        if name == "deviation" and "attribution_real" in models:
            # The attribution space of attribution_real *is* the source-real
            # space, fitted on all real rows with the same seed.
            models[name] = _space_of_attribution_real(models["attribution_real"])
            seconds[name], caught[name] = 0.0, []
            continue
        estimator = make_method(
            name, seed, device=device, max_epochs=max_epochs,
            feature_names=feature_names, solver=solver,
        )
        start = time.perf_counter()
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            estimator.fit(X, y)
        seconds[name] = round(time.perf_counter() - start, 3)
        caught[name] = sorted({f"{w.category.__name__}: {w.message}" for w in record})
        models[name] = estimator
    log(
        f"  {label}seed {seed}: fitted "
        + ", ".join(f"{m} {seconds[m]:.1f} s" for m in methods)
        + (
            f" ({sum(len(v) for v in caught.values())} distinct warning(s), "
            "kept in the JSON)"
            if any(caught.values())
            else ""
        )
    )
    return models, seconds, caught


def _records(report, method, param, value, seed, encoder, extra=None):
    """RobustnessCurveDisplay records (mean over groups, then per group)."""
    base = {"method": method, "param": param, "value": value, "seed": seed,
            "encoder": encoder, **(extra or {})}
    keys = ("ap",) if method in _AP_ONLY else METRICS

    def record(group, row):
        r = dict(base, group=group)
        for k in keys:
            v = row.get(k)
            if v is not None and math.isfinite(v):  # the display needs finite values
                r[k] = float(v)
        return r

    mean = record("mean", report["mean"])
    per_group = [record(g, row) for g, row in report["groups"].items()]
    return mean, per_group


def _calibration_split(y, fraction, seed):
    """(fit rows, held-out real rows) for the calibrated threshold."""
    rows = np.arange(y.size)
    real = np.flatnonzero(y == 0)
    n_cal = int(round(fraction * real.size))
    if n_cal == 0:
        return rows, rows[:0]
    cal = np.sort(np.random.RandomState(seed).choice(real, n_cal, replace=False))
    return np.setdiff1d(rows, cal), cal


def _subsample(y, n_per_class, seed):
    rng = np.random.RandomState(seed)
    keep = []
    for cls in np.unique(y):
        rows = np.flatnonzero(y == cls)
        if n_per_class < rows.size:
            rows = np.sort(rng.choice(rows, size=n_per_class, replace=False))
        keep.append(rows)
    return np.sort(np.concatenate(keep))


def cross_generator_benchmark(
    train,
    test,
    *,
    encoder="efficientnet_lite2",
    seeds=(0, 1, 2),
    methods="auto",
    cache="default",
    jpeg_qualities=(),
    blur_sigmas=(),
    resize_factors=(),
    train_sizes=(),
    cost_images=0,
    layers=None,
    pooling=None,
    solver="adam",
    max_epochs=None,
    device="auto",
    batch_size=32,
    num_workers="auto",
    torch_threads=None,
    verbose=1,
    calibration_fraction=0.0,
):
    """Train on one source, test on every group of the test roots, side by side.

    Featurizes the training and test images once (through the feature cache),
    then, for every seed, fits each method on the same training features and
    reports AP, ACC, real ACC and fake ACC per test group and their mean
    over groups, with mean ± std over seeds.

    Parameters
    ----------
    train : str, path-like or list of them
        The training folder(s), read with
        :func:`~skacd.datasets.load_image_folder`; all their images form the
        one training source.
    test : str, path-like or list of them
        The test folder(s); every group of every root is a test group
        (several roots name their groups by relative path, e.g.
        ``"forensynths/cyclegan"``).
    encoder : str or featurizer, default="efficientnet_lite2"
        The frozen encoder; see :func:`make_featurizer`.
    seeds : sequence of int, default=(0, 1, 2)
        ``random_state`` of every fit (and of the training-set subsamples).
    methods : "auto" or sequence of str, default="auto"
        Any of :data:`METHODS`, reported in that order. ``"auto"``: all of
        them for a timm CNN (whose stages 0-3 the early-stage methods read),
        the head methods (``linear_probe``, ``attribution_real``,
        ``attribution_fake``, ``deviation``) for other encoders.
    cache : "default", str, path-like, FeatureCache or None, default="default"
        The persistent feature cache: ``"default"`` is
        :func:`default_cache_dir`, ``None`` disables it.
    jpeg_qualities : sequence of int, default=()
        JPEG re-compression qualities applied to the *test* images (100 is
        a real re-compression at quality 100, not the original file).
    blur_sigmas : sequence of float, default=()
        Gaussian blur sigmas (pixels) applied to the *test* images; 0 reuses
        the clean features.
    resize_factors : sequence of float, default=()
        Bicubic rescaling factors of the *test* images' sides
        (:class:`~skacd.featurizers.Resize`; 0.5 halves them); 1 reuses the
        clean features.
    train_sizes : sequence of int, default=()
        Training images *per class* for the training-set-size curve; each
        seed draws its own subsample (the whole class when larger).
    layers : list of int and/or "embedding", or None, default=None
        The featurizer's ``layers`` (for an encoder given by name); None reads
        stages 0-3 and the embedding when a method needs them, else the
        embedding alone.
    pooling : str or None, default=None
        The featurizer's ``pooling``; None keeps its default.
    solver : {"adam", "pca"}, default="adam"
        The attribution space of ``attribution_real``, ``attribution_fake``
        and ``deviation``.
    cost_images : int, default=0
        When positive and the featurizer reads intermediate layers, time the
        featurization of this many test images (no cache) for each
        configuration the methods use (embedding only, stages 0-3 pruned,
        both); ``featurization["cost"]`` and the Markdown report give the
        images per second.
    max_epochs : int or None, default=None
        Overrides ``max_epochs`` of the torch estimators (for quick runs);
        None keeps the defaults.
    device : {"auto", "cpu", "cuda"}, default="auto"
        Device of the featurizer built from a string and of the torch
        estimators.
    batch_size : int, default=32
        Featurizer batch size (for a featurizer built from a string).
    num_workers : int or "auto", default="auto"
        Featurizer DataLoader workers (for a featurizer built from a string).
    torch_threads : int or None, default=None
        ``torch.set_num_threads`` for the run (restored afterwards); None
        keeps the current setting. On a shared, loaded machine 1 avoids
        oversubscription, which slows the small torch fits many-fold.
    verbose : int, default=1
        Print progress to stderr when positive.
    calibration_fraction : float in [0, 1), default=0.0
        Share of the real training images held out of every fit (drawn per
        seed); their scores set the threshold of ``acc_cal`` /
        ``real_acc_cal``, calibrated at a 5% target FPR with no test label.
        0 fits on every training image and leaves those metrics undefined.

        .. versionadded:: 0.1

    Returns
    -------
    result : CrossGeneratorResult
        Configuration, featurization statistics, per-seed reports, the
        summary over seeds and the sweep records; see
        :meth:`CrossGeneratorResult.to_markdown`, ``to_json`` and ``write``.

    Raises
    ------
    ValueError
        For an unknown method or encoder, no seed, a training set without
        both classes, or a test image that is also a training image.

    See Also
    --------
    skacd.metrics.detection_report : The per-group metrics.
    skacd.diagnostics.RobustnessCurveDisplay : Plots ``result.records``.

    Notes
    -----
    Hyper-parameters are the estimators' defaults for every method (the
    linear probe: standardised features, ``LogisticRegression(C=1.0)``);
    nothing is tuned, least of all per test group. ``deviation`` reuses the
    attribution space of ``attribution_real`` when both are run (it is the
    same model: same seed, fitted on all real training rows).

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> import numpy as np
    >>> from PIL import Image
    >>> from skacd.evaluation import cross_generator_benchmark
    >>> tmp = Path(tempfile.mkdtemp())
    >>> rng = np.random.RandomState(0)
    >>> for split, n in [("train", 12), ("test/gan", 6)]:
    ...     for cls, level in [("0_real", 40), ("1_fake", 200)]:
    ...         (tmp / split / cls).mkdir(parents=True)
    ...         for i in range(n):
    ...             pixels = rng.randint(level - 30, level + 30, (32, 32, 3))
    ...             Image.fromarray(pixels.astype(np.uint8)).save(
    ...                 tmp / split / cls / f"{i}.png")
    >>> result = cross_generator_benchmark(
    ...     tmp / "train", tmp / "test", encoder="clip:skacd-tiny-ViT:none",
    ...     seeds=[0], cache=None, max_epochs=5, num_workers=0, torch_threads=1,
    ...     verbose=0)
    >>> result
    <CrossGeneratorResult: 4 methods x 1 groups x 1 seeds, 0 sweep records>
    >>> sorted(result.summary["linear_probe"])
    ['gan', 'mean']
    """
    import torch

    previous_threads = torch.get_num_threads()
    if torch_threads is not None:
        if int(torch_threads) < 1:
            raise ValueError(f"torch_threads must be >= 1; got {torch_threads!r}.")
        torch.set_num_threads(int(torch_threads))
    try:
        return _benchmark(
            train, test, encoder=encoder, seeds=seeds, methods=methods, cache=cache,
            jpeg_qualities=jpeg_qualities, blur_sigmas=blur_sigmas,
            resize_factors=resize_factors,
            train_sizes=train_sizes, cost_images=cost_images, layers=layers,
            pooling=pooling, solver=solver, max_epochs=max_epochs, device=device,
            batch_size=batch_size, num_workers=num_workers, verbose=verbose,
            calibration_fraction=calibration_fraction,
        )
    finally:
        torch.set_num_threads(previous_threads)


def _benchmark(train, test, *, encoder, seeds, methods, cache, jpeg_qualities,
               blur_sigmas, train_sizes, cost_images, layers, pooling, solver,
               max_epochs, device, batch_size, num_workers, verbose,
               calibration_fraction=0.0, resize_factors=()):
    from sklearn.base import clone

    from .cache import FeatureCache
    from .datasets import load_image_folder
    from .featurizers import to_spec

    run_start = time.perf_counter()
    started = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    load_start = (
        [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None
    )
    log = (lambda msg: print(msg, file=sys.stderr, flush=True)) if verbose else (
        lambda msg: None
    )
    if isinstance(methods, str) and methods == "auto":
        methods = METHODS if _is_timm_spec(encoder) else HEAD_METHODS
    methods = _check_methods(methods)
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("seeds is empty: give at least one seed.")
    train_sizes = [int(n) for n in train_sizes]
    if any(n < 1 for n in train_sizes):
        raise ValueError(f"train_sizes must be positive ints; got {train_sizes}.")
    train_roots = list(train) if isinstance(train, (list, tuple)) else [train]
    test_roots = list(test) if isinstance(test, (list, tuple)) else [test]
    train_roots = [os.fspath(r) for r in train_roots]
    test_roots = [os.fspath(r) for r in test_roots]

    train_data = load_image_folder(
        train_roots if len(train_roots) > 1 else train_roots[0]
    )
    test_data = load_image_folder(test_roots if len(test_roots) > 1 else test_roots[0])
    y_train = np.asarray(train_data.target)
    y_test = np.asarray(test_data.target)
    g_test = np.asarray(test_data.groups)
    if np.unique(y_train).size != 2:
        raise ValueError(
            f"The training folder(s) {train_roots} must hold both real and fake "
            f"images; found only target {np.unique(y_train).tolist()}."
        )
    shared = {os.path.realpath(p) for p in train_data.paths} & {
        os.path.realpath(p) for p in test_data.paths
    }
    if shared:
        raise ValueError(
            f"{len(shared)} test image(s) are also training images, e.g. "
            f"{sorted(shared)[0]!r}: the test roots must not overlap the training "
            "roots."
        )
    test_groups = list(dict.fromkeys(g_test.tolist()))  # load order (sorted)

    if isinstance(cache, str) and cache == "default":
        cache = default_cache_dir()
    cache_obj = None
    if cache is not None:
        cache_obj = cache if isinstance(cache, FeatureCache) else FeatureCache(cache)

    featurizer = make_featurizer(
        encoder, device=device, batch_size=batch_size, num_workers=num_workers
    )
    featurizer.set_params(cache=cache_obj, image_transform=None)
    if isinstance(encoder, str) and methods_need_layers(methods):
        from .fusion import reading_branches

        reading_branches(featurizer)
    if layers is not None:
        featurizer.set_params(layers=layers)
    if pooling is not None:
        featurizer.set_params(pooling=pooling)
    encoder_spec = to_spec(featurizer)
    log(f"skacd evaluate: encoder {encoder_spec}, cache "
        f"{cache_obj.directory if cache_obj is not None else 'disabled'}")

    # -- featurize every image once ------------------------------------------
    log("featurizing (clean):")
    t0 = time.perf_counter()
    featurizer.fit()
    identity = dict(featurizer._get_encoder().identity)
    load_seconds = time.perf_counter() - t0
    X_train, s_train = _featurize(featurizer, train_data.paths, "train", log)
    X_test, s_test = _featurize(featurizer, test_data.paths, "test", log)
    feature_names = None
    if featurizer.layers is not None:
        feature_names = featurizer.get_feature_names_out()
    elif methods_need_layers(methods):
        raise ValueError(
            f"The methods {[m for m in methods if m in _METHOD_BLOCKS]} need "
            "intermediate-layer features: give a featurizer with layers=[0, 1, 2, "
            "3, 'embedding'] or an encoder name."
        )
    sets = [s_train, s_test]
    log(
        f"clean features: {len(train_data.paths) + len(test_data.paths)} images, "
        f"{s_train['n_cached'] + s_test['n_cached']} from cache, "
        f"{s_train['n_computed'] + s_test['n_computed']} computed, "
        f"{s_train['seconds'] + s_test['seconds']:.1f} s"
    )
    test_sets = []  # (param, value, features) of the sweeps
    sweep_values = [("jpeg_quality", int(q)) for q in jpeg_qualities] + [
        ("blur_sigma", float(s)) for s in blur_sigmas
    ] + [
        ("resize_factor", float(f)) for f in resize_factors
    ]
    if sweep_values:
        log("featurizing (perturbed test images):")
    for param, value in sweep_values:
        transform = _transform_for(param, value)
        if transform is None:
            test_sets.append((param, value, X_test))
            continue
        perturbed = clone(featurizer).set_params(
            cache=cache_obj, image_transform=transform
        )
        X_p, stats = _featurize(perturbed, test_data.paths, f"test {transform!r}", log)
        stats.update(param=param, value=value)
        sets.append(stats)
        test_sets.append((param, value, X_p))

    def total(stats_list):
        return {
            "n_images": sum(s["n_images"] for s in stats_list),
            "n_cached": sum(s["n_cached"] for s in stats_list),
            "n_computed": sum(s["n_computed"] for s in stats_list),
            "seconds": round(sum(s["seconds"] for s in stats_list), 3),
        }

    featurization = {
        "encoder_load_seconds": round(load_seconds, 3),
        "sets": sets,
        "clean": total(sets[:2]),
        "perturbed": total(sets[2:]),
    }
    if cache_obj is not None:
        featurization["cache_stats"] = dict(cache_obj.stats)
    if cost_images and feature_names is not None:
        log("featurization cost (no cache):")
        featurization["cost"] = _featurization_cost(
            featurizer, test_data.paths, int(cost_images), log
        )
    p = featurization["perturbed"]
    if p["n_images"]:
        log(
            f"perturbed features: {p['n_images']} images, {p['n_cached']} from "
            f"cache, {p['n_computed']} computed, {p['seconds']:.1f} s"
        )
    for name, X in (("train", X_train), ("test", X_test)):
        if not np.all(np.isfinite(X)):
            raise ValueError(f"Non-finite {name} features: check the images.")

    # -- fit every method per seed, evaluate on clean and perturbed test sets --
    log("fitting:")
    encoder_name = identity.get("model_name", encoder_spec)
    runs, records, group_records = [], [], []
    fit_seconds = 0.0
    if not 0 <= calibration_fraction < 1:
        raise ValueError(
            f"calibration_fraction must be in [0, 1); got {calibration_fraction!r}."
        )
    for seed in seeds:
        fit_rows, cal_rows = _calibration_split(y_train, calibration_fraction, seed)
        models, seconds, caught = _fit_methods(
            methods, X_train[fit_rows], y_train[fit_rows], seed, device=device,
            max_epochs=max_epochs, log=log, feature_names=feature_names, solver=solver,
        )
        fit_seconds += sum(seconds.values())
        X_cal = X_train[cal_rows] if cal_rows.size else None
        for name in methods:
            report, scores = _report(
                name, models[name], X_test, y_test, g_test, keep_scores=True,
                X_cal=X_cal,
            )
            runs.append(
                {
                    "seed": seed,
                    "method": name,
                    "fit_seconds": seconds[name],
                    "warnings": caught[name],
                    "report": report,
                    "scores": scores,
                }
            )
            for param, value, X_p in test_sets:
                rep = _report(name, models[name], X_p, y_test, g_test)
                mean, per_group = _records(rep, name, param, value, seed, encoder_name)
                records.append(mean)
                group_records.extend(per_group)

    # -- training-set-size curve ---------------------------------------------
    size_log = []
    if train_sizes:
        log("training-set-size curve:")
    for n in train_sizes:
        for seed in seeds:
            rows = _subsample(y_train, n, seed)
            n_real = int(np.sum(y_train[rows] == 0))
            n_fake = int(np.sum(y_train[rows] == 1))
            models, seconds, caught = _fit_methods(
                methods, X_train[rows], y_train[rows], seed, device=device,
                max_epochs=max_epochs, log=log, label=f"{n}/class, ",
                feature_names=feature_names, solver=solver,
            )
            fit_seconds += sum(seconds.values())
            size_log.append({"train_size": n, "seed": seed, "n_train_real": n_real,
                             "n_train_fake": n_fake, "fit_seconds": seconds,
                             "warnings": caught})
            for name in methods:
                rep = _report(name, models[name], X_test, y_test, g_test)
                mean, per_group = _records(
                    rep, name, "train_size", n, seed, encoder_name,
                    extra={"n_train_real": n_real, "n_train_fake": n_fake},
                )
                records.append(mean)
                group_records.extend(per_group)

    # -- summary over seeds --------------------------------------------------
    summary = {}
    for name in methods:
        reports = [r["report"] for r in runs if r["method"] == name]
        summary[name] = {
            group: {
                k: _stats([rep["groups"][group][k] for rep in reports]) for k in METRICS
            }
            for group in test_groups
        }
        summary[name]["mean"] = {
            k: _stats([rep["mean"][k] for rep in reports]) for k in METRICS
        }
        for label, members in _root_means(test_groups).items():
            summary[name][label] = {
                k: _stats(
                    [
                        _mean_or_none([rep["groups"][g][k] for g in members])
                        for rep in reports
                    ]
                )
                for k in METRICS
            }

    encoder_params = {
        k: (repr(v) if not isinstance(v, (str, int, float, bool, type(None))) else v)
        for k, v in featurizer.get_params().items()
        if k not in ("cache", "image_transform")
    }
    machine = _machine()
    machine["load_average_start"] = load_start
    if hasattr(os, "getloadavg"):
        machine["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    config = {
        "started_utc": started,
        "encoder": {
            "spec": encoder_spec,
            "featurizer": type(featurizer).__name__,
            "params": encoder_params,
            "identity": identity,
        },
        "data": {
            "train_roots": train_roots,
            "test_roots": test_roots,
            "train_roots_abs": [os.path.abspath(r) for r in train_roots],
            "test_roots_abs": [os.path.abspath(r) for r in test_roots],
            "n_train": int(y_train.size),
            "n_train_real": int(np.sum(y_train == 0)),
            "n_train_fake": int(np.sum(y_train == 1)),
            "n_test": int(y_test.size),
            "test_groups": test_groups,
            "test_paths": [str(p) for p in test_data.paths],
            "test_target": y_test.tolist(),
            "test_group_counts": {
                g: {
                    "real": int(np.sum((g_test == g) & (y_test == 0))),
                    "fake": int(np.sum((g_test == g) & (y_test == 1))),
                }
                for g in test_groups
            },
        },
        "seeds": seeds,
        "methods": methods,
        "method_settings": {m: _METHOD_NOTES[m] for m in methods},
        "max_epochs": max_epochs,
        "device": device,
        "threshold": 0.5,
        "calibration_fraction": float(calibration_fraction),
        "std": "sample standard deviation over seeds (ddof=1)",
        "sweeps": {
            "jpeg_quality": [int(q) for q in jpeg_qualities],
            "blur_sigma": [float(s) for s in blur_sigmas],
            "resize_factor": [float(f) for f in resize_factors],
            "train_size_per_class": [int(n) for n in train_sizes],
            "train_size_runs": size_log,
        },
        "cache": cache_obj.directory if cache_obj is not None else None,
        "versions": _versions(identity),
        "machine": machine,
    }
    timings = {
        "featurization_seconds": round(
            featurization["clean"]["seconds"] + featurization["perturbed"]["seconds"], 3
        ),
        "fit_seconds": round(fit_seconds, 3),
        "total_seconds": round(time.perf_counter() - run_start, 3),
    }
    return CrossGeneratorResult(
        config=config,
        featurization=featurization,
        runs=runs,
        summary=summary,
        records=records,
        group_records=group_records,
        timings=timings,
    )


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------


def add_evaluate_arguments(parser, *, defaults=None):
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
        "--encoder", default="efficientnet_lite2",
        help="efficientnet_lite2 (default, offline ImageNet weights), "
        "efficientnet_lite0, timm:<arch>, clip:<model>[:<pretrained>|none]",
    )
    parser.add_argument(
        "--seeds", nargs="+", type=int, default=[0, 1, 2], metavar="SEED",
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
        "--jpeg-quality", nargs="+", type=int, default=[], metavar="Q",
        help="JPEG-quality sweep on the test images, e.g. 100 90 75 50",
    )
    parser.add_argument(
        "--blur-sigma", nargs="+", type=float, default=[], metavar="SIGMA",
        help="Gaussian-blur sweep on the test images, e.g. 0 1 2 3",
    )
    parser.add_argument(
        "--resize-factor", nargs="+", type=float, default=[], metavar="F",
        help="bicubic-resize sweep on the test images (side scale), e.g. 1 0.75 0.5",
    )
    parser.add_argument(
        "--train-sizes", nargs="+", type=int, default=[], metavar="N",
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
        "--cost-images", type=int, default=0, metavar="N",
        help="time the featurization of N test images per configuration "
        "(embedding, early stages, fused) and report img/s (default: 0, off)",
    )
    parser.add_argument(
        "--max-epochs", type=int, default=None,
        help="override max_epochs of the torch estimators (default: theirs, 200)",
    )
    parser.add_argument(
        "--device", choices=["auto", "cpu", "cuda"], default="auto",
        help="device of the encoder and the estimators (default: auto)",
    )
    parser.add_argument(
        "--batch-size", type=int, default=32, help="featurizer batch size (default 32)"
    )
    parser.add_argument(
        "--torch-threads", type=int, default=None, metavar="N",
        help="torch.set_num_threads for the run (default: torch's own); 1 helps "
        "on a loaded, shared machine",
    )
    parser.add_argument(
        "--num-workers", default="auto",
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
        "--calibration-fraction", type=float, default=0.0, metavar="F",
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
        0 on success, 2 for a usage or data error (the message goes to
        stderr).
    """
    from .exceptions import WeightsUnavailableError

    if args.no_cache:
        cache = None
    elif args.cache is not None:
        cache = args.cache
    else:
        cache = "default"
    num_workers = args.num_workers
    if num_workers != "auto":
        try:
            num_workers = int(num_workers)
        except ValueError:
            print(f"skacd evaluate: error: --num-workers must be an int or auto; "
                  f"got {num_workers!r}", file=sys.stderr)
            return 2
    try:
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
            num_workers=num_workers,
            torch_threads=args.torch_threads,
            verbose=0 if args.quiet else 1,
            calibration_fraction=args.calibration_fraction,
        )
    except (FileNotFoundError, ValueError, ImportError, WeightsUnavailableError) as exc:
        print(f"skacd evaluate: error: {exc}", file=sys.stderr)
        return 2
    print(result.to_markdown())
    paths = result.write(args.output_dir, args.name)
    if not args.quiet:
        print(f"wrote {paths['markdown']} and {paths['json']}", file=sys.stderr)
    return 0


def main(argv=None):
    """``python -m skacd.evaluation``: the same as ``skacd evaluate``."""
    parser = argparse.ArgumentParser(
        prog="skacd evaluate",
        description="Cross-generator benchmark: linear probe vs attribution "
        "pipelines vs deviation score, per test group, over several seeds.",
    )
    add_evaluate_arguments(parser)
    return run_evaluate(parser.parse_args(argv))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
