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

Iterations and epochs are different things here. An iteration is one minibatch update. An epoch
is ``max(N // batch_size, 1)`` iterations; at the end of each one the train and validation
accuracies are recorded and (with the ``"step"`` schedule) the learning rate is multiplied by
``learning_rate_decay``. With ``sampling="replacement"`` (the handout's) each minibatch is drawn
with replacement, independently; with ``sampling="epoch"`` each epoch is one pass over a fresh
permutation of the training set.
"""
from __future__ import annotations

import math
import time
from typing import Callable

import numpy as np

from ._checks import (check_choice, check_interval, check_nonneg_float,
                      check_positive_float, check_positive_int, check_X, check_y)

Augment = Callable[[np.ndarray, np.ndarray, np.random.Generator], np.ndarray]


def accuracy(model, X: np.ndarray, y: np.ndarray, batch_size: int = 5000, *, predict=None) -> float:
    """Fraction of rows of X (N, D) labelled as y (N,) by ``predict`` (default ``model.predict``), in chunks."""
    predict = predict or model.predict
    correct = sum(int((predict(X[i:i + batch_size]) == y[i:i + batch_size]).sum())
                  for i in range(0, X.shape[0], batch_size))
    return correct / max(X.shape[0], 1)


def train(model, X, y, X_val, y_val, *, learning_rate=1e-3, learning_rate_decay=0.95, reg=5e-6,
          num_iters=100, batch_size=200, momentum=0.0, nesterov=False, sampling="replacement",
          lr_schedule="step", keep_best=False, augment: Augment | None = None, seed=None,
          num_train_acc=1000, verbose=False) -> dict:
    """Train ``model`` with minibatch SGD (optionally with momentum) and return its histories.

    Parameters
    ----------
    model : object following the model contract of this module.
    X, y : ndarray (N, D) and (N,)
        Training data.
    X_val, y_val : ndarray (N_val, D) and (N_val,)
        Validation data, for the per-epoch accuracy and for ``keep_best``.
    learning_rate : float > 0
    learning_rate_decay : float in (0, 1]
        Per-epoch factor of the ``"step"`` schedule (the handout's 0.95).
    reg : float >= 0
        L2 strength passed to ``model.loss``.
    num_iters, batch_size : int > 0
    momentum : float in [0, 1)
        0 is plain SGD; otherwise classical momentum, or Nesterov's with ``nesterov=True``.
    sampling : {"replacement", "epoch"}
        How minibatches are drawn (see the module docstring).
    lr_schedule : {"step", "cosine"}
        ``"step"`` multiplies by ``learning_rate_decay`` after each epoch; ``"cosine"`` anneals from
        ``learning_rate`` to 0 over ``num_iters`` (``learning_rate_decay`` is then unused).
    keep_best : bool
        Restore, at the end, the parameters of the epoch with the best validation accuracy.
    augment : callable (X_batch, batch_indices, rng) -> X_batch, optional
        Applied to each training minibatch (e.g. :func:`aml.data.random_hflip`).
    seed : None, int or numpy.random.Generator
        The one source of randomness (minibatches, dropout, augmentation, train-accuracy subset).
        ``None`` uses NumPy's global generator for minibatches, as the handout's solver does.
    num_train_acc : int > 0
        Size of the fixed random training subset on which train accuracy is measured each epoch.
    verbose : bool
        Show a tqdm progress bar.

    Returns
    -------
    dict with ``loss_history`` (num_iters,), ``train_acc_history`` and ``val_acc_history``
    (one per epoch), ``lr_history`` (per epoch), ``best_val_acc``, ``best_epoch``,
    ``iterations_per_epoch`` and ``train_seconds``.

    Raises
    ------
    FloatingPointError
        As soon as the loss becomes NaN or inf.
    """
    X = check_X(X)
    y = check_y(y, num_samples=X.shape[0], num_classes=np.iinfo(np.int64).max)
    X_val = check_X(X_val, num_features=X.shape[1], name="X_val")
    y_val = check_y(y_val, num_samples=X_val.shape[0], num_classes=np.iinfo(np.int64).max, name="y_val")
    learning_rate = check_positive_float("learning_rate", learning_rate)
    learning_rate_decay = check_interval("learning_rate_decay", learning_rate_decay, 0.0, 1.0, closed_high=True)
    if learning_rate_decay == 0:
        raise ValueError("The 'learning_rate_decay' parameter must be in (0, 1]. Got 0.0 instead.")
    reg = check_nonneg_float("reg", reg)
    num_iters = check_positive_int("num_iters", num_iters)
    batch_size = check_positive_int("batch_size", batch_size)
    momentum = check_interval("momentum", momentum, 0.0, 1.0)
    sampling = check_choice("sampling", sampling, {"replacement", "epoch"})
    lr_schedule = check_choice("lr_schedule", lr_schedule, {"step", "cosine"})
    num_train_acc = check_positive_int("num_train_acc", num_train_acc)

    rng = np.random.default_rng(seed) if seed is not None else None
    draw = rng if rng is not None else np.random          # minibatch source
    # dropout, augmentation and the train-accuracy subset: from ``seed``, or else seeded from the global
    # generator's current state (read, not advanced, so the handout's minibatch stream is unchanged), so
    # that np.random.seed(...) makes a seed=None run repeatable too
    aux_rng = rng if rng is not None else np.random.default_rng(np.random.get_state()[1])
    num_train = X.shape[0]
    iterations_per_epoch = max(num_train // batch_size, 1)
    acc_idx = np.sort(aux_rng.choice(num_train, min(num_train_acc, num_train), replace=False))
    X_acc, y_acc = X[acc_idx], y[acc_idx]

    velocity = {k: np.zeros_like(v) for k, v in model.params.items()} if momentum else None
    lr = learning_rate
    loss_history = np.empty(num_iters)
    train_acc_history, val_acc_history, lr_history = [], [], []
    best = (-1.0, 0, None)  # (val_acc, epoch, params)
    perm = None
    progress = None
    if verbose:
        from tqdm.auto import tqdm
        progress = tqdm(total=num_iters, desc="SGD", unit="it", leave=False)

    start = time.perf_counter()
    for it in range(num_iters):
        if sampling == "replacement":
            idx = draw.choice(num_train, batch_size, replace=True)
        else:
            k = it % iterations_per_epoch
            if k == 0:
                perm = draw.permutation(num_train)
            idx = perm[k * batch_size:(k + 1) * batch_size]
        X_batch = X[idx]
        if augment is not None:
            X_batch = augment(X_batch, idx, aux_rng)
        if lr_schedule == "cosine":
            lr = 0.5 * learning_rate * (1 + math.cos(math.pi * it / num_iters))

        loss, grads = model.loss(X_batch, y[idx], reg=reg, rng=aux_rng)
        if not math.isfinite(loss):
            raise FloatingPointError(
                f"The training loss became {loss} at iteration {it} (learning_rate={learning_rate}); "
                "training diverged. Try a smaller learning rate.")
        loss_history[it] = loss

        for name, param in model.params.items():
            g = grads[name]
            if velocity is None:
                g *= lr                 # in place: the gradient is consumed here, no temporary
                param -= g
            elif nesterov:
                v_prev = velocity[name].copy()
                velocity[name] *= momentum
                velocity[name] -= lr * g
                param += (1 + momentum) * velocity[name] - momentum * v_prev
            else:
                velocity[name] *= momentum
                velocity[name] -= lr * g
                param += velocity[name]

        if (it + 1) % iterations_per_epoch == 0 or it == num_iters - 1:
            train_acc_history.append(accuracy(model, X_acc, y_acc))
            val_acc_history.append(accuracy(model, X_val, y_val))
            lr_history.append(lr)
            if keep_best and val_acc_history[-1] > best[0]:
                best = (val_acc_history[-1], len(val_acc_history),
                        {k: v.copy() for k, v in model.params.items()})
            if lr_schedule == "step" and (it + 1) % iterations_per_epoch == 0:
                lr *= learning_rate_decay
            if progress is not None:
                progress.set_postfix(loss=f"{loss:.3f}", val_acc=f"{val_acc_history[-1]:.3f}")
        if progress is not None:
            progress.update(1)
    if progress is not None:
        progress.close()

    val_acc = np.asarray(val_acc_history)
    best_epoch = int(np.argmax(val_acc)) + 1
    if keep_best and best[2] is not None:
        for k, v in best[2].items():
            model.params[k][...] = v
    return {
        "loss_history": loss_history,
        "train_acc_history": np.asarray(train_acc_history),
        "val_acc_history": val_acc,
        "lr_history": np.asarray(lr_history),
        "best_val_acc": float(val_acc.max()),
        "best_epoch": best_epoch,
        "iterations_per_epoch": iterations_per_epoch,
        "train_seconds": time.perf_counter() - start,
    }
