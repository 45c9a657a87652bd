"""Training and evaluating an ``MLPConfig``: small functions with explicit arguments, in the manner
of pytorch/examples' ``mnist/main.py``.

No host synchronisation happens inside the step loop: per-step losses stay on the device and reach
the host once per epoch (``k`` = one epoch), where divergence is checked. The loop therefore runs
clean under ``torch.cuda.set_sync_debug_mode("error")``.
"""
from __future__ import annotations

import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .._checks import check_positive_int
from ..training import BestEpoch, History, check_divergence, diverged
from .augment import augment_batch
from .config import MLPConfig
from .data import TensorSplits, check_splits
from .model import MultiLayerPerceptron

EpochCallback = Callable[[int, History], None]


def build_model(config: MLPConfig, input_size: int = 3072, num_classes: int = 10) -> MultiLayerPerceptron:
    """The model of ``config``, its initial weights drawn from a generator seeded by ``config.seed``."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        return MultiLayerPerceptron(input_size, config.hidden_layers, num_classes, activation=config.activation,
                                    batch_norm=config.batch_norm, dropout=config.dropout, init=config.init)


def make_optimizer(model: nn.Module, config: MLPConfig, steps_per_epoch: int):
    """Optimiser and learning-rate scheduler of ``config``; the scheduler steps once per minibatch."""
    params = list(model.parameters())
    fused = all(p.device.type in ("cpu", "cuda") for p in params)   # one kernel per step instead of dozens
    if config.optimizer == "adam":
        opt = torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay, fused=fused)
    elif config.optimizer == "adamw":
        opt = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay, fused=fused)
    else:
        opt = torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, nesterov=config.nesterov,
                              weight_decay=config.weight_decay)
    total = config.num_epochs * steps_per_epoch
    if config.schedule == "step":
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=steps_per_epoch, gamma=config.lr_decay)
    elif config.schedule == "cosine":
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total)
    else:
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=config.lr, total_steps=total, pct_start=0.25)
    return opt, sched


def _autocast(device: torch.device):
    # bfloat16 mixed precision on CUDA (no loss scaling needed); full float32 elsewhere
    return torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")


def train_one_epoch(model: nn.Module, X: torch.Tensor, y: torch.Tensor, optimizer, scheduler, *,
                    batch_size: int, generator: torch.Generator, flip: bool = False, crop_padding: int = 0,
                    label_smoothing: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """One pass over a fresh seeded permutation of (X, y), without a host sync.

    Returns the per-step losses (steps,) and the running accuracy, both still on the device.
    ``generator`` must live on X's device (so the permutation is drawn there too).
    """
    model.train()
    N = X.shape[0]
    perm = torch.randperm(N, generator=generator, device=X.device)
    starts = range(0, N - batch_size + 1, batch_size) if N >= batch_size else [0]
    losses = torch.empty(len(starts), device=X.device)
    correct = torch.zeros((), device=X.device, dtype=torch.long)
    seen = 0
    for i, start in enumerate(starts):
        idx = perm[start:start + batch_size]
        xb, yb = X.index_select(0, idx), y.index_select(0, idx)   # row copies: faster than X[idx] on 4-D tensors
        if flip or crop_padding:
            xb = augment_batch(xb, generator, flip=flip, crop_padding=crop_padding)
        with _autocast(X.device):
            logits = model(xb)
            loss = F.cross_entropy(logits, yb, label_smoothing=label_smoothing)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        losses[i] = loss.detach()
        correct += (logits.argmax(1) == yb).sum()
        seen += yb.shape[0]
    return losses, correct / seen


@torch.no_grad()
def evaluate(model: nn.Module, X: torch.Tensor, y: torch.Tensor, batch_size: int = 2000) -> float:
    """Accuracy of the most confident class, in ``eval()`` mode."""
    return evaluate_loss_and_accuracy(model, X, y, batch_size)[1]


@torch.no_grad()
def predict(model: nn.Module, X: torch.Tensor, batch_size: int = 2000) -> torch.Tensor:
    """Most confident class (N,) for images X (N, 3, 32, 32), in ``eval()`` mode."""
    batch_size = check_positive_int("batch_size", batch_size)
    model.eval()
    out = [model(X[i:i + batch_size]).argmax(1) for i in range(0, X.shape[0], batch_size)]
    return torch.cat(out) if out else torch.empty(0, dtype=torch.long, device=X.device)


@torch.no_grad()
def predict_flip_averaged(model: nn.Module, X: torch.Tensor, batch_size: int = 2000) -> torch.Tensor:
    """Test-time flips: the most confident class (N,) of the mean softmax of each image X (N, 3, 32, 32)
    and of its mirror image (the width axis reversed), in ``eval()`` mode."""
    batch_size = check_positive_int("batch_size", batch_size)
    model.eval()
    out = [(F.softmax(model(xb), dim=1) + F.softmax(model(xb.flip(3)), dim=1)).argmax(1)
           for xb in X.split(batch_size)]
    return torch.cat(out) if out else torch.empty(0, dtype=torch.long, device=X.device)


@torch.no_grad()
def evaluate_loss_and_accuracy(model: nn.Module, X: torch.Tensor, y: torch.Tensor,
                               batch_size: int = 2000) -> tuple[float, float]:
    """Mean cross-entropy and accuracy on (X, y) in ``eval()`` mode; one host sync at the end."""
    batch_size = check_positive_int("batch_size", batch_size)
    if y.ndim != 1 or y.shape[0] != X.shape[0]:
        raise ValueError(f"The 'y' parameter must have shape ({X.shape[0]},) to match X. "
                         f"Got shape {tuple(y.shape)} instead.")
    if X.shape[0] == 0:
        return float("nan"), float("nan")
    model.eval()
    total_loss = torch.zeros((), device=X.device)
    correct = torch.zeros((), device=X.device, dtype=torch.long)
    for start in range(0, X.shape[0], batch_size):
        with _autocast(X.device):
            logits = model(X[start:start + batch_size]).float()
        yb = y[start:start + batch_size]
        total_loss += F.cross_entropy(logits, yb, reduction="sum")
        correct += (logits.argmax(1) == yb).sum()
    n = X.shape[0]
    return total_loss.item() / n, correct.item() / n


def fit(config: MLPConfig, data: TensorSplits, *, verbose: bool = False, num_train_eval: int = 5000,
        on_epoch: EpochCallback | None = None) -> tuple[MultiLayerPerceptron, History]:
    """Train the model of ``config`` on ``data``; return (model, history).

    The loop of pytorch/examples: each epoch is :func:`train_one_epoch` (``model.train()``), then an
    evaluation in ``eval()`` mode. It monitors the selection split (``data.X_sel``) when it is
    non-empty, else the validation images; see :mod:`aml.training` for what "val" means.

    Parameters
    ----------
    config : MLPConfig
    data : TensorSplits
        Checked first by :func:`aml.mlp.data.check_splits` (dtypes, shapes, label range, finiteness).
    verbose : bool
        A tqdm bar over the epochs.
    num_train_eval : int > 0
        Size of the fixed seeded training subset on which ``train_acc_history`` is measured (eval mode).
    on_epoch : callable (epoch, history) -> None, optional
        Called after each epoch is recorded (it may raise to stop the run).

    Returns
    -------
    model : MultiLayerPerceptron
        As trained by the last epoch.
    history : History
        :class:`aml.training.History`; ``heldout_val_acc`` is the returned model's accuracy on the
        validation images when the selection split was monitored, else None.

    Raises
    ------
    TrainingDiverged
        When an epoch's losses hold NaN/inf or exceed :data:`aml.training.DIVERGENCE_FACTOR` times the
        first one, or a parameter becomes non-finite; the model is reset to its parameters at the end
        of the last good epoch.
    """
    if config.normalize != data.normalize:
        raise ValueError(f"The config expects inputs normalised as {config.normalize!r}, but the data were "
                         f"normalised as {data.normalize!r}; load them with load_tensor_splits(normalize="
                         f"{config.normalize!r}) or change the config.")
    num_train_eval = check_positive_int("num_train_eval", num_train_eval)
    check_splits(data)
    X_mon, y_mon = (data.X_sel, data.y_sel) if data.has_selection else (data.X_val, data.y_val)
    device = data.device
    torch.manual_seed(config.seed)          # dropout masks draw from torch's global generator
    model = build_model(config, data.X_train[0].numel(), len(data.class_names)).to(device)
    steps = max(data.X_train.shape[0] // config.batch_size, 1)
    opt, sched = make_optimizer(model, config, steps)
    gen = torch.Generator(device=device).manual_seed(config.seed)
    sub = torch.randperm(data.X_train.shape[0], generator=gen, device=device)[:num_train_eval]
    X_sub, y_sub = data.X_train[sub], data.y_train[sub]
    history = History(config.num_epochs * steps, iterations_per_epoch=steps, device=str(device))
    best = BestEpoch()
    last_good = _copy_state(model)
    epochs = range(config.num_epochs)
    if verbose:
        from tqdm.auto import tqdm
        epochs = tqdm(epochs, desc=f"depth {config.depth}", unit="epoch", leave=False)
    _sync(device)
    start = time.perf_counter()
    for epoch in epochs:
        lr = opt.param_groups[0]["lr"]
        losses, _ = train_one_epoch(model, data.X_train, data.y_train, opt, sched, batch_size=config.batch_size,
                                    generator=gen, flip=config.flip, crop_padding=config.crop_padding,
                                    label_smoothing=config.label_smoothing)
        losses = losses.float().cpu().numpy()           # the epoch's one host sync
        first = epoch * steps
        history["loss_history"][first:first + steps] = losses
        why = check_divergence(losses, history["loss_history"][0], first,
                               params_finite=all(bool(torch.isfinite(p).all()) for p in model.parameters()))
        if why is not None:
            model.load_state_dict(last_good)
            history.finish(best, seconds=time.perf_counter() - start, num_iters=first + steps)
            raise diverged(why, history=history, restored="last finite", lr=config.lr)
        last_good = _copy_state(model)
        val_loss, val_acc = evaluate_loss_and_accuracy(model, X_mon, y_mon)
        history.record_epoch(epoch=epoch + 1, train_acc=evaluate(model, X_sub, y_sub), val_acc=val_acc,
                             val_loss=val_loss, lr=lr)
        best.update(epoch + 1, val_acc)
        if verbose:
            epochs.set_postfix(loss=f"{losses.mean():.3f}", val_acc=f"{val_acc:.3f}")
        if on_epoch is not None:
            on_epoch(epoch + 1, history)
    _sync(device)
    history.finish(best, seconds=time.perf_counter() - start)
    if data.has_selection:
        history["heldout_val_acc"] = evaluate(model, data.X_val, data.y_val)
    return model, history


def _copy_state(model: nn.Module) -> dict:
    return {k: v.clone() for k, v in model.state_dict().items()}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()
