"""Training and evaluating an ``MLPConfig``, in the manner of pytorch/examples' ``mnist/main.py``.
Shapes: N images X (N, 3, 32, 32) or (N, D), labels y (N,), C classes. The step loop never waits for the
device: the minibatch losses reach the host once per epoch, where divergence is checked."""
from __future__ import annotations

import copy
import time

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from .._checks import check_positive_int
from ..training import BestEpoch, History, check_divergence, diverged
from .config import HANDOUT_LR_DECAY, MLPConfig
from .data import TensorSplits
from .model import MultiLayerPerceptron, build_model

EVAL_BATCH_SIZE = 2000       # images per forward pass when evaluating: bounds the memory, not the result


def make_optimizer(model: nn.Module, config: MLPConfig, steps_per_epoch: int):
    """The optimiser and learning-rate scheduler of ``config``; the scheduler steps once per minibatch."""
    kind = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}[config.optimizer]
    fused = {} if kind is torch.optim.SGD else {"fused": True}        # Adam(W): one kernel per step, not dozens
    opt = kind(model.parameters(), lr=config.lr, weight_decay=config.weight_decay, **fused)
    if config.schedule == "step":
        return opt, torch.optim.lr_scheduler.StepLR(opt, step_size=steps_per_epoch, gamma=HANDOUT_LR_DECAY)
    total = config.num_epochs * steps_per_epoch
    return opt, torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=config.lr, total_steps=total, pct_start=0.25)


def augment_batch(x: torch.Tensor, generator: torch.Generator, *, flip: bool = False,
                  crop_padding: int = 0) -> torch.Tensor:
    """Random horizontal flips and random crops of the zero-padded images, of a batch (N, C, H, W) at once."""
    N, C, H, W = x.shape
    if flip:
        mirror = torch.rand(N, generator=generator, device=x.device) < 0.5
        x = torch.where(mirror.view(N, 1, 1, 1), x.flip(3), x)
    if crop_padding:
        p = crop_padding
        dy, dx = torch.randint(0, 2 * p + 1, (2, N, 1, 1, 1), generator=generator, device=x.device)   # offsets
        rows = dy + torch.arange(H, device=x.device).view(1, 1, H, 1)            # (N, 1, H, 1)
        cols = dx + torch.arange(W, device=x.device).view(1, 1, 1, W)            # (N, 1, 1, W)
        n, c = torch.arange(N, device=x.device).view(N, 1, 1, 1), torch.arange(C, device=x.device).view(1, C, 1, 1)
        x = F.pad(x, (p, p, p, p))[n, c, rows, cols]
    return x


def train_one_epoch(model: nn.Module, X: torch.Tensor, y: torch.Tensor, optimizer, scheduler, *,
                    batch_size: int, generator: torch.Generator, flip: bool = False,
                    crop_padding: int = 0, label_smoothing: float = 0.0, bfloat16: bool = False) -> torch.Tensor:
    """One pass over a fresh permutation of (X, y) in minibatches of ``batch_size`` (a last partial one
    dropped; fewer images than a batch make one batch); ``generator`` is on X's device; the forward pass in
    bfloat16 on a GPU, and on the CPU with ``bfloat16``. Returns the minibatch losses (num_steps,), on the device."""
    _check_epoch(model, X, y, batch_size)
    model.train()
    perm = torch.randperm(len(X), generator=generator, device=X.device)
    losses = torch.empty(max(len(X) // batch_size, 1), device=X.device)
    for i in range(len(losses)):
        idx = perm[i * batch_size:(i + 1) * batch_size]
        xb, yb = X.index_select(0, idx), y.index_select(0, idx)   # faster than X[idx] in 4-D
        xb = augment_batch(xb, generator, flip=flip, crop_padding=crop_padding)
        with torch.autocast(X.device.type, torch.bfloat16, enabled=X.is_cuda or bfloat16):
            loss = F.cross_entropy(model(xb), yb, label_smoothing=label_smoothing)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        losses[i] = loss.detach()
    return losses


@torch.no_grad()
def predict(model: nn.Module, X: torch.Tensor) -> torch.Tensor:
    """The most confident class (N,) int64 of each image of X, in ``eval()`` mode."""
    check_inputs(model, X)
    model.eval()
    return torch.cat([model(xb).argmax(1) for xb in X.split(EVAL_BATCH_SIZE)])


@torch.no_grad()
def predict_flip_averaged(model: nn.Module, X: torch.Tensor) -> torch.Tensor:
    """Test-time flips: the most confident class (N,) of the mean softmax of each image X (N, 3, 32, 32)
    and of its mirror image (the width axis reversed), in ``eval()`` mode."""
    check_inputs(model, X, images=True)
    model.eval()
    return torch.cat([(model(xb).softmax(1) + model(xb.flip(3)).softmax(1)).argmax(1)
                      for xb in X.split(EVAL_BATCH_SIZE)])


def evaluate(model: nn.Module, X: torch.Tensor, y: torch.Tensor) -> float:
    """The accuracy of :func:`predict` on (X, y)."""
    check_inputs(model, X, y)
    return (predict(model, X) == y).sum().item() / len(X)


@torch.no_grad()
def _loss_and_accuracy(model: nn.Module, X: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """Mean cross-entropy and accuracy on checked (X, y) in ``eval()`` mode; one host sync at the end."""
    model.eval()
    loss, correct = torch.zeros((), device=X.device), torch.zeros((), device=X.device, dtype=torch.long)
    for xb, yb in zip(X.split(EVAL_BATCH_SIZE), y.split(EVAL_BATCH_SIZE)):
        logits = model(xb)
        loss += F.cross_entropy(logits, yb, reduction="sum")
        correct += (logits.argmax(1) == yb).sum()
    return loss.item() / len(X), correct.item() / len(X)


def fit(config: MLPConfig, data: TensorSplits, *, verbose: bool = False, num_train_eval: int = 5000,
        on_epoch=None) -> tuple[MultiLayerPerceptron, History]:
    """Train the model of ``config`` on ``data``; return (the model after the last epoch, its History).

    Each epoch is :func:`train_one_epoch`, then an evaluation in ``eval()`` mode of the monitored split (``X_sel`` if
    non-empty, else ``X_val``: what "val" means in :mod:`aml.training`) and of a seeded subset of ``num_train_eval``
    training images; then ``on_epoch(epoch, history)``, which may raise to stop. ``TrainingDiverged`` if the losses blow
    up: the model is reset to the last good epoch's.
    """
    X_mon, y_mon = _check_fit(config, data, num_train_eval)
    torch.manual_seed(config.seed)                              # dropout draws from torch's global generator
    model = build_model(config, data.X_train[0].numel(), len(data.class_names)).to(data.device)
    steps = max(len(data.X_train) // config.batch_size, 1)
    optimizer, scheduler = make_optimizer(model, config, steps)
    gen = torch.Generator(device=data.device).manual_seed(config.seed)
    sub = torch.randperm(len(data.X_train), generator=gen, device=data.device)[:num_train_eval]
    X_sub, y_sub = data.X_train[sub], data.y_train[sub]                 # train accuracy: a fixed seeded subset
    history = History(config.num_epochs * steps, iterations_per_epoch=steps, device=str(data.device))
    best, last_good, start = BestEpoch(), copy.deepcopy(model.state_dict()), time.perf_counter()

    def record(epoch: int, losses, lr: float) -> None:
        """Bookkeeping after an epoch: its minibatch losses; a diverged run is reset and stopped; the accuracies
        of the monitored split and the train subset, in ``eval()`` mode; then ``on_epoch``."""
        nonlocal last_good
        first = epoch * steps
        history["loss_history"][first:first + steps] = losses
        finite = bool(torch.stack([torch.isfinite(p).all() for p in model.parameters()]).all())
        why = check_divergence(losses, history["loss_history"][0], first, params_finite=finite)
        if why is not None:
            model.load_state_dict(last_good)
            history.finish(best, seconds=time.perf_counter() - start, num_iters=first + steps)
            raise diverged(why, history=history, restored="last finite", lr=config.lr)
        last_good = copy.deepcopy(model.state_dict())
        val_loss, val_acc = _loss_and_accuracy(model, X_mon, y_mon)
        train_acc = _loss_and_accuracy(model, X_sub, y_sub)[1]
        history.record_epoch(epoch=epoch + 1, train_acc=train_acc, val_acc=val_acc, val_loss=val_loss, lr=lr)
        best.update(epoch + 1, val_acc)
        bar.set_postfix(loss=f"{losses.mean():.3f}", val_acc=f"{val_acc:.3f}")
        if on_epoch is not None:
            on_epoch(epoch + 1, history)

    for epoch in (bar := tqdm(range(config.num_epochs), desc=f"depth {config.depth}", disable=not verbose)):
        lr = optimizer.param_groups[0]["lr"]
        losses = train_one_epoch(model, data.X_train, data.y_train, optimizer, scheduler, batch_size=config.batch_size,
                                 generator=gen, flip=config.flip, crop_padding=config.crop_padding,
                                 label_smoothing=config.label_smoothing, bfloat16=config.bfloat16)
        record(epoch, losses.float().cpu().numpy(), lr)            # one host sync per epoch
    history.finish(best, seconds=time.perf_counter() - start)
    if X_mon is data.X_sel:
        history["heldout_val_acc"] = _loss_and_accuracy(model, data.X_val, data.y_val)[1]
    return model, history


# --- the checks of the public entry points: one line naming the argument, what was expected, what arrived ---

def check_data(X, y=None, *, num_features=None, num_classes=None, dtype=torch.float32, device=None, images=False,
               split="") -> None:
    """X: a non-empty ``dtype`` tensor (N, 3, 32, 32) (or (N, D) unless ``images``) of ``num_features``
    values an image, on ``device``; y: int64 labels (N,), in [0, ``num_classes``) when that is given."""
    X_name = f"The data's 'X_{split}'" if split else "The 'X' parameter"
    y_name = X_name.replace("'X", "'y")
    shape = "(N, 3, 32, 32)" + ("" if images else f" or (N, {num_features or 'D'})")
    if not isinstance(X, torch.Tensor):
        raise TypeError(f"{X_name} must be a torch.Tensor {shape}. Got {type(X).__name__} instead.")
    if X.ndim not in ((4,) if images else (2, 4)) or X.shape[1:].numel() != (num_features or X.shape[1:].numel()):
        raise ValueError(f"{X_name} must have shape {shape}. Got {tuple(X.shape)} instead.")
    if X.dtype != dtype or X.device != (device or X.device):
        raise TypeError(f"{X_name} must be {dtype} on {device or 'one device'}. Got {X.dtype} on {X.device} instead.")
    if not len(X):
        raise ValueError(f"{X_name} must hold at least one image. Got 0 images instead.")
    if y is None:
        return
    if not isinstance(y, torch.Tensor) or y.dtype != torch.int64:
        got = y.dtype if isinstance(y, torch.Tensor) else type(y).__name__
        raise TypeError(f"{y_name} must be an int64 torch.Tensor of labels (N,). Got {got} instead.")
    if y.shape != (len(X),):
        raise ValueError(f"{y_name} must have shape ({len(X)},) to match the images. Got {tuple(y.shape)} instead.")
    if num_classes is not None and bool(((y < 0) | (y >= num_classes)).any()):   # a host sync
        raise ValueError(f"{y_name} must hold labels in [0, {num_classes}). "
                         f"Got values in [{int(y.min())}, {int(y.max())}] instead.")


def check_inputs(model: nn.Module, X, y=None, *, images: bool = False, label_range: bool = True) -> None:
    """The images (and labels) ``model`` is asked to predict (and score, or train on)."""
    linears, param = [m for m in model.modules() if isinstance(m, nn.Linear)], next(model.parameters())
    check_data(X, y, num_features=linears[0].in_features, num_classes=linears[-1].out_features if label_range
               else None, dtype=param.dtype, device=param.device, images=images)


def _check_epoch(model: nn.Module, X, y, batch_size) -> None:
    check_inputs(model, X, y, label_range=False)                # no host sync in an epoch
    if min(check_positive_int("batch_size", batch_size), len(X)) == 1 and \
            any(isinstance(m, nn.BatchNorm1d) for m in model.modules()):
        raise ValueError("The 'batch_size' parameter must give training batches of at least 2 images for BatchNorm "
                         f"(one image has no variance). Got batch_size={batch_size} on {len(X)} images instead.")


def _check_fit(config: MLPConfig, data: TensorSplits, num_train_eval) -> tuple[torch.Tensor, torch.Tensor]:
    """Check the data against the config; return the monitored split (X, y)."""
    if config.normalize != data.normalize:
        raise ValueError(f"The config expects inputs normalised as {config.normalize!r}. Got data normalised as "
                         f"{data.normalize!r} instead (see zca_splits).")
    check_positive_int("num_train_eval", num_train_eval)
    monitored = "sel" if data.X_sel is not None and len(data.X_sel) else "val"
    D = device = None                                           # then those of the training images
    for split in ("train", "val", monitored):
        X, y = getattr(data, "X_" + split), getattr(data, "y_" + split)
        check_data(X, y, num_features=D, num_classes=len(data.class_names), device=device, split=split)
        if not torch.isfinite(X).all():
            raise ValueError(f"The data's 'X_{split}' must be finite. Got NaN or inf values instead.")
        D, device = X.shape[1:].numel(), X.device
    return getattr(data, "X_" + monitored), getattr(data, "y_" + monitored)
