"""The benchmark's methods: their registry and their estimator factories.

Imports nothing heavy: the command line reads :data:`METHODS` to parse
``skacd evaluate``; the estimators are built inside :func:`make_method`.
"""


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


def _is_timm_spec(encoder):
    from ..featurizers import TimmFeaturizer

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


def make_method(name, seed, *, device="auto", max_epochs=None, feature_names=None,
                solver="adam"):
    """Build the unfitted estimator of one benchmark method.

    Hyper-parameters are the estimators' defaults, fixed before any test
    result was seen and never tuned per test group; only ``random_state``
    (and ``max_epochs``, when given, for quick runs) is set.

    Parameters
    ----------
    name : str
        The method, one of ``skacd.evaluation.METHODS`` (``"linear_probe"``,
        ``"attribution_real"``, ``"fused"``, ...).
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
    solver : {"adam", "pca"}, default="adam"
        ``solver`` of the head methods' :class:`~skacd.AttributionSpace`.

    Returns
    -------
    estimator : estimator
        ``linear_probe``: ``make_pipeline(StandardScaler(),
        LogisticRegression(max_iter=5000))``; ``attribution_*``:
        ``make_pipeline(AttributionSpace(source_class=...),
        AttributionClassifier())``; ``deviation``:
        ``AttributionSpace(source_class=0)``.

    Examples
    --------
    >>> from skacd.evaluation import make_method
    >>> probe = make_method("linear_probe", seed=0)
    >>> [name for name, _ in probe.steps]
    ['standardscaler', 'logisticregression']
    """
    from sklearn.pipeline import make_pipeline

    from ..fusion import BlockSelector, make_branch, make_fusion

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
        from ..attribution import AttributionSpace
        from ..one_class import OneClassDetector

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

    from ..attribution import AttributionSpace
    from ..classifier import AttributionClassifier

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


def _space_of_attribution_real(model):
    """The source-real attribution space inside a fitted ``attribution_real``."""
    from sklearn.pipeline import make_pipeline

    if hasattr(model[0], "columns_"):  # BlockSelector, then the head pipeline
        return make_pipeline(model[0], model[1][0])
    return model[0]
