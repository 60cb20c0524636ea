"""
Featurize and grid-search on a Dask cluster
===========================================

The two expensive steps of skacd, on a Dask cluster, with the interfaces
scikit-learn users already know:

1. :func:`skacd.distributed.featurize` embeds images chunk by chunk on the
   workers (one encoder per worker process) and returns the features in input
   order;
2. ``GridSearchCV`` and ``cross_validate`` over ``AttributionSpace`` +
   ``AttributionClassifier`` run their fits on the workers under
   ``joblib.parallel_backend("dask")``; fitted estimators, torch weights
   included, travel back to this process.

By default it starts a ``LocalCluster`` of 2 worker processes on this
machine, featurizes small images it draws itself with the tiny random CLIP
model (``--data DIR`` featurizes a real ``0_real/``, ``1_fake/`` folder with
the offline EfficientNet-Lite0 encoder instead), and grid-searches on
synthetic embeddings, so it runs offline in about a minute. Point it at a
real cluster with ``--scheduler tcp://host:8786``.

This is a plain script, not a gallery example: a ``LocalCluster`` with
worker processes needs the ``if __name__ == "__main__":`` guard.

    python examples/dask_grid_search.py
    python examples/dask_grid_search.py --compare-local
    python examples/dask_grid_search.py --data ../shared/data/sd-coco/train
    python examples/dask_grid_search.py --scheduler tcp://scheduler:8786
"""

import argparse
import logging
import tempfile
import time
import warnings

import joblib
import numpy as np
from dask.distributed import Client, LocalCluster
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_validate
from sklearn.pipeline import make_pipeline

from skacd import (
    AttributionClassifier,
    AttributionSpace,
    CLIPFeaturizer,
    TimmFeaturizer,
)
from skacd import distributed as skd
from skacd.datasets import load_image_folder, make_generator_manifolds


def draw_images(directory, n=48, seed=0):
    """Small PNGs: smooth 'real' gradients and checkered 'fake' patterns."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:48, 0:48] / 48
    paths, y = [], []
    for i in range(n):
        label = i % 2
        if label == 0:
            a, b, c = rng.uniform(-1, 1, (3, 3))
            image = 128 + 100 * np.sin(3 * (a * xx[..., None] + b * yy[..., None]) + c)
        else:
            cells = np.arange(48) // 3
            checker = ((cells[:, None] + cells[None]) % 2) * 90
            image = rng.uniform(40, 160, 3) + checker[..., None]
        image = np.clip(image + rng.normal(0, 4, image.shape), 0, 255).astype(np.uint8)
        path = f"{directory}/{i:03d}.png"
        Image.fromarray(image).save(path)
        paths.append(path)
        y.append(label)
    return paths, np.asarray(y)


def pipeline():
    return make_pipeline(
        AttributionSpace(latent_dim=8, hidden_layer_sizes=(64,), max_epochs=60, cv=3,
                         learning_rate=1e-3, device="cpu", random_state=0),
        AttributionClassifier(hidden_layer_sizes=(32,), max_epochs=100,
                              learning_rate=1e-2, device="cpu", random_state=0),
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--scheduler", help="address of a running Dask scheduler")
    parser.add_argument("--data", help="a folder with 0_real/ and 1_fake/ images")
    parser.add_argument("--compare-local", action="store_true",
                        help="run the same grid search in this process and compare")
    args = parser.parse_args(argv)

    if args.scheduler:
        client = Client(args.scheduler)
    else:
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                               dashboard_address=":0", silence_logs=logging.ERROR)
        client = Client(cluster)  # the default client from now on
        # This process shares the machine's cores with the local workers, which
        # run torch on one thread each (Dask's nanny sets OMP_NUM_THREADS=1):
        # do the same here, or the refit of the best candidate competes with them.
        import torch

        torch.set_num_threads(1)
    print(client)

    # 1. Featurize on the workers.
    # Paths must be readable by the workers (a shared file system on a real
    # cluster). ``cache=`` on a shared directory lets later runs skip images
    # any worker embedded before.
    with tempfile.TemporaryDirectory() as tmp:
        if args.data:
            data = load_image_folder(args.data)
            paths = data.paths
            featurizer = TimmFeaturizer("efficientnet_lite0", device="auto")
        else:
            paths, _ = draw_images(tmp)
            featurizer = CLIPFeaturizer("skacd-tiny-ViT", pretrained=None,
                                        device="auto", batch_size=8)
        start = time.perf_counter()
        X_img = skd.featurize(featurizer, paths, chunk_size=16)
        print(f"featurized {len(paths)} images on the cluster in "
              f"{time.perf_counter() - start:.1f} s -> {X_img.shape}")

    # 2. Grid search with the fits on the workers.
    # On embeddings of real images the same code applies; synthetic
    # embeddings keep this example fast and meaningful without weights.
    X, y = make_generator_manifolds(n_samples=800, n_features=64, random_state=0)
    grid = {
        "attributionspace__latent_dim": [4, 16],
        "attributionclassifier__hidden_layer_sizes": [(), (32,)],
    }
    cv = StratifiedKFold(3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning at max_epochs
        with joblib.parallel_backend("dask"):  # every fit is a task on the cluster
            start = time.perf_counter()
            search = GridSearchCV(pipeline(), grid, cv=cv, scoring="roc_auc",
                                  n_jobs=-1).fit(X, y)
            print(f"GridSearchCV, {len(search.cv_results_['params'])} candidates x "
                  f"3 folds on the cluster: {time.perf_counter() - start:.1f} s")
            scores = cross_validate(pipeline(), X, y, cv=cv, scoring="roc_auc",
                                    return_estimator=True)
        print("best parameters:", search.best_params_,
              f"(ROC AUC {search.best_score_:.3f})")
        print("cross_validate ROC AUC per fold:", np.round(scores["test_score"], 3))

        if args.compare_local:
            # The same search in this process: same parameters, same scores,
            # bit for bit (on one torch thread, as the workers).
            start = time.perf_counter()
            local = GridSearchCV(pipeline(), grid, cv=cv, scoring="roc_auc",
                                 refit=False).fit(X, y)
            print(f"the same locally: {time.perf_counter() - start:.1f} s; best "
                  f"parameters {local.best_params_}; identical mean test scores: "
                  + str(np.array_equal(search.cv_results_["mean_test_score"],
                                       local.cv_results_["mean_test_score"])))

    # Estimators fitted on the workers came back with their torch weights.
    fitted = scores["estimator"][0]
    print("a worker-fitted pipeline predicts here:", fitted.predict(X[:5]))

    client.close()
    if not args.scheduler:
        cluster.close()


if __name__ == "__main__":
    main()
