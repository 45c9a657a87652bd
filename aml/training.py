"""What both training loops share (the NumPy :func:`aml.train` and the PyTorch :func:`aml.mlp.fit`): the
:class:`History` of a run, the best epoch (:class:`BestEpoch`) and the divergence guard (:func:`check_divergence`,
:class:`TrainingDiverged`).

"val" in a History is the split the loop *monitors* (per-epoch accuracy and loss, best epoch, ``keep_best``):
:func:`aml.train` monitors its ``X_val, y_val``; :func:`aml.tuning.run_config` and :func:`aml.mlp.fit` monitor the
selection split (training images held out for decisions) when there is one, else the handout's validation images.
``heldout_val_acc`` is the returned model's accuracy on the validation images when those were held out of monitoring,
else None.
"""
from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

#: Every key of a :class:`History`, in order; both loops fill every one (see :class:`History`).
HISTORY_KEYS = ("loss_history", "reg_loss_history", "iterations_per_epoch", "epoch_history", "train_acc_history",
                "val_acc_history", "val_loss_history", "lr_history", "best_val_acc", "best_epoch", "train_seconds",
                "device", "heldout_val_acc")
PER_EPOCH = HISTORY_KEYS[3:8]

#: Training stops with :class:`TrainingDiverged` once a minibatch loss exceeds this multiple of the
#: first minibatch's (or is NaN/inf): a softmax loss that grew 100-fold has left any useful region.
DIVERGENCE_FACTOR = 100.0


class History(dict):
    """The record of one run, read as CS231n's solver's (``h["val_acc_history"]``).

    Per iteration (float64, NaN until it runs): ``loss_history``; ``reg_loss_history``, the L2 term inside each loss
    (the NumPy net's ``reg_loss``; NaN in the PyTorch half, whose weight decay is no term of the loss). Per epoch
    (float64 arrays): ``epoch_history`` (epochs done at each record, 4.08 for a run stopped 8% into its fifth),
    ``train_acc_history`` (on a fixed training subset), ``val_acc_history``, ``val_loss_history``, ``lr_history`` (the
    rate of the epoch's last iteration in the NumPy half, of its first in the PyTorch half). Then
    ``iterations_per_epoch``, ``best_val_acc`` (NaN before the first epoch), ``best_epoch`` (1-based, first of ties, 0
    before the first), ``train_seconds``, ``device`` and ``heldout_val_acc``. Setting any other key raises ``KeyError``,
    so the two halves' histories cannot drift apart.
    """

    def __init__(self, num_iters: int, *, iterations_per_epoch: int, device: str = "cpu"):
        super().__init__(loss_history=np.full(num_iters, np.nan), reg_loss_history=np.full(num_iters, np.nan),
                         iterations_per_epoch=int(iterations_per_epoch), **{k: np.empty(0) for k in PER_EPOCH},
                         best_val_acc=float("nan"), best_epoch=0, train_seconds=0.0, device=str(device),
                         heldout_val_acc=None)

    def __setitem__(self, key, value):
        if key not in HISTORY_KEYS:
            raise KeyError(f"{key!r} is not a History key; the keys are {list(HISTORY_KEYS)}.")
        super().__setitem__(key, value)

    @property
    def num_epochs(self) -> int:
        return len(self["val_acc_history"])

    def record_epoch(self, *, epoch: float, train_acc: float, val_acc: float, val_loss: float, lr: float) -> None:
        """Append one epoch's figures, each as float64."""
        for key, value in zip(PER_EPOCH, (epoch, train_acc, val_acc, val_loss, lr)):
            self[key] = np.append(self[key], np.float64(value))

    def finish(self, best: BestEpoch, *, seconds: float, num_iters: int | None = None) -> History:
        """Write the best epoch and the time; with ``num_iters``, keep only the iterations that ran."""
        if num_iters is not None:
            self["loss_history"] = self["loss_history"][:num_iters]
            self["reg_loss_history"] = self["reg_loss_history"][:num_iters]
        self["best_val_acc"], self["best_epoch"], self["train_seconds"] = best.val_acc, best.epoch, float(seconds)
        return self


class BestEpoch:
    """The epoch with the highest validation accuracy so far (the first of ties) and, when
    ``copy_params`` (a callable returning a copy of the parameters) is given, that epoch's parameters."""

    def __init__(self, copy_params: Callable[[], object] | None = None):
        self.epoch, self.params, self._copy, self._acc = 0, None, copy_params, -math.inf

    @property
    def val_acc(self) -> float:
        return self._acc if self.epoch else float("nan")

    def update(self, epoch: int, val_acc: float) -> bool:
        """Record 1-based ``epoch`` with ``val_acc``; True if it is the new best (NaN never is)."""
        if not val_acc > self._acc:
            return False
        self.epoch, self._acc = int(epoch), float(val_acc)
        if self._copy is not None:
            self.params = self._copy()
        return True


class TrainingDiverged(FloatingPointError):
    """The loss became NaN/inf or grew past :data:`DIVERGENCE_FACTOR` times its start, or a parameter
    became non-finite. ``history``: what was recorded until then; ``iteration``: the 0-based iteration
    where it was seen; ``restored``: what the model was reset to ("best" epoch with ``keep_best``, else
    the "last finite" parameters, those of the previous epoch end or the initial ones)."""

    def __init__(self, message: str, *, iteration: int, history: History, restored: str):
        super().__init__(message)
        self.iteration, self.history, self.restored = iteration, history, restored


def check_divergence(losses, first_loss: float, it: int, *, params_finite: bool = True) -> tuple[str, int] | None:
    """``(reason, iteration)`` if the run has diverged, else None.

    ``losses`` is the loss of iteration ``it`` or those of iterations ``it .. it + k - 1`` (the PyTorch
    half checks an epoch's at once); ``first_loss`` the run's first; ``params_finite`` whether every
    parameter is finite after them. ``iteration`` is the first bad one (the last one, for a parameter).
    """
    losses = np.atleast_1d(np.asarray(losses, dtype=np.float64))
    for k, loss in enumerate(losses):
        if not math.isfinite(loss):
            return f"the training loss became {loss} at iteration {it + k}", it + k
        if loss > DIVERGENCE_FACTOR * first_loss:
            return (f"the training loss grew to {loss:.3g} at iteration {it + k}, more than "
                    f"{DIVERGENCE_FACTOR:g} times its first value {first_loss:.3g}"), it + k
    if not params_finite:
        return f"a parameter became non-finite by iteration {it + len(losses) - 1}", it + len(losses) - 1
    return None


def diverged(why: tuple[str, int], *, history: History, restored: str, lr: float) -> TrainingDiverged:
    """The exception both loops raise for ``why`` (from :func:`check_divergence`), in one wording."""
    reason, iteration = why
    return TrainingDiverged(f"Training diverged: {reason} (learning rate {lr:g}). Try a smaller learning rate. "
                            f"The model was reset to its {restored} parameters.", iteration=iteration,
                            history=history, restored=restored)
