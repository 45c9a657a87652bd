"""What one search trial does, apart from where its study is stored (:mod:`aml.search`).

A trial trains a configuration and, after every epoch, reports the accuracy on the split the
training loop monitors (``history["val_acc_history"]``: the selection split when the data has one)
to Optuna, which may prune it at a rung. A complete trial's value is its best epoch's accuracy on
that split; a failed one keeps its reason as the user attribute ``fail_reason``.
"""
from __future__ import annotations

import time
from collections.abc import Callable


def one_line(text) -> str:
    """The first non-blank line of ``text`` (an exception's message), stripped; the type's name if none."""
    lines = [ln.strip() for ln in str(text).splitlines() if ln.strip()]
    return lines[0] if lines else type(text).__name__


def reporter(trial) -> Callable[[int, dict], None]:
    """The ``on_epoch(epoch, history)`` callback of a trial: records the epochs reached, reports the
    epoch's accuracy on the monitored split (``history["val_acc_history"][-1]``) and prunes."""
    import optuna

    def on_epoch(epoch: int, history: dict) -> None:
        trial.set_user_attr("epochs", epoch)
        trial.report(float(history["val_acc_history"][-1]), epoch)
        if trial.should_prune():
            raise optuna.TrialPruned(f"pruned after epoch {epoch}")
    return on_epoch


def trial_value(history: dict) -> float:
    """A complete trial's value: its best epoch's accuracy on the monitored split."""
    return float(max(history["val_acc_history"]))


def run_trial(trial, build: Callable, train: Callable, data, *, worker: str) -> float:
    """Train ``build(trial)`` on ``data`` with ``train(config, data, on_epoch=...)`` and return
    :func:`trial_value` of its history. Records the user attributes ``epochs``, ``worker``,
    ``seconds`` and, when training raises (a pruned trial excepted), ``fail_reason``: the error's
    type and first line."""
    import optuna

    start = time.perf_counter()
    trial.set_user_attr("epochs", 0)
    trial.set_user_attr("worker", worker)
    if trial.user_attrs.get("fail_reason"):                    # a retried trial inherits its predecessor's attrs
        trial.set_user_attr("fail_reason", "")
    try:
        history = train(build(trial), data, on_epoch=reporter(trial))
    except optuna.TrialPruned:
        raise
    except BaseException as e:                                   # KeyboardInterrupt too: Optuna marks it FAIL
        trial.set_user_attr("fail_reason", f"{type(e).__name__}: {one_line(e)}")
        raise
    finally:
        trial.set_user_attr("seconds", round(time.perf_counter() - start, 2))
    return trial_value(history)
