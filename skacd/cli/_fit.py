"""``skacd fit``: fit a detector on a labelled image folder and save it."""

import time

from ..exceptions import UsageError
from ._arguments import (
    ENCODER_HELP,
    _encoder_arg,
    _fraction,
    _layer,
    _non_negative_int,
    _positive_int,
    _runtime,
)
from ._common import EXIT_OK, PROG, _check_writable
from ._inputs import _real_images
from ._messages import _err, _list_skipped

#: The parent parsers (of :mod:`._arguments`) whose options it takes.
PARENTS = ("quiet", "images")
HELP = "fit a detector on a labelled image folder"
DESCRIPTION = (
    "Fit a detector on a labelled folder (<group>/{0_real,1_fake}/..., "
    "GenImage or real/fake layouts; see skacd.datasets.load_image_folder) "
    "and save it. The default, --detector fused, is skacd.make_detector(): "
    "the encoder's early stages and its final embedding, each through its "
    "own attribution space and classifier, scores averaged. --detector "
    "attribution is the paper's encoder -> AttributionSpace -> "
    "AttributionClassifier."
)
EPILOG = "Example: skacd fit --data data/sd-coco/train -o detector.skacd"


def add_arguments(parser):
    """Add the options of ``skacd fit`` to ``parser``."""
    add = parser.add_argument
    add("--data", required=True, nargs="+", metavar="DIR",
        help="labelled image folder(s)")
    add("--follow-symlinks", action="store_true",
        help="follow symbolic links that point outside the --data "
             "folders (default: such a link is an error naming it)")
    add("--layout", default="auto",
        choices=["auto", "forensynths", "genimage", "real_fake"],
        help="folder layout (default: detect)")
    add("--source-class", default="real", choices=["real", "fake"],
        help="the class the attribution autoencoder is fitted on (default: real)")
    add("--encoder", default="efficientnet_lite2", type=_encoder_arg,
        metavar="SPEC", help=ENCODER_HELP)
    add("--detector", choices=["fused", "attribution"], default="fused",
        help="fused (default): early-stage and embedding branches, "
             "skacd.make_detector(); attribution: one AttributionSpace "
             "-> AttributionClassifier on the encoder's features")
    add("--layers", nargs="+", type=_layer, metavar="LAYER",
        help="encoder layers to read: stage/block indices and "
             "'embedding' (default: what --detector needs)")
    add("--pooling", metavar="STATS",
        help="how each layer is summarised: mean, std, mean_std, cls, "
             "cls_mean... (default: auto)")
    add("--solver", choices=["adam", "pca"],
        help="attribution space: the torch autoencoder (adam, default of "
             "--detector attribution) or the linear one (pca, the fused "
             "detector's)")
    add("--latent-dim", type=_positive_int, metavar="K",
        help="attribution-space bottleneck (default: 32 for fused, 128 "
             "for attribution)")
    add("--seed", type=int, default=0, help="random seed (default: 0)")
    add("--max-epochs", type=_positive_int, metavar="N",
        help="most training epochs of the autoencoder and the classifier "
             "(default: 200)")
    add("--cv", type=_non_negative_int, default=5, metavar="K",
        help="cross-fitting folds of the attribution space of --detector "
             "attribution; 0 = none, the paper's plain scheme; with "
             "--one-class, the folds of the cross-fitted threshold, at "
             "least 2 (default: 5; the fused detector always cross-fits "
             "with 5)")
    add("--device", choices=["auto", "cpu", "cuda"], default="auto",
        help="torch device (default: auto)")
    add("--augment", nargs="?", const="", default=None, metavar="SPEC",
        help="train on augmented copies of the images too (test images "
             "are never augmented): CNNDetection-style random JPEG, "
             "blur, downscale and crop, each with a probability, "
             "e.g. 'jpeg=0.5,blur=0.5,resize=0.5,crop=0' (the default "
             "of a bare --augment); seeded by --seed")
    add("--augment-copies", type=_positive_int, default=1, metavar="N",
        help="augmented copies per training image with --augment "
             "(default: 1)")
    add("--one-class", action="store_true",
        help="fit on real images alone (every image under --data, or the "
             "real class of a labelled folder): the score is the "
             "attribution space's deviation, thresholded on held-out "
             "reals (cross-fitted on --cv folds) at --target-fpr")
    add("--target-fpr", type=_fraction, default=0.05, metavar="RATE",
        help="with --one-class: the share of real images that may be "
             "called fake (default: 0.05)")
    add("-o", "--output", required=True, metavar="FILE",
        help="detector file to write, e.g. detector.skacd")


def _fit_featurizer(args, *, one_class=False):
    """The featurizer ``skacd fit`` builds from --encoder, --layers, --pooling.

    The fused detector reads its branches' layers; ``one_class`` reads the
    early layers alone: their deviation separates unseen generators best (the
    deviation_early method of skacd evaluate).
    """
    from ..featurizers import from_spec
    from ..fusion import reading_branches

    featurizer = from_spec(args.encoder, device=args.device)
    if one_class or args.detector == "fused":
        reading_branches(featurizer)  # the fused detector's layers and resize
    if one_class:
        featurizer.set_params(layers=featurizer._early_layers())  # less the embedding
    if args.layers is not None:
        featurizer.set_params(layers=args.layers)
    if args.pooling is not None:
        featurizer.set_params(pooling=args.pooling)
    return featurizer


def _fused_head(args, featurizer):
    """The StackingClassifier of the fused detector, on ``featurizer``'s columns."""
    from ..fusion import make_fusion

    return make_fusion(
        featurizer.get_feature_names_out(),
        latent_dim=32 if args.latent_dim is None else args.latent_dim,
        random_state=args.seed,
    )


def _attribution_head(args, source, verbose):
    """AttributionSpace -> AttributionClassifier, the paper's pipeline."""
    from sklearn.pipeline import make_pipeline

    from ..attribution import AttributionSpace
    from ..classifier import AttributionClassifier

    epochs = {} if args.max_epochs is None else {"max_epochs": args.max_epochs}
    space = AttributionSpace(
        source_class=source, solver=args.solver or "adam",
        cv=None if args.cv == 0 else args.cv, device=args.device,
        random_state=args.seed, verbose=verbose,
        **({} if args.latent_dim is None else {"latent_dim": args.latent_dim}),
        **epochs,
    )
    classifier = AttributionClassifier(
        device=args.device, random_state=args.seed, verbose=verbose, **epochs
    )
    return make_pipeline(space, classifier)


def run(args):
    # The usage checks first: a usage error imports nothing heavy.
    if args.one_class and args.augment is not None:
        raise UsageError("--augment goes with a two-class fit, not --one-class.")
    if args.one_class:
        return _run_one_class(args)
    if args.detector == "fused" and (
        args.source_class != "real"
        or args.solver not in (None, "pca")
        or args.max_epochs is not None
    ):
        raise UsageError(
            "--detector fused has branches with linear (pca) attribution spaces "
            "fitted on the real images; --source-class fake, --solver adam and "
            "--max-epochs go with --detector attribution."
        )
    _check_writable(args.output, "the detector file")
    import numpy as np
    from sklearn.base import clone
    from sklearn.pipeline import Pipeline, make_pipeline

    from ..datasets import load_image_folder
    from ..featurizers._spec import to_spec
    from ..io import save

    started = time.perf_counter()
    verbose = 0 if args.quiet else 1
    featurizer = _fit_featurizer(args)
    data = load_image_folder(
        args.data if len(args.data) > 1 else args.data[0], layout=args.layout,
        follow_symlinks=args.follow_symlinks,
    )
    paths, y = list(data.paths), np.asarray(data.target)
    n_real, n_fake = int((y == 0).sum()), int((y == 1).sum())
    if not args.quiet:
        _err(
            f"{PROG} fit: {len(paths)} images ({n_real} real, {n_fake} fake) in "
            f"{len(set(data.groups))} group(s), {data.layout} layout; encoder "
            f"{to_spec(featurizer)}"
        )

    runtime = _runtime(args)
    runtime.pop("device", None)
    result = clone(featurizer).set_params(**runtime).featurize(paths)
    featurizer.fit()
    skipped = sorted(result.errors)
    keep = np.setdiff1d(np.arange(len(paths)), skipped)
    X, y = result.features[keep], y[keep]
    if skipped:
        _list_skipped([(paths[i], result.errors[i].reason) for i in skipped],
                      f"{PROG} fit")

    source = {"real": 0, "fake": 1}[args.source_class]
    fit_head = lambda head, X, y: head.fit(X, y)  # noqa: E731
    if args.augment is not None:
        fit_head, X, y = _augmented_training(args, featurizer, runtime, paths, keep, y)
    if args.detector == "fused":
        fusion = fit_head(_fused_head(args, featurizer), X, y)
        detector = Pipeline([("featurizer", featurizer), ("fusion", fusion)])
    else:
        head = fit_head(_attribution_head(args, source, verbose), X, y)
        for _, step in head.steps:
            step.set_params(verbose=0)
        detector = make_pipeline(featurizer, *[step for _, step in head.steps])
    save(detector, args.output)
    _err(
        f"{PROG} fit: {len(keep)} images used ({result.n_cached} from cache), "
        f"{len(skipped)} skipped; fitted on source class {args.source_class!r} "
        f"({int((y == source).sum())} images); saved {args.output} in "
        f"{time.perf_counter() - started:.1f} s"
    )
    return EXIT_OK


def _augmented_training(args, featurizer, runtime, paths, keep, y):
    """``(fit_head, X, y)`` on the kept images and their augmented copies."""
    from sklearn.base import clone

    from ..augmentation import Augment, featurize_copies, fit_copies

    try:
        augment = Augment.from_string(args.augment, seed=args.seed)
    except ValueError as exc:
        raise UsageError(f"--augment: {exc}") from None
    n = args.augment_copies
    if not args.quiet:
        _err(f"{PROG} fit: training on {n} augmented copies per image ({augment!r})")
    copier = clone(featurizer).set_params(**dict(runtime, on_error="raise")).fit()
    X, y, _ = featurize_copies(
        copier, [paths[i] for i in keep], y, augment=augment, n_copies=n
    )
    return (lambda head, X, y: fit_copies(head, X, y, n_copies=n)), X, y


def _run_one_class(args):
    _check_writable(args.output, "the detector file")
    if args.source_class != "real":
        raise UsageError("--one-class fits on real images only; drop --source-class.")
    if args.cv < 2:
        raise UsageError(
            f"--one-class cross-fits its threshold on --cv folds of the real images; "
            f"--cv must be at least 2, got {args.cv}."
        )
    import numpy as np
    from sklearn.base import clone
    from sklearn.pipeline import make_pipeline

    from ..attribution import AttributionSpace
    from ..featurizers._spec import to_spec
    from ..io import save
    from ..one_class import OneClassDetector

    started = time.perf_counter()
    featurizer = _fit_featurizer(args, one_class=True)
    paths, _, note = _real_images(args.data, "fit", args.skip_errors)
    if not args.quiet:
        _err(f"{PROG} fit --one-class: {len(paths)} real images"
             f"{' (' + note + ')' if note else ''}; encoder "
             f"{to_spec(featurizer)}")
    runtime = _runtime(args)
    runtime.pop("device", None)
    result = clone(featurizer).set_params(**runtime).featurize(paths)
    featurizer.fit()
    skipped = sorted(result.errors)
    keep = np.setdiff1d(np.arange(len(paths)), skipped)
    if skipped:
        _list_skipped([(paths[i], result.errors[i].reason) for i in skipped],
                      f"{PROG} fit")
    epochs = {} if args.max_epochs is None else {"max_epochs": args.max_epochs}
    space = AttributionSpace(
        solver=args.solver or "pca", latent_dim=args.latent_dim or 32,
        device=args.device, random_state=args.seed, **epochs,
    )
    detector = OneClassDetector(space, target_fpr=args.target_fpr, cv=args.cv,
                                random_state=args.seed)
    detector.fit(result.features[keep])
    save(make_pipeline(featurizer, detector), args.output)
    _err(
        f"{PROG} fit: one-class detector on {len(keep)} real images "
        f"({note + '; ' if note else ''}{result.n_cached} from cache), "
        f"{len(skipped)} skipped; threshold "
        f"deviation > {detector.threshold_:.6g}, cross-fitted on {args.cv} folds "
        f"at target FPR {args.target_fpr:g}; saved {args.output} in "
        f"{time.perf_counter() - started:.1f} s"
    )
    return EXIT_OK
