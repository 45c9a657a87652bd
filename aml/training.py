"""What both training loops share (the NumPy :func:`aml.solver.train` and the PyTorch
:func:`aml.mlp.fit`): the :class:`History` of a run, the best-epoch bookkeeping
(:class:`BestEpoch`), and the divergence guard (:func:`check_divergence`, :class:`TrainingDiverged`).

What "val" means
----------------
Each loop is given one split to *monitor*: its per-epoch validation accuracy and loss, the best
epoch and ``keep_best`` are measured on it, and a search reports it. In ``val_acc_history``,
``val_loss_history``, ``best_val_acc`` and ``best_epoch``, "val" is that monitored split:

* :func:`aml.solver.train` monitors its ``X_val, y_val`` arguments, whatever they hold;
* :func:`aml.tuning.run_config` and :func:`aml.mlp.fit` monitor the *selection* split
  (``X_sel, y_sel``, training images held out for decisions) when the data have a non-empty one, and
  the handout's validation images (``X_val, y_val``) otherwise.

``heldout_val_acc`` is the accuracy of the returned model on the handout's validation images when
those were *not* the monitored split (so they stayed out of every decision), and None when they were.
"""
from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

PER_EPOCH = ("epoch_history", "train_acc_history", "val_acc_history", "val_loss_history", "lr_history")

#: Every key of a :class:`History`, each with its type; both loops fill every one.
HISTORY_KEYS = {
    "loss_history": "float64 ndarray (num_iters,): the training loss of every minibatch (iteration)",
    "reg_loss_history": "float64 ndarray (num_iters,): the L2 term lambda * sum ||W||^2 inside each minibatch "
                        "loss, where the model reports it (``model.loss_terms``, the NumPy net); NaN in the "
                        "PyTorch half, whose weight decay is not a term of the loss",
    "iterations_per_epoch": "int",
    "epoch_history": "float64 ndarray (num_epochs,): epochs done at each record (4.08 for a run that "
                     "stops 8% into its fifth epoch)",
    "train_acc_history": "float64 ndarray (num_epochs,): accuracy on a fixed subset of training images",
    "val_acc_history": "float64 ndarray (num_epochs,): accuracy on the monitored split",
    "val_loss_history": "float64 ndarray (num_epochs,): loss on the monitored split (NaN if it is empty)",
    "lr_history": "float64 ndarray (num_epochs,): the learning rate the epoch's last iteration used "
                  "(the NumPy half) or its first (the PyTorch half, whose scheduler steps after it)",
    "best_val_acc": "float: the highest val_acc_history entry (NaN before the first epoch)",
    "best_epoch": "int: 1-based index of the first highest val_acc_history entry (0 before the first epoch)",
    "train_seconds": "float: wall-clock seconds of the loop",
    "device": "str: where the arithmetic ran ('cpu' for the NumPy half)",
    "heldout_val_acc": "float or None: see the module docstring",
}

#: Training stops with :class:`TrainingDiverged` once a minibatch loss exceeds this multiple of
#: the first minibatch's loss (or is NaN/inf). A softmax loss that grows 100-fold has left any
#: useful region; a healthy run's loss falls from its start.
DIVERGENCE_FACTOR = 100.0


class History(dict):
    """The record of one training run: a dict whose keys are exactly :data:`HISTORY_KEYS`.

    ``h["val_acc_history"]`` reads as in CS231n's solver. Setting a key outside :data:`HISTORY_KEYS`
    raises ``KeyError``, so a typo or a loop-specific extra cannot make the two halves' histories
    differ. Per-epoch entries are float64 arrays at every moment (an ``on_epoch`` callback sees the
    same types as the caller).

    Parameters
    ----------
    num_iters : int
        Length of ``loss_history`` (NaN until each iteration runs).
    iterations_per_epoch : int
    device : str
    """

    def __init__(self, num_iters: int, *, iterations_per_epoch: int, device: str = "cpu"):
        super().__init__()
        for key in HISTORY_KEYS:
            super().__setitem__(key, None)
        self["loss_history"] = np.full(num_iters, np.nan)
        self["reg_loss_history"] = np.full(num_iters, np.nan)
        self["iterations_per_epoch"] = int(iterations_per_epoch)
        for key in PER_EPOCH:
            self[key] = np.empty(0)
        self["best_val_acc"], self["best_epoch"] = float("nan"), 0
        self["train_seconds"], self["device"] = 0.0, str(device)

    def __setitem__(self, key, value):
        if key not in HISTORY_KEYS:
            raise KeyError(f"{key!r} is not a History key; the keys are {list(HISTORY_KEYS)}.")
        super().__setitem__(key, value)

    def update(self, *args, **kwargs):
        for key, value in dict(*args, **kwargs).items():
            self[key] = value

    def setdefault(self, key, default=None):
        if key not in HISTORY_KEYS:
            raise KeyError(f"{key!r} is not a History key; the keys are {list(HISTORY_KEYS)}.")
        return super().setdefault(key, default)

    def __delitem__(self, key):
        raise KeyError(f"History keys cannot be removed (tried {key!r}).")

    @property
    def num_epochs(self) -> int:
        return len(self["val_acc_history"])

    def record_epoch(self, *, epoch: float, train_acc: float, val_acc: float, val_loss: float, lr: float) -> None:
        """Append one epoch's figures (each stored as float64)."""
        for key, value in (("epoch_history", epoch), ("train_acc_history", train_acc),
                           ("val_acc_history", val_acc), ("val_loss_history", val_loss), ("lr_history", lr)):
            self[key] = np.append(self[key], np.float64(value))

    def finish(self, best: "BestEpoch", *, seconds: float, num_iters: int | None = None) -> "History":
        """Write the best epoch and the time; with ``num_iters``, keep only the iterations that ran."""
        if num_iters is not None:
            self["loss_history"] = self["loss_history"][:num_iters]
            self["reg_loss_history"] = self["reg_loss_history"][:num_iters]
        self["best_val_acc"], self["best_epoch"] = best.val_acc, best.epoch
        self["train_seconds"] = float(seconds)
        return self


class BestEpoch:
    """The epoch with the highest validation accuracy so far (the first of ties) and, when
    ``copy_params`` is given, a copy of the parameters that epoch ended with (for ``keep_best``).

    Parameters
    ----------
    copy_params : callable () -> object, optional
        Returns a copy of the model's parameters; called only when an epoch becomes the best.
    """

    def __init__(self, copy_params: Callable[[], object] | None = None):
        self.epoch, self.params, self._copy = 0, None, copy_params
        self._acc = -math.inf

    @property
    def val_acc(self) -> float:
        return self._acc if self.epoch else float("nan")

    def update(self, epoch: int, val_acc: float) -> bool:
        """Record epoch ``epoch`` (1-based) with accuracy ``val_acc``; True if it is the new best.
        NaN (an empty monitored split) never is."""
        if not val_acc > self._acc:
            return False
        self.epoch, self._acc = int(epoch), float(val_acc)
        if self._copy is not None:
            self.params = self._copy()
        return True


class TrainingDiverged(FloatingPointError):
    """The loss became NaN/inf or grew past :data:`DIVERGENCE_FACTOR` times its start, or a
    parameter became non-finite.

    ``history`` holds what was recorded up to the stop; the model has been reset to the parameters
    named in ``restored`` ("best" validation epoch with ``keep_best``, else the "last finite" ones
    checked at the previous epoch end, or the initial ones). ``iteration`` is the 0-based iteration
    at which the problem was seen.
    """

    def __init__(self, message: str, *, iteration: int, history: History, restored: str):
        super().__init__(message)
        self.iteration, self.history, self.restored = iteration, history, restored


def check_divergence(losses, first_loss: float, it: int, *,
                     params_finite: bool = True) -> tuple[str, int] | None:
    """Why the run has diverged and at which iteration, or None if it has not.

    Parameters
    ----------
    losses : float or array (k,)
        The loss of iteration ``it``, or those of iterations ``it .. it + k - 1`` (the PyTorch half
        checks an epoch's losses at once, at its one host sync).
    first_loss : float
        The run's first loss: the reference for :data:`DIVERGENCE_FACTOR`.
    it : int
        0-based iteration of ``losses[0]``.
    params_finite : bool
        Whether every parameter is finite after these iterations.

    Returns
    -------
    (reason, iteration) or None
        ``iteration``: the first bad one (the last of ``losses`` for a non-finite parameter).
    """
    losses = np.atleast_1d(np.asarray(losses, dtype=np.float64))
    for k, loss in enumerate(losses):
        if not math.isfinite(loss):
            return f"the training loss became {loss} at iteration {it + k}", it + k
        if loss > DIVERGENCE_FACTOR * first_loss:
            return (f"the training loss grew to {loss:.3g} at iteration {it + k}, more than "
                    f"{DIVERGENCE_FACTOR:g} times its first value {first_loss:.3g}"), it + k
    if not params_finite:
        last = it + len(losses) - 1
        return f"a parameter became non-finite by iteration {last}", last
    return None


def diverged(why: tuple[str, int], *, history: History, restored: str, lr: float) -> TrainingDiverged:
    """The exception both loops raise for ``why`` (what :func:`check_divergence` returned), with one
    wording: the reason, the learning rate, the advice and what the model was reset to."""
    reason, iteration = why
    return TrainingDiverged(f"Training diverged: {reason} (learning rate {lr:g}). Try a smaller learning rate. "
                            f"The model was reset to its {restored} parameters.", iteration=iteration,
                            history=history, restored=restored)
