"""Minibatch stochastic gradient descent for any model that follows this contract:

* ``model.params``: dict name -> ndarray; the solver replaces each entry with its updated array.
* ``model.loss(X, y, reg, rng=None)`` -> ``(loss, grads)``, ``grads.keys() == params.keys()``, each
  gradient shaped like its parameter; ``rng`` (a Generator) drives training-time randomness (dropout).
* ``model.predict(X)`` -> (N,) integer labels.
* optionally ``model.reg_loss``: the L2 term of the last ``loss`` call (``reg_loss_history``).

An iteration is one minibatch update (:func:`sgd_step`). An epoch is ``max(N // batch_size, 1)``
iterations; after each one (and after the last iteration) the train and validation accuracies are
recorded. ``sampling="replacement"`` (the handout's) draws each minibatch with replacement;
``sampling="epoch"`` walks a fresh permutation of the training set each epoch. All randomness comes
from one ``seed``; the handout's global-generator behaviour lives in :meth:`aml.TwoLayerNet.train` only.
"""
from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial

import numpy as np
from tqdm.auto import tqdm

from . import _checks as checks
from . import optim
from ._checks import check_fields, check_positive_int, check_seed, check_X, check_y
from .training import BestEpoch, History, check_divergence, diverged

#: What each field of :class:`SGDConfig` may hold, checked in one place.
SGD_CONSTRAINTS = {
    "learning_rate": checks.check_positive_float,
    "learning_rate_decay": partial(checks.check_interval, low=0.0, high=1.0, closed_low=False, closed_high=True),
    "reg": checks.check_nonneg_float,
    "num_iters": checks.check_positive_int,
    "num_epochs": checks.optional(checks.check_positive_int),
    "batch_size": checks.check_positive_int,
    "momentum": partial(checks.check_interval, low=0.0, high=1.0),
    "nesterov": checks.check_bool,
    "sampling": partial(checks.check_choice, choices=("replacement", "epoch")),
    "lr_schedule": partial(checks.check_choice, choices=("step", "cosine")),
    "keep_best": checks.check_bool,
    "num_train_acc": checks.check_positive_int,
}


@dataclass(frozen=True, kw_only=True)
class SGDConfig:
    """Every hyper-parameter of :func:`train`: the one home of the solver's defaults (their ranges are
    :data:`SGD_CONSTRAINTS`).

    The defaults are the handout's CIFAR-10 call, ``net.train(..., num_iters=1000, batch_size=200, learning_rate=1e-4,
    learning_rate_decay=0.95, reg=0.25)``, plain SGD; its toy call passes its own ``learning_rate=1e-1, reg=5e-6,
    num_iters=100``. ``reg`` is lambda of ``model.loss``; ``num_epochs``, if set, replaces ``num_iters`` by that many
    epochs; ``momentum`` 0 is plain SGD, else classical momentum or, with ``nesterov``, Nesterov's; ``lr_schedule`` is
    ``"step"`` (``learning_rate * learning_rate_decay ** epoch``) or ``"cosine"`` (from ``learning_rate`` to 0);
    ``keep_best`` restores at the end the parameters of the epoch with the best validation accuracy; ``num_train_acc``
    is the size of the fixed training subset whose accuracy is recorded per epoch.
    """
    learning_rate: float = 1e-4
    learning_rate_decay: float = 0.95
    reg: float = 0.25
    num_iters: int = 1000
    num_epochs: int | None = None
    batch_size: int = 200
    momentum: float = 0.0
    nesterov: bool = False
    sampling: str = "replacement"
    lr_schedule: str = "step"
    keep_best: bool = False
    num_train_acc: int = 1000

    def __post_init__(self):
        check_fields(self, SGD_CONSTRAINTS)

    def iterations_per_epoch(self, num_train: int) -> int:
        return max(num_train // self.batch_size, 1)

    def total_iterations(self, num_train: int) -> int:
        if self.num_epochs is None:
            return self.num_iters
        return self.num_epochs * self.iterations_per_epoch(num_train)

    def learning_rate_at(self, it: int, num_train: int) -> float:
        """The learning rate of iteration ``it`` (0-based) on ``num_train`` training rows."""
        if self.lr_schedule == "cosine":
            return 0.5 * self.learning_rate * (1 + math.cos(math.pi * it / self.total_iterations(num_train)))
        return self.learning_rate * self.learning_rate_decay ** (it // self.iterations_per_epoch(num_train))

    @property
    def update_rule(self) -> Callable:
        """The :mod:`aml.optim` rule: SGD, momentum or Nesterov's."""
        if self.momentum == 0:
            return optim.sgd
        return optim.nesterov_momentum if self.nesterov else optim.sgd_momentum


def sgd_step(model, grads: dict, configs: dict, update_rule: Callable, lr: float) -> None:
    """One SGD update of every parameter of ``model``, with learning rate ``lr``.

    ``configs[name]`` is the update rule's dict for that parameter (its momentum and velocity).
    """
    for name, dw in grads.items():
        config = {**configs[name], "learning_rate": lr}
        model.params[name], configs[name] = update_rule(model.params[name], dw, config)


def minibatches(num_train: int, batch_size: int, sampling: str, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """Row indices (batch_size,) of every iteration, endlessly: drawn with replacement, or with
    ``"epoch"`` sampling consecutive slices of a fresh permutation per epoch of
    ``max(num_train // batch_size, 1)`` iterations."""
    while True:
        order = rng.permutation(num_train) if sampling == "epoch" else None
        for k in range(max(num_train // batch_size, 1)):
            yield rng.choice(num_train, batch_size) if order is None else order[k * batch_size:(k + 1) * batch_size]


def accuracy(model, X: np.ndarray, y: np.ndarray, batch_size: int = 5000, *, predict=None) -> float:
    """Fraction of the rows of X (N, D), N >= 1, that ``predict`` (default ``model.predict``) labels as
    y (N,), computed in chunks of ``batch_size`` rows."""
    batch_size = check_positive_int("batch_size", batch_size)
    X = check_X(X, nonempty=True)
    y = check_y(y, num_samples=X.shape[0])
    predict = predict or model.predict
    correct = sum(int((predict(X[i:i + batch_size]) == y[i:i + batch_size]).sum())
                  for i in range(0, X.shape[0], batch_size))
    return correct / X.shape[0]


def train(model, X, y, X_val, y_val, config: SGDConfig | None = None, *, seed, augment=None, on_epoch=None,
          verbose: bool = False, **hyper) -> History:
    """Train ``model`` with minibatch SGD (optionally with momentum) and return its :class:`History`.

    Parameters
    ----------
    model : follows the model contract of this module.
    X, y : ndarray (N, D), (N,); X_val, y_val : ndarray (N_val, D), (N_val,)
        Training data, and the monitored split ("val" in the history, the best epoch, ``keep_best``).
    config : SGDConfig, optional
        ``**hyper`` (any of its fields, e.g. the handout's ``learning_rate=..., num_iters=...``)
        replaces single fields of it.
    seed : int in [0, 2**32) or numpy.random.Generator
        The one source of randomness (train-accuracy subset, minibatches, dropout, augmentation).
    augment : callable (X_batch, batch_indices, rng) -> X_batch, optional, applied to each minibatch
    on_epoch : callable (epoch, history), optional, called after each epoch is recorded (it may raise to stop)
    verbose : bool, show a tqdm progress bar

    Raises
    ------
    TrainingDiverged (a FloatingPointError)
        The loss is NaN/inf or exceeds :data:`aml.training.DIVERGENCE_FACTOR` times its first value,
        or a parameter is non-finite at an epoch end; the model is reset as the exception says.
    """
    if not isinstance(config, (SGDConfig, type(None))):
        raise TypeError(f"The 'config' parameter must be an SGDConfig or None. Got {type(config).__name__} instead.")
    config = dataclasses.replace(config or SGDConfig(), **hyper)
    X, X_val = check_X(X, nonempty=True), check_X(X_val, num_features=X.shape[1], nonempty=True, name="X_val")
    y, y_val = check_y(y, num_samples=X.shape[0]), check_y(y_val, num_samples=X_val.shape[0], name="y_val")
    rng = np.random.default_rng(check_seed("seed", seed, allow_generator=True))
    N = X.shape[0]
    per_epoch, total = config.iterations_per_epoch(N), config.total_iterations(N)
    acc_idx = np.sort(rng.choice(N, min(config.num_train_acc, N), replace=False))
    history = History(total, iterations_per_epoch=per_epoch)
    # the update rules return new arrays, so a shallow copy of params is a snapshot
    best = BestEpoch((lambda: dict(model.params)) if config.keep_best else None)
    last_good, start = dict(model.params), time.perf_counter()

    def record(it: int, loss: float, lr: float) -> None:
        """Bookkeeping after iteration ``it``: its loss; at an epoch's end the accuracies, the best epoch and a
        snapshot of the parameters; a diverged run is reset and stopped."""
        nonlocal last_good
        history["loss_history"][it], history["reg_loss_history"][it] = loss, getattr(model, "reg_loss", np.nan)
        epoch_end = (it + 1) % per_epoch == 0 or it == total - 1
        finite = not epoch_end or all(np.isfinite(w).all() for w in model.params.values())
        why = check_divergence(loss, history["loss_history"][0], it, params_finite=finite)
        if why is not None:
            restored = "best" if best.params is not None else "last finite"
            model.params.update(last_good if best.params is None else best.params)
            history.finish(best, seconds=time.perf_counter() - start, num_iters=it + 1)
            raise diverged(why, history=history, restored=restored, lr=config.learning_rate)
        if epoch_end:
            train_acc, val_acc = accuracy(model, X[acc_idx], y[acc_idx]), accuracy(model, X_val, y_val)
            history.record_epoch(epoch=(it + 1) / per_epoch, train_acc=train_acc, val_acc=val_acc,
                                 val_loss=model.loss(X_val, y_val, reg=config.reg)[0], lr=lr)
            best.update(history.num_epochs, val_acc)
            last_good = dict(model.params)
            bar.set_postfix(loss=f"{loss:.3f}", val_acc=f"{val_acc:.3f}")
            if on_epoch is not None:
                on_epoch(history.num_epochs, history)

    rule, configs = config.update_rule, {k: {"momentum": float(config.momentum)} for k in model.params}
    batches = minibatches(N, config.batch_size, config.sampling, rng)
    for it in (bar := tqdm(range(total), desc="SGD", leave=False, disable=not verbose)):
        idx, lr = next(batches), config.learning_rate_at(it, N)
        X_batch = X[idx] if augment is None else augment(X[idx], idx, rng)
        loss, grads = model.loss(X_batch, y[idx], reg=config.reg, rng=rng)
        sgd_step(model, grads, configs, rule, lr)
        record(it, loss, lr)
    if best.params is not None:
        model.params.update(best.params)
    return history.finish(best, seconds=time.perf_counter() - start)
