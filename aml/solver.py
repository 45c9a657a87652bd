"""Minibatch stochastic gradient descent for any model that follows the contract below.

Model contract
--------------
``model.params``
    dict name -> ndarray; updated in place.
``model.loss(X, y, reg, rng=None)``
    returns ``(loss, grads)`` with ``grads.keys() == params.keys()`` and each gradient shaped like
    its parameter; ``rng`` (a ``numpy.random.Generator``) is the source of any training-time
    randomness such as dropout.
``model.predict(X)``
    returns (N,) integer labels.
``model.loss_terms`` (optional)
    ``(data_loss, reg_loss)`` of the last ``loss`` call; the history records the second per iteration
    (``reg_loss_history``, NaN for a model without it), so the L2 term can be drawn apart from J.

Iterations and epochs are different things here. An iteration is one minibatch update. An epoch
is ``max(N // batch_size, 1)`` iterations; at the end of each one (and after the last iteration)
the train and validation accuracies are recorded. With ``sampling="replacement"`` (the handout's)
each minibatch is drawn with replacement, independently; with ``sampling="epoch"`` each epoch is
one pass over a fresh permutation of the training set.

The loop below only calls small functions: :func:`minibatch_indices` (which rows),
:func:`learning_rate_at` (the learning rate of iteration t), an update rule of :mod:`aml.optim`,
:func:`aml.training.check_divergence`, and the epoch record (:class:`aml.training.History`, whose
"val" is the ``X_val, y_val`` given here, and :class:`aml.training.BestEpoch`).

All randomness (minibatches, dropout, augmentation, the train-accuracy subset) comes from one
``seed`` (an int or a ``numpy.random.Generator``). The handout's global-generator behaviour
(``seed=None``) lives in :meth:`aml.TwoLayerNet.train` only.
"""
from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from . import optim
from ._checks import (
    check_bool,
    check_choice,
    check_interval,
    check_labels,
    check_nonneg_float,
    check_positive_float,
    check_positive_int,
    check_seed,
    check_X,
    check_y,
)
from .training import BestEpoch, History, check_divergence, diverged

Augment = Callable[[np.ndarray, np.ndarray, np.random.Generator], np.ndarray]
EpochCallback = Callable[[int, History], None]


@dataclass(frozen=True, kw_only=True)
class SGDConfig:
    """Every hyper-parameter of :func:`train`, declared, defaulted and validated here only.

    The defaults are those of the handout's ``TwoLayerNet.train``.

    Attributes
    ----------
    learning_rate : float > 0
    learning_rate_decay : float in (0, 1]
        Per-epoch factor of the ``"step"`` schedule (the handout's 0.95); unused by ``"cosine"``.
    reg : float >= 0
        L2 strength lambda passed to ``model.loss``.
    num_iters : int > 0
        Number of minibatch updates (unless ``num_epochs`` is set).
    num_epochs : int > 0 or None
        If set, overrides ``num_iters``: this many epochs of ``max(N // batch_size, 1)`` iterations.
    batch_size : int > 0
    momentum : float in [0, 1)
        0 is plain SGD; otherwise classical momentum, or Nesterov's with ``nesterov=True``.
    nesterov : bool
    sampling : {"replacement", "epoch"}
    lr_schedule : {"step", "cosine"}
        ``"step"``: ``learning_rate * learning_rate_decay ** epoch``; ``"cosine"``: anneal from
        ``learning_rate`` to 0 over the run.
    keep_best : bool
        Restore, at the end, the parameters of the epoch with the best validation accuracy.
    num_train_acc : int > 0
        Size of the fixed random training subset on which train accuracy is measured each epoch.
    """
    learning_rate: float = 1e-3
    learning_rate_decay: float = 0.95
    reg: float = 5e-6
    num_iters: int = 100
    num_epochs: int | None = None
    batch_size: int = 200
    momentum: float = 0.0
    nesterov: bool = False
    sampling: str = "replacement"
    lr_schedule: str = "step"
    keep_best: bool = False
    num_train_acc: int = 1000

    def __post_init__(self):
        check_positive_float("learning_rate", self.learning_rate)
        decay = check_interval("learning_rate_decay", self.learning_rate_decay, 0.0, 1.0, closed_high=True)
        if decay == 0:
            raise ValueError("The 'learning_rate_decay' parameter must be a float in (0, 1]. Got 0.0 instead.")
        check_nonneg_float("reg", self.reg)
        check_positive_int("num_iters", self.num_iters)
        if self.num_epochs is not None:
            check_positive_int("num_epochs", self.num_epochs)
        check_positive_int("batch_size", self.batch_size)
        check_interval("momentum", self.momentum, 0.0, 1.0)
        check_bool("nesterov", self.nesterov)
        check_choice("sampling", self.sampling, {"replacement", "epoch"})
        check_choice("lr_schedule", self.lr_schedule, {"step", "cosine"})
        check_bool("keep_best", self.keep_best)
        check_positive_int("num_train_acc", self.num_train_acc)

    def iterations_per_epoch(self, num_train: int) -> int:
        return max(num_train // self.batch_size, 1)

    def total_iterations(self, num_train: int) -> int:
        if self.num_epochs is None:
            return self.num_iters
        return self.num_epochs * self.iterations_per_epoch(num_train)


def minibatch_indices(it: int, *, num_train: int, batch_size: int, sampling: str, draw,
                      order: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
    """Row indices (batch_size,) of iteration ``it`` and the epoch's permutation.

    ``draw`` is a ``numpy.random.Generator``. With ``"epoch"`` sampling a fresh permutation ``order``
    is drawn at the start of every epoch.
    """
    if sampling == "replacement":
        return draw.choice(num_train, batch_size, replace=True), order
    per_epoch = max(num_train // batch_size, 1)
    k = it % per_epoch
    if k == 0 or order is None:
        order = draw.permutation(num_train)
    return order[k * batch_size:(k + 1) * batch_size], order


def learning_rate_at(it: int, config: SGDConfig, *, iterations_per_epoch: int, total: int) -> float:
    """The learning rate used by iteration ``it`` (0-based) of a run of ``total`` iterations."""
    if config.lr_schedule == "cosine":
        return 0.5 * config.learning_rate * (1 + math.cos(math.pi * it / total))
    return config.learning_rate * config.learning_rate_decay ** (it // iterations_per_epoch)


def update_rule(config: SGDConfig) -> Callable:
    """The :mod:`aml.optim` rule of ``config``, with its momentum bound."""
    if config.momentum == 0:
        return optim.sgd
    rule = optim.nesterov_momentum if config.nesterov else optim.sgd_momentum
    return lambda w, dw, state, *, lr: rule(w, dw, state, lr=lr, momentum=config.momentum)


def accuracy(model, X: np.ndarray, y: np.ndarray, batch_size: int = 5000, *, predict=None) -> float:
    """Fraction of rows of X (N, D) labelled as y (N,) by ``predict`` (default ``model.predict``), in chunks."""
    batch_size = check_positive_int("batch_size", batch_size)
    y = check_labels(y, num_samples=X.shape[0])
    predict = predict or model.predict
    correct = sum(int((predict(X[i:i + batch_size]) == y[i:i + batch_size]).sum())
                  for i in range(0, X.shape[0], batch_size))
    return correct / max(X.shape[0], 1)


def train(model, X, y, X_val, y_val, config: SGDConfig | None = None, *, seed, augment: Augment | None = None,
          on_epoch: EpochCallback | None = None, verbose: bool = False, **hyper) -> History:
    """Train ``model`` with minibatch SGD (optionally with momentum) and return its history.

    Parameters
    ----------
    model : object following the model contract of this module.
    X, y : ndarray (N, D) and (N,)
        Training data.
    X_val, y_val : ndarray (N_val, D) and (N_val,)
        The monitored split: the per-epoch "val" accuracy and loss, the best epoch and ``keep_best``.
    config : SGDConfig, optional
        The hyper-parameters; ``**hyper`` (any :class:`SGDConfig` field, e.g. the handout's
        ``learning_rate=..., reg=..., num_iters=...``) replaces single fields of it.
    seed : int in [0, 2**32) or numpy.random.Generator
        The one source of randomness (train-accuracy subset, minibatches, dropout, augmentation).
        Required: a run depends on no global state.
    augment : callable (X_batch, batch_indices, rng) -> X_batch, optional
        Applied to each training minibatch (e.g. :func:`aml.flips.random_hflip`).
    on_epoch : callable (epoch, history) -> None, optional
        Called after each epoch's accuracies are recorded (e.g. to report to an Optuna trial, which
        may stop the run by raising).
    verbose : bool
        Show a tqdm progress bar.

    Returns
    -------
    History
        See :mod:`aml.training`; ``heldout_val_acc`` is None (this function knows only one
        validation split) and ``device`` is ``"cpu"``.

    Raises
    ------
    TrainingDiverged (a FloatingPointError)
        When the loss is NaN/inf or exceeds :data:`aml.training.DIVERGENCE_FACTOR` times its first
        value, or a parameter is non-finite at an epoch end; the model is left as that exception describes.
    """
    config = _config(config, hyper)
    X, y, X_val, y_val = _check_data(X, y, X_val, y_val)
    rng = np.random.default_rng(check_seed("seed", seed, allow_generator=True))
    num_train = X.shape[0]
    per_epoch = config.iterations_per_epoch(num_train)
    total = config.total_iterations(num_train)
    acc_idx = np.sort(rng.choice(num_train, min(config.num_train_acc, num_train), replace=False))

    step = update_rule(config)
    states = {k: {} for k in model.params}
    history = History(total, iterations_per_epoch=per_epoch)
    best = BestEpoch((lambda: _copy_params(model)) if config.keep_best else None)
    last_good = _copy_params(model)
    order = None
    progress = _progress(total) if verbose else None
    start = time.perf_counter()
    for it in range(total):
        idx, order = minibatch_indices(it, num_train=num_train, batch_size=config.batch_size,
                                       sampling=config.sampling, draw=rng, order=order)
        lr = learning_rate_at(it, config, iterations_per_epoch=per_epoch, total=total)
        X_batch = X[idx] if augment is None else augment(X[idx], idx, rng)
        loss, grads = model.loss(X_batch, y[idx], reg=config.reg, rng=rng)
        history["loss_history"][it] = loss
        history["reg_loss_history"][it] = getattr(model, "loss_terms", (np.nan, np.nan))[1]
        for name, param in model.params.items():
            step(param, grads[name], states[name], lr=lr)
        epoch_end = (it + 1) % per_epoch == 0 or it == total - 1
        finite = not epoch_end or _params_finite(model)
        why = check_divergence(loss, history["loss_history"][0], it, params_finite=finite)
        if why is not None:
            restored = "best" if best.params is not None else "last finite"
            _restore(model, best.params if best.params is not None else last_good)
            history.finish(best, seconds=time.perf_counter() - start, num_iters=it + 1)
            raise diverged(why, history=history, restored=restored, lr=config.learning_rate)
        if epoch_end:
            history.record_epoch(epoch=(it + 1) / per_epoch, train_acc=accuracy(model, X[acc_idx], y[acc_idx]),
                                 val_acc=accuracy(model, X_val, y_val),
                                 val_loss=_val_loss(model, X_val, y_val, config.reg), lr=lr)
            best.update(history.num_epochs, history["val_acc_history"][-1])
            last_good = _copy_params(model)
            if progress is not None:
                progress.set_postfix(loss=f"{loss:.3f}", val_acc=f"{history['val_acc_history'][-1]:.3f}")
            if on_epoch is not None:
                on_epoch(history.num_epochs, history)
        if progress is not None:
            progress.update(1)
    if progress is not None:
        progress.close()
    if best.params is not None:
        _restore(model, best.params)
    return history.finish(best, seconds=time.perf_counter() - start)


def _config(config: SGDConfig | None, hyper: dict) -> SGDConfig:
    """``config`` (default :class:`SGDConfig`) with the fields named in ``hyper`` replaced, validated."""
    names = [f.name for f in dataclasses.fields(SGDConfig)]
    unknown = sorted(set(hyper) - set(names))
    if unknown:
        raise TypeError(f"train() got unknown hyper-parameter(s) {unknown}; valid ones are the fields of "
                        f"SGDConfig: {names}.")
    if config is not None and not isinstance(config, SGDConfig):
        raise TypeError(f"The 'config' parameter must be an SGDConfig or None. Got {type(config).__name__} instead.")
    config = config if config is not None else SGDConfig()
    return SGDConfig(**{name: hyper.get(name, getattr(config, name)) for name in names})


def _check_data(X, y, X_val, y_val):
    X = check_X(X)
    y = check_y(y, num_samples=X.shape[0], num_classes=np.iinfo(np.int64).max)
    X_val = check_X(X_val, num_features=X.shape[1], name="X_val")
    y_val = check_y(y_val, num_samples=X_val.shape[0], num_classes=np.iinfo(np.int64).max, name="y_val")
    return X, y, X_val, y_val


def _copy_params(model) -> dict:
    return {k: v.copy() for k, v in model.params.items()}


def _restore(model, params: dict) -> None:
    for k, v in params.items():
        model.params[k][...] = v


def _params_finite(model) -> bool:
    return all(np.isfinite(v).all() for v in model.params.values())


def _progress(total: int):
    from tqdm.auto import tqdm
    return tqdm(total=total, desc="SGD", unit="it", leave=False)


def _val_loss(model, X_val, y_val, reg) -> float:
    """The regularised loss on the validation set, without dropout (NaN for an empty set)."""
    if X_val.shape[0] == 0:
        return float("nan")
    return float(model.loss(X_val, y_val, reg=reg)[0])
