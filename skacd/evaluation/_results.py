"""The benchmark's result object and its Markdown tables."""

import json
import os

from .._atomic import atomic_open
from .._json import json_safe
from ._methods import _AP_ONLY, METRICS
from ._summary import _stats


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
        """Return the result as strict JSON text (``allow_nan=False``).

        Parameters
        ----------
        **kwargs
            Passed to :func:`json.dumps` (``indent=2`` unless given).

        Returns
        -------
        text : str
            The JSON document :meth:`to_dict` describes.
        """
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
        from ..metrics import _LONG_HEADERS, AT_THRESHOLD

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
                        "—" if (k in AT_THRESHOLD and m in _AP_ONLY)
                        else _cell(stats[k])
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
        # Atomic: an interrupted or failing run never leaves half a report.
        with atomic_open(json_path, "w", encoding="utf-8") as fh:
            fh.write(self.to_json())
            fh.write("\n")
        with atomic_open(md_path, "w", encoding="utf-8") as fh:
            fh.write(self.to_markdown())
        return {"json": json_path, "markdown": md_path}

    def __repr__(self):
        return (
            f"<CrossGeneratorResult: {len(self.methods)} methods x "
            f"{len(self.groups)} groups x {len(self.config['seeds'])} seeds, "
            f"{len(self.records)} sweep records>"
        )
