"""What both training loops share (the NumPy solver and the PyTorch ``fit``): the history of a run,
the divergence guard and its exception, and the best-epoch bookkeeping.

History keys
------------
``loss_history`` : (num_iters,) the training loss of every minibatch (iteration).
``iterations_per_epoch`` : int.
Per epoch (one entry at the end of each epoch, and after a partial last one):
``epoch_history`` (epochs done; 4.08 for a run that stops 8% into its fifth epoch),
``train_acc_history``, ``val_acc_history``, ``val_loss_history``, ``lr_history``.
After the run: ``best_val_acc``, ``best_epoch`` (1-based index into the per-epoch lists),
``train_seconds``.
"""
from __future__ import annotations

import math

import numpy as np

PER_EPOCH = ("epoch_history", "train_acc_history", "val_acc_history", "val_loss_history", "lr_history")

#: Training stops with :class:`TrainingDiverged` once a minibatch loss exceeds this multiple of
#: the first minibatch's loss (or is NaN/inf). A softmax loss that grows 100-fold has left any
#: useful region; a healthy run's loss falls from its start.
DIVERGENCE_FACTOR = 100.0


def new_history(num_iters: int, *, iterations_per_epoch: int) -> dict:
    """An empty history for a run of ``num_iters`` iterations."""
    return {"loss_history": np.full(num_iters, np.nan), "iterations_per_epoch": iterations_per_epoch,
            **{k: [] for k in PER_EPOCH}}


class TrainingDiverged(FloatingPointError):
    """The loss became NaN/inf or grew past :data:`DIVERGENCE_FACTOR` times its start.

    ``history`` holds what was recorded up to the stop; the model has been reset to the parameters
    named in ``restored`` ("best" validation epoch with ``keep_best``, else the "last finite" ones
    checked at the previous epoch end, or the initial ones).
    """

    def __init__(self, message: str, *, iteration: int, history: dict, restored: str):
        super().__init__(message)
        self.iteration, self.history, self.restored = iteration, history, restored


def check_divergence(loss: float, first_loss: float, it: int) -> str | None:
    """Why the run has diverged at iteration ``it``, or None if it has not."""
    if not math.isfinite(loss):
        return f"the training loss became {loss} at iteration {it}"
    if loss > DIVERGENCE_FACTOR * first_loss:
        return (f"the training loss grew to {loss:.3g} at iteration {it}, more than {DIVERGENCE_FACTOR:g} "
                f"times its first value {first_loss:.3g}")
    return None
