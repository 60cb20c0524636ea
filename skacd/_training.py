"""What the estimators that train a torch module share: parameters and loop glue."""

from numbers import Integral, Real

import torch

from ._compat import Interval
from ._constraints import DeviceName
from ._torch import fit_module, predict_batches, seeded

__all__ = ["TorchTrainerMixin"]


class TorchTrainerMixin:
    """Shared training parameters of AttributionSpace and AttributionClassifier.

    Subclasses merge ``_training_parameter_constraints`` into their
    ``_parameter_constraints`` and set ``device_`` before training.
    """

    _training_parameter_constraints = {
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "device": [DeviceName(), torch.device],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def _train_module(self, module, loss_fn, X, y=None, *, seed, desc, stratify=None):
        """Run the shared training loop with this estimator's settings."""
        return fit_module(
            module,
            loss_fn,
            X,
            y,
            device=torch.device(self.device_),
            seed=seed,
            max_epochs=self.max_epochs,
            batch_size=self.batch_size,
            learning_rate=self.learning_rate,
            weight_decay=self.weight_decay,
            early_stopping=self.early_stopping,
            validation_fraction=self.validation_fraction,
            n_iter_no_change=self.n_iter_no_change,
            tol=self.tol,
            verbose=self.verbose,
            desc=desc,
            stratify=stratify,
        )

    def _fit_new_module(
        self, loss_fn, X, y=None, *, seed, desc, standardize=True, stratify=None
    ):
        """Build the module of ``module_config_`` and train it on ``X``.

        Weight initialisation and training are seeded with ``seed``; with
        ``standardize`` the module's input statistics are those of ``X``.
        Returns ``(module, history)``.
        """
        device = torch.device(self.device_)
        with seeded(seed, device):
            module = self._build_module("module", self.module_config_).to(device)
            if standardize:
                module.standardize.fit_(X)
            history = self._train_module(
                module, loss_fn, X, y, seed=seed, desc=desc, stratify=stratify
            )
        return module, history

    def _record_history(self, history):
        self.loss_curve_ = history["loss_curve"]
        self.validation_scores_ = history["validation_scores"]
        self.n_iter_ = history["n_iter"]

    def _forward_batches(self, module, X, finish=None):
        """``module`` over ``X`` in fixed-shape inference chunks; numpy out.

        See :func:`~skacd._torch.predict_batches`: each row's output is the
        same whatever rows it is passed with.
        """
        module.eval()
        return predict_batches(
            module,
            X,
            device=torch.device(self.device_),
            batch_size=max(self.batch_size, 1024),
            finish=finish,
        )
