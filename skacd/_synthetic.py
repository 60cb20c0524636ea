"""Synthetic embeddings: real images and generators on their own manifolds."""

from numbers import Integral, Real

import numpy as np
from sklearn.utils import check_random_state

from ._compat import Interval, validate_params

__all__ = ["make_generator_manifolds"]


def _random_mlp(rng, manifold_dim, hidden, n_features):
    return {
        "W1": rng.normal(size=(manifold_dim, hidden)) / np.sqrt(manifold_dim),
        "b1": rng.normal(size=hidden) * 0.5,
        "W2": rng.normal(size=(hidden, n_features)) / np.sqrt(hidden),
    }


def _embed(z, params):
    return np.tanh(z @ params["W1"] + params["b1"]) @ params["W2"]


@validate_params(
    {
        "n_samples": [Interval(Integral, 2, None, closed="left")],
        "n_features": [Interval(Integral, 2, None, closed="left")],
        "n_generators": [Interval(Integral, 1, None, closed="left")],
        "manifold_dim": [Interval(Integral, 1, None, closed="left")],
        "generator_shift": [Interval(Real, 0, None, closed="left")],
        "noise": [Interval(Real, 0, None, closed="left")],
        "real_fraction": [Interval(Real, 0, 1, closed="neither")],
        "random_state": ["random_state"],
        "return_groups": ["boolean"],
    },
    prefer_skip_nested_validation=True,
)
def make_generator_manifolds(
    n_samples=1000,
    *,
    n_features=256,
    n_generators=3,
    manifold_dim=8,
    generator_shift=0.3,
    noise=0.1,
    real_fraction=0.5,
    random_state=None,
    return_groups=False,
):
    """Make SYNTHETIC embeddings of real and generated images (no images involved).

    A stand-in for encoder features with the structure the attribution method
    relies on (arXiv:2603.00717, Eq. 1): real images lie on one smooth
    low-dimensional manifold :math:`\\mathcal{M}_r` in feature space, and each
    generator :math:`g` produces samples on its own manifold
    :math:`\\mathcal{M}_g`, a perturbation of :math:`\\mathcal{M}_r` in its own
    random direction. Both classes share the latent factors, so the raw
    features overlap; what separates a generator is how it leaves the real
    manifold, and each generator leaves it differently. A detector trained on
    one generator and tested on the others therefore measures generalisation
    to unseen generators, as with real data.

    Each manifold is the image of :math:`z \\sim \\mathcal{N}(0, I)` under a
    random one-hidden-layer network
    :math:`x = W_2 \\tanh(W_1 z + b_1) + \\varepsilon`; generator ``g`` uses
    :math:`W_i + s\\,\\Delta_{g,i}` with :math:`s` = ``generator_shift``.

    Parameters
    ----------
    n_samples : int, default=1000
        Total rows.
    n_features : int, default=256
        Dimension of the feature space (768 for CLIP ViT-L/14).
    n_generators : int, default=3
        Number of generators; their groups are ``"gen0"``, ``"gen1"``, ...
    manifold_dim : int, default=8
        Intrinsic dimension of every manifold.
    generator_shift : float, default=0.3
        How far each generator's manifold departs from the real one.
    noise : float, default=0.1
        Standard deviation of isotropic Gaussian noise added to every row.
    real_fraction : float, default=0.5
        Share of real rows.
    random_state : int, RandomState instance or None, default=None
        Seeds the manifolds and the samples.
    return_groups : bool, default=False
        Also return each row's group. Real rows are spread evenly over the
        generator groups, as in ForenSynths where each generator comes with
        its own real images.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features), dtype float32
        Synthetic features.
    y : ndarray of shape (n_samples,)
        0 for real, 1 for generated.
    groups : ndarray of shape (n_samples,) of str
        Only when ``return_groups=True``.

    See Also
    --------
    skacd.datasets.load_image_folder : Real image folders.

    Examples
    --------
    >>> from skacd.datasets import make_generator_manifolds
    >>> X, y, groups = make_generator_manifolds(
    ...     n_samples=90, n_features=16, return_groups=True, random_state=0)
    >>> X.shape, X.dtype, sorted(set(groups.tolist()))
    ((90, 16), dtype('float32'), ['gen0', 'gen1', 'gen2'])
    >>> int(y.sum())
    45
    """
    rng = check_random_state(random_state)
    hidden = max(4 * manifold_dim, 16)
    real = _random_mlp(rng, manifold_dim, hidden, n_features)
    generators = []
    for _ in range(n_generators):
        delta = _random_mlp(rng, manifold_dim, hidden, n_features)
        generators.append(
            {k: real[k] + generator_shift * delta[k] for k in ("W1", "W2")}
            | {"b1": real["b1"]}
        )

    n_real = int(round(real_fraction * n_samples))
    n_fake = n_samples - n_real
    real_group = np.arange(n_real) % n_generators
    fake_group = np.arange(n_fake) % n_generators

    z_real = rng.normal(size=(n_real, manifold_dim))
    z_fake = rng.normal(size=(n_fake, manifold_dim))
    X_real = _embed(z_real, real)
    X_fake = np.empty((n_fake, n_features))
    for g, params in enumerate(generators):
        rows = fake_group == g
        X_fake[rows] = _embed(z_fake[rows], params)

    X = np.vstack([X_real, X_fake]) + noise * rng.normal(size=(n_samples, n_features))
    y = np.r_[np.zeros(n_real, dtype=int), np.ones(n_fake, dtype=int)]
    groups = np.asarray([f"gen{g}" for g in np.r_[real_group, fake_group]])
    order = rng.permutation(n_samples)
    X, y, groups = X[order].astype(np.float32), y[order], groups[order]
    if return_groups:
        return X, y, groups
    return X, y
