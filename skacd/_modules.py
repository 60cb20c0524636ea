"""Plain torch modules used by the estimators. No scikit-learn here."""

import torch
from torch import nn

ACTIVATIONS = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "tanh": nn.Tanh,
    "leaky_relu": nn.LeakyReLU,
    "identity": nn.Identity,
}


def mlp(sizes, activation, dropout=0.0, last_activation=False):
    """A stack of ``Linear`` layers through ``sizes`` with activations between."""
    layers = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(n_in, n_out))
        is_last = i == len(sizes) - 2
        if not is_last or last_activation:
            layers.append(ACTIVATIONS[activation]())
            if dropout and not is_last:
                layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


class Standardize(nn.Module):
    """Fixed per-feature ``(x - mean) / scale``, stored as buffers."""

    def __init__(self, n_features):
        super().__init__()
        self.register_buffer("mean", torch.zeros(n_features))
        self.register_buffer("scale", torch.ones(n_features))

    def fit_(self, X):
        """Set the statistics from a numpy array (constant columns keep scale 1)."""
        scale = X.std(axis=0)
        scale[scale < 1e-12] = 1.0
        self.mean.copy_(torch.as_tensor(X.mean(axis=0)))
        self.scale.copy_(torch.as_tensor(scale))
        return self

    def forward(self, x):
        return (x - self.mean) / self.scale


class AutoEncoder(nn.Module):
    """The attribution space's encoder-decoder ``D(E(x))``.

    Inputs are standardised with fixed statistics of the training rows before
    the encoder, and the decoder's output is mapped back to input units, so the
    residual ``x - D(E(x))`` is in the units of ``x`` (the paper's attribution).
    """

    def __init__(self, n_features, hidden_layer_sizes, latent_dim, activation):
        super().__init__()
        hidden = list(hidden_layer_sizes)
        self.standardize = Standardize(n_features)
        self.encoder = mlp([n_features, *hidden, latent_dim], activation)
        self.decoder = mlp([latent_dim, *reversed(hidden), n_features], activation)

    def reconstruct(self, x):
        z = self.encoder(self.standardize(x))
        return self.decoder(z) * self.standardize.scale + self.standardize.mean

    def forward(self, x):
        """Return the attribution ``|x - D(E(x))|``."""
        return (x - self.reconstruct(x)).abs()


class LinearAutoEncoder(nn.Module):
    """A closed-form linear ``D(E(x))``: projection on principal components.

    ``components`` (``latent_dim`` x ``n_features``, orthonormal rows) span
    the principal subspace of the standardised training rows; the
    reconstruction is the orthogonal projection onto it, mapped back to input
    units, so the residual is in the units of ``x`` as for :class:`AutoEncoder`.
    """

    def __init__(self, n_features, latent_dim):
        super().__init__()
        self.standardize = Standardize(n_features)
        self.register_buffer("components", torch.zeros(latent_dim, n_features))

    @classmethod
    def fit(cls, X, n_components):
        """The linear autoencoder of the numpy rows ``X``.

        ``n_components``: an int (at most ``min(n_samples - 1, n_features)``
        axes are kept), or a float in (0, 1), the share of the standardised
        variance to explain, as in ``sklearn.decomposition.PCA``.
        """
        import numpy as np

        standardize = Standardize(X.shape[1]).fit_(X)
        mean, scale = standardize.mean.numpy(), standardize.scale.numpy()
        Z = (X.astype(np.float64) - mean) / scale
        Z -= Z.mean(axis=0)  # already ~0; exact centring for the SVD
        _, singular, vt = np.linalg.svd(Z, full_matrices=False)
        # Deterministic signs (as scikit-learn's svd_flip): largest |entry| > 0.
        signs = np.sign(vt[np.arange(vt.shape[0]), np.abs(vt).argmax(axis=1)])
        signs[signs == 0] = 1.0
        vt *= signs[:, None]
        rank = max(min(X.shape[0] - 1, X.shape[1]), 1)
        if isinstance(n_components, float):
            variance = singular**2
            share = np.cumsum(variance) / max(variance.sum(), np.finfo(float).tiny)
            k = int(np.searchsorted(share, n_components, side="right") + 1)
        else:
            k = int(n_components)
        k = min(k, rank)
        module = cls(X.shape[1], k)
        module.standardize.load_state_dict(standardize.state_dict())
        module.components.copy_(torch.as_tensor(vt[:k]))
        return module

    def reconstruct(self, x):
        z = self.standardize(x) @ self.components.T
        return (z @ self.components) * self.standardize.scale + self.standardize.mean

    def forward(self, x):
        """Return the attribution ``|x - D(E(x))|``."""
        return (x - self.reconstruct(x)).abs()


class BinaryHead(nn.Module):
    """The classifier head: standardisation, then an MLP to one logit."""

    def __init__(self, n_features, hidden_layer_sizes, activation, dropout):
        super().__init__()
        self.standardize = Standardize(n_features)
        self.mlp = mlp([n_features, *hidden_layer_sizes, 1], activation, dropout)

    def forward(self, x):
        return self.mlp(self.standardize(x)).squeeze(-1)
