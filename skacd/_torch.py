"""Torch plumbing shared by every skacd estimator.

One place for: resolving ``device="auto"``, turning ``random_state`` into
seeds without touching the caller's global RNG state, the single training
loop, batched inference and CPU state dicts for pickling.
"""

import contextlib
import copy
import warnings

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state

from .exceptions import DeviceWarning

__all__ = [
    "resolve_device",
    "draw_seed",
    "seeded",
    "fit_module",
    "predict_batches",
    "cpu_state_dict",
    "TorchModuleStateMixin",
]


def resolve_device(device):
    """Return the :class:`torch.device` that ``device`` asks for.

    ``"auto"`` means CUDA when available, else CPU. Asking for CUDA on a
    machine without it raises a ``ValueError`` naming the parameter.
    """
    if isinstance(device, torch.device):
        requested = device
    elif device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        requested = torch.device(device)
    if requested.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device={str(device)!r} was requested but CUDA is not available on "
            "this machine; use device='auto' or device='cpu'."
        )
    return requested


def fallback_device(device_name):
    """Device for an estimator restored from a pickle or file.

    Like skorch's ``get_map_location``: a CUDA estimator restored on a machine
    without CUDA moves to the CPU with a :class:`~skacd.exceptions.DeviceWarning`.
    """
    device = torch.device(device_name)
    if device.type == "cuda" and not torch.cuda.is_available():
        warnings.warn(
            f"The estimator was fitted on {device_name!r} but CUDA is not available; "
            "it was loaded on the CPU instead.",
            DeviceWarning,
            stacklevel=3,
        )
        return torch.device("cpu")
    return device


def draw_seed(random_state):
    """Draw one 31-bit integer seed from a ``random_state`` argument."""
    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))


@contextlib.contextmanager
def seeded(seed, device):
    """Seed torch inside the block and restore the caller's RNG state after it.

    Weight initialisation and dropout inside the block are reproducible, and
    ``torch.get_rng_state()`` is the same before and after.
    """
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def cpu_state_dict(module):
    """A copy of ``module.state_dict()`` with every tensor detached on the CPU."""
    return {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}


def as_tensor(X, device, dtype=torch.float32):
    """Move a numpy array to ``device`` once (kept there across epochs)."""
    return torch.tensor(np.ascontiguousarray(X), dtype=dtype, device=device)


def fit_module(
    module,
    loss_fn,
    X,
    y=None,
    *,
    device,
    seed,
    max_epochs,
    batch_size,
    learning_rate,
    weight_decay,
    early_stopping,
    validation_fraction,
    n_iter_no_change,
    tol,
    verbose,
    desc,
    stratify=None,
):
    """Train ``module`` with Adam on ``loss_fn(module, xb, yb)``.

    The one training loop of skacd. Data is moved to ``device`` once and
    batches are drawn there with a seeded :class:`torch.Generator`, so no host
    copies happen between epochs. With ``early_stopping`` a fraction of the
    rows is held out, training stops when the validation loss has not improved
    by ``tol`` for ``n_iter_no_change`` epochs, and the best weights are kept.

    Returns
    -------
    history : dict
        ``loss_curve`` (training loss per epoch), ``validation_scores``
        (negative validation loss per epoch, or ``None``), ``n_iter`` and
        ``best_loss``.
    """
    rng = np.random.RandomState(seed)
    n = X.shape[0]
    if early_stopping:
        idx_train, idx_val = train_test_split(
            np.arange(n),
            test_size=validation_fraction,
            random_state=rng,
            stratify=stratify,
        )
    else:
        idx_train, idx_val = np.arange(n), None

    X_all = as_tensor(X, device)
    y_all = None if y is None else as_tensor(y, device)
    # The training rows are not copied out of X_all (2 GB for 720 000 x 768
    # float32): each step gathers its batch through the row indices, on device.
    train_rows = None
    if idx_val is not None:
        train_rows = torch.as_tensor(idx_train, dtype=torch.long, device=device)
        X_val = X_all[idx_val]
        y_val = None if y_all is None else y_all[idx_val]

    generator = torch.Generator(device=device).manual_seed(seed)
    optimizer = torch.optim.Adam(
        module.parameters(), lr=learning_rate, weight_decay=weight_decay
    )
    n_train = len(idx_train)
    loss_curve, validation_scores = [], []
    best_loss, best_state, no_improvement = np.inf, None, 0

    progress = None
    if verbose:
        from ._progress import progress as _progress

        # delay: fits shorter than 2 s print nothing; mininterval keeps logs short.
        progress = _progress(
            max_epochs, desc, "epoch", leave=False, delay=2.0, mininterval=0.5
        )
    converged = False
    try:
        for _ in range(max_epochs):
            module.train()
            order = torch.randperm(n_train, generator=generator, device=device)
            total = torch.zeros((), device=device)
            for start in range(0, n_train, batch_size):
                batch = order[start : start + batch_size]
                if train_rows is not None:
                    batch = train_rows[batch]
                optimizer.zero_grad(set_to_none=True)
                loss = loss_fn(
                    module, X_all[batch], None if y_all is None else y_all[batch]
                )
                loss.backward()
                optimizer.step()
                total += loss.detach() * batch.numel()
            epoch_loss = float(total) / n_train
            if not np.isfinite(epoch_loss):
                raise ValueError(
                    "Solver produced non-finite parameter weights. The input data "
                    "may contain large values or the learning_rate may be too high."
                )
            loss_curve.append(epoch_loss)

            if idx_val is not None:
                module.eval()
                with torch.inference_mode():
                    current = float(
                        loss_fn(module, X_val, None if y_val is None else y_val)
                    )
                validation_scores.append(-current)
            else:
                current = epoch_loss
            if current < best_loss - tol:
                best_loss, no_improvement = current, 0
                if idx_val is not None:
                    best_state = copy.deepcopy(module.state_dict())
            else:
                no_improvement += 1
                if current < best_loss:
                    best_loss = current
            if progress is not None:
                progress.update(1)
                progress.set_postfix(loss=f"{epoch_loss:.4g}")
            if no_improvement >= n_iter_no_change:
                converged = True
                break
    finally:
        if progress is not None:
            progress.close()

    if best_state is not None:
        module.load_state_dict(best_state)
    module.eval()
    if not converged:
        warnings.warn(
            f"{desc}: stopped at max_epochs={max_epochs} before the "
            f"{'validation' if early_stopping else 'training'} loss converged.",
            ConvergenceWarning,
            stacklevel=3,
        )
    return {
        "loss_curve": loss_curve,
        "validation_scores": validation_scores if idx_val is not None else None,
        "n_iter": len(loss_curve),
        "best_loss": float(best_loss),
    }


def predict_batches(forward, X, *, device, batch_size, finish=None):
    """Apply ``forward`` to ``X`` in chunks of exactly ``batch_size`` rows.

    Batch-invariant: row ``i``'s output does not depend on which other rows
    are passed with it. A float32 matrix product's result depends on the
    shape of the batch (the kernel's blocking and vectorised tails), so every
    chunk has the same shape: the last one is padded with zero rows, whose
    outputs are dropped. Each chunk is a fresh (aligned) tensor, as kernels
    may also pick their path by the alignment of the data. Runs under
    :func:`torch.inference_mode`.

    Parameters
    ----------
    forward : callable
        Maps a ``(batch_size, n_features)`` float32 tensor to a tensor with
        one row (or value) per input row.
    X : array-like of shape (n_samples, n_features)
        Inputs, cast to float32.
    device : torch.device
        Where ``forward`` runs.
    batch_size : int
        Rows per chunk.
    finish : callable, default=None
        Applied on the CPU to each chunk's float32 numpy output (padding
        rows included, so that it too sees one shape), e.g. a row mean.

    Returns
    -------
    out : ndarray
        The concatenated outputs: float32, or what ``finish`` returns.
    """
    X = np.asarray(X)
    n_samples = X.shape[0]
    outputs = []
    with torch.inference_mode():
        for start in range(0, n_samples, batch_size):
            rows = X[start : start + batch_size]
            # A fresh float32 chunk of the one shape (whatever torch's default
            # dtype); the copy also frees read-only inputs (pandas, memmaps).
            chunk = np.zeros((batch_size, *X.shape[1:]), dtype=np.float32)
            chunk[: rows.shape[0]] = rows
            xb = torch.from_numpy(chunk).to(device)
            out = forward(xb).float().cpu().numpy()
            if finish is not None:
                out = finish(out)
            outputs.append(out[: rows.shape[0]])
    if not outputs:
        return np.empty((0,), dtype=np.float32)
    out = np.concatenate(outputs)
    return out if finish is not None else out.astype(np.float32, copy=False)


class TorchModuleStateMixin:
    """Pickle torch modules as CPU state dicts and rebuild them on load.

    Subclasses list their fitted torch modules in ``_torch_modules`` and
    implement ``_build_module(name, config)`` returning a fresh module from the
    JSON-able ``config`` stored in ``<name>_config_``.
    """

    _torch_modules = ()

    def __getstate__(self):
        state = self.__dict__.copy()
        for name in self._torch_modules:
            attr = f"{name}_"
            if attr in state:
                state[attr] = {"__cpu_state_dict__": cpu_state_dict(state[attr])}
        return state

    def __setstate__(self, state):
        saved_device = state.get("device_")
        if saved_device is not None:
            state["device_"] = str(fallback_device(str(saved_device)))
        self.__dict__.update(state)
        for name in self._torch_modules:
            attr = f"{name}_"
            stored = self.__dict__.get(attr)
            if isinstance(stored, dict) and "__cpu_state_dict__" in stored:
                module = self._build_module(name, self.__dict__[f"{name}_config_"])
                module.load_state_dict(stored["__cpu_state_dict__"])
                module.to(torch.device(self.__dict__.get("device_", "cpu"))).eval()
                self.__dict__[attr] = module
