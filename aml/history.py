"""The one format of a training history, shared by the NumPy solver and the PyTorch loop, so that
every plot takes either without key arguments.

Keys
----
``loss_history`` : (num_iters,) the training loss of every minibatch (iteration).
``iterations_per_epoch`` : int.
Per epoch (one entry at the end of each epoch, and after a partial last one):
``epoch_history`` (epochs done; 4.08 for a run that stops 8% into its fifth epoch),
``train_acc_history``, ``val_acc_history``, ``val_loss_history``, ``lr_history``.
After the run: ``best_val_acc``, ``best_epoch`` (1-based index into the per-epoch lists),
``train_seconds``.
"""
from __future__ import annotations

import numpy as np

PER_EPOCH = ("epoch_history", "train_acc_history", "val_acc_history", "val_loss_history", "lr_history")


def new_history(num_iters: int, *, iterations_per_epoch: int) -> dict:
    """An empty history for a run of ``num_iters`` iterations."""
    return {"loss_history": np.full(num_iters, np.nan), "iterations_per_epoch": iterations_per_epoch,
            **{k: [] for k in PER_EPOCH}}
