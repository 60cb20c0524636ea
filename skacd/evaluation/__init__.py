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

The package holds one job per module: ``_methods`` (the methods and their
estimators), ``_featurization`` (the featurizer, the cache and the perturbed
test sets), ``_scoring`` (one method's report on one test set),
``_summary`` (statistics over seeds and groups), ``_benchmark`` (the run),
``_results`` (:class:`CrossGeneratorResult` and its tables) and
``_environment`` (the machine and the library versions); the command line's
front end, ``skacd evaluate``, lives in :mod:`skacd.cli`. The public names
are imported on first access, so importing this package imports neither
torch, scikit-learn nor numpy.
"""

import importlib

__all__ = [
    "METHODS",
    "HEAD_METHODS",
    "CrossGeneratorResult",
    "cross_generator_benchmark",
    "default_cache_dir",
    "make_featurizer",
    "make_method",
    # the command line's front end, importable from here as before
    "add_evaluate_arguments",
    "run_evaluate",
]

# public name -> submodule that defines it
_LAZY = {
    "METHODS": "_methods",
    "HEAD_METHODS": "_methods",
    "make_method": "_methods",
    "methods_need_layers": "_methods",
    "default_cache_dir": "_featurization",
    "make_featurizer": "_featurization",
    "CrossGeneratorResult": "_results",
    "cross_generator_benchmark": "_benchmark",
    # the command line's front end, under the names it had here
    "add_evaluate_arguments": "skacd.cli._evaluate",
    "run_evaluate": "skacd.cli._evaluate",
    "main": "skacd.cli._evaluate",
}


def __getattr__(name):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if not module.startswith("skacd."):
        module = f"{__name__}.{module}"
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
