"""The PyTorch half (Q4): ``MultiLayerPerceptron``, a GPU-resident CIFAR-10 data path, and small
train / evaluate functions with explicit arguments.

Depth is the number of ``nn.Linear`` layers: depth 2 is ``hidden_layers=[50]``, the handout's
two-layer network; depth k has k - 1 hidden layers.

Shapes: N samples, C classes; images are (N, 3, 32, 32) tensors, flattened to (N, 3072) by the
model's first layer.
"""
from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ._checks import check_choice, check_interval, check_nonneg_int, check_positive_float, check_positive_int
from .data import CLASS_NAMES, check_split_sizes, load_cifar10_images
from .utils import atomic_path

ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh}
INITS = ("kaiming", "handout", "torch")
HANDOUT_STD = 1e-3


class MultiLayerPerceptron(nn.Module):
    """Flatten - [Linear - (BatchNorm) - activation - (Dropout)] x (depth - 1) - Linear.

    Parameters
    ----------
    input_size : int
        D (3072 for CIFAR-10).
    hidden_layers : sequence of int
        Width of each hidden layer; ``[50]`` is the handout's two-layer net (depth 2).
    num_classes : int
        C. The forward pass returns logits (N, C): no softmax, ``CrossEntropyLoss`` applies it.
    activation : {"relu", "gelu", "tanh"}
    batch_norm : bool
        BatchNorm1d after each hidden Linear (whose bias is then dropped as redundant).
    dropout : float in [0, 1)
        Dropout after each hidden activation.
    init : {"kaiming", "handout", "torch"}
        ``"kaiming"``: N(0, 2 / fan_in) weights (He et al. 2015), zero biases; ``"handout"``: N(0, 1e-3^2)
        weights, zero biases (the handout's ``weights_init``); ``"torch"``: PyTorch's default.
    """

    def __init__(self, input_size, hidden_layers, num_classes, *, activation="relu", batch_norm=False,
                 dropout=0.0, init="kaiming"):
        super().__init__()
        input_size = check_positive_int("input_size", input_size)
        num_classes = check_positive_int("num_classes", num_classes)
        hidden_layers = [check_positive_int("hidden_layers[]", h) for h in _as_list(hidden_layers)]
        check_choice("activation", activation, ACTIVATIONS)
        dropout = check_interval("dropout", dropout, 0.0, 1.0)
        self.init = check_choice("init", init, INITS)

        layers: list[nn.Module] = [nn.Flatten()]
        widths = [input_size, *hidden_layers]
        for fan_in, fan_out in zip(widths[:-1], widths[1:]):
            layers.append(nn.Linear(fan_in, fan_out, bias=not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm1d(fan_out))
            layers.append(ACTIVATIONS[activation]())
            if dropout:
                layers.append(nn.Dropout(dropout))
        layers.append(nn.Linear(widths[-1], num_classes))
        self.layers = nn.Sequential(*layers)
        self.reset_parameters()

    @property
    def linears(self) -> list[nn.Linear]:
        return [m for m in self.layers if isinstance(m, nn.Linear)]

    @property
    def depth(self) -> int:
        """Number of Linear layers."""
        return len(self.linears)

    def reset_parameters(self) -> None:
        for m in self.linears:
            if self.init == "kaiming":
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            elif self.init == "handout":
                nn.init.normal_(m.weight, 0.0, HANDOUT_STD)
            else:
                m.reset_parameters()
            if m.bias is not None and self.init != "torch":
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Images (N, 3, 32, 32) or rows (N, D) -> logits (N, C)."""
        return self.layers(x)


def _as_list(hidden_layers) -> list:
    if isinstance(hidden_layers, (int, np.integer)):
        raise TypeError("The 'hidden_layers' parameter must be a sequence of ints such as [50]. "
                        f"Got the int {hidden_layers} instead.")
    try:
        return list(hidden_layers)
    except TypeError:
        raise TypeError("The 'hidden_layers' parameter must be a sequence of ints such as [50]. "
                        f"Got {hidden_layers!r} instead.") from None


def hidden_layers_for_depth(depth: int, width: int) -> tuple[int, ...]:
    """The ``hidden_layers`` of a net with ``depth`` Linear layers, each hidden layer ``width`` wide."""
    depth = check_positive_int("depth", depth)
    if depth < 2:
        raise ValueError(f"The 'depth' parameter must be at least 2 (one hidden layer). Got {depth} instead.")
    return (check_positive_int("width", width),) * (depth - 1)


def pick_device(prefer: str | None = None) -> torch.device:
    """``prefer`` if given, else CUDA when available, then Apple's MPS, else the CPU."""
    if prefer is not None:
        return torch.device(prefer)
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


# ---------------------------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------------------------

CIFAR_MEAN = (0.49139968, 0.48215841, 0.44653091)
CIFAR_STD = (0.24703223, 0.24348513, 0.26158784)


@dataclass
class TensorSplits:
    """CIFAR-10 as float tensors (N, 3, 32, 32) and int64 labels (N,), all on one device.

    ``X_test`` holds all 10,000 test images; the handout's test set is their first 1,000.
    """
    X_train: torch.Tensor
    y_train: torch.Tensor
    X_val: torch.Tensor
    y_val: torch.Tensor
    X_test: torch.Tensor
    y_test: torch.Tensor
    class_names: tuple = CLASS_NAMES
    normalize: str = "handout"      # how the images were normalised (see to_tensor_images)

    @property
    def device(self) -> torch.device:
        return self.X_train.device

    def subset(self, num_train: int) -> "TensorSplits":
        """The first ``num_train`` training images (for quick runs); other splits unchanged."""
        return dataclasses.replace(self, X_train=self.X_train[:num_train], y_train=self.y_train[:num_train])


def to_tensor_images(images: np.ndarray, normalize: str = "handout") -> torch.Tensor:
    """uint8 (N, 32, 32, 3) -> float32 (N, 3, 32, 32).

    ``"handout"``: ToTensor + Normalize(0.5, 0.5) per channel, i.e. [-1, 1];
    ``"standard"``: per-channel mean 0, std 1 (CIFAR-10 training statistics).
    """
    check_choice("normalize", normalize, {"handout", "standard"})
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div_(255)
    if normalize == "handout":
        mean, std = (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)
    else:
        mean, std = CIFAR_MEAN, CIFAR_STD
    mean_t = torch.tensor(mean).view(1, 3, 1, 1)
    std_t = torch.tensor(std).view(1, 3, 1, 1)
    return x.sub_(mean_t).div_(std_t).contiguous()


def load_tensor_splits(root=None, *, normalize="handout", device=None, num_training=49000,
                       num_validation=1000, download=True) -> TensorSplits:
    """Read CIFAR-10 once through :mod:`aml.data`, normalise it, and put every split on ``device``."""
    device = pick_device() if device is None else torch.device(device)
    X_all, y_all, X_te, y_te = load_cifar10_images(root, download=download)
    n_tr, n_val = check_positive_int("num_training", num_training), check_nonneg_int("num_validation", num_validation)
    check_split_sizes(n_tr, n_val, X_all.shape[0])

    def put(X, y):
        return to_tensor_images(X, normalize).to(device), torch.from_numpy(y).to(device)

    return TensorSplits(*put(X_all[:n_tr], y_all[:n_tr]), *put(X_all[n_tr:n_tr + n_val], y_all[n_tr:n_tr + n_val]),
                        *put(X_te, y_te), normalize=normalize)


def augment_batch(x: torch.Tensor, generator: torch.Generator, *, flip: bool = True,
                  crop_padding: int = 0) -> torch.Tensor:
    """Random horizontal flip and random crop with zero padding, on a whole batch (N, 3, 32, 32) at once."""
    N, _, H, W = x.shape
    dev = x.device
    if flip:
        mask = torch.rand(N, generator=generator, device=generator.device).to(dev) < 0.5
        x = torch.where(mask.view(N, 1, 1, 1), x.flip(3), x)
    if crop_padding:
        p = crop_padding
        padded = F.pad(x, (p, p, p, p))
        dy = torch.randint(0, 2 * p + 1, (N,), generator=generator, device=generator.device).to(dev)
        dx = torch.randint(0, 2 * p + 1, (N,), generator=generator, device=generator.device).to(dev)
        rows = (dy.view(N, 1) + torch.arange(H, device=dev)).view(N, 1, H, 1)
        cols = (dx.view(N, 1) + torch.arange(W, device=dev)).view(N, 1, 1, W)
        n = torch.arange(N, device=dev).view(N, 1, 1, 1)
        c = torch.arange(x.shape[1], device=dev).view(1, -1, 1, 1)
        x = padded[n, c, rows, cols]
    return x


# ---------------------------------------------------------------------------------------------
# training
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class MLPConfig:
    """Everything that defines one Q4 training run. Defaults are the handout's."""
    hidden_layers: tuple = (50,)
    num_epochs: int = 10
    batch_size: int = 200
    lr: float = 1e-3
    weight_decay: float = 1e-3
    optimizer: str = "adam"          # "adam" (L2 through the gradient, as the handout) or "adamw" (decoupled)
    schedule: str = "step"           # "step": lr x lr_decay each epoch (handout); "cosine"; "onecycle"
    lr_decay: float = 0.95
    init: str = "handout"
    batch_norm: bool = False
    dropout: float = 0.0
    activation: str = "relu"
    normalize: str = "handout"       # the inputs it expects: "handout" [-1, 1], "standard" z-score per channel
    flip: bool = False
    crop_padding: int = 0
    label_smoothing: float = 0.0
    seed: int = 0

    def __post_init__(self):
        object.__setattr__(self, "hidden_layers", tuple(_as_list(self.hidden_layers)))
        for h in self.hidden_layers:
            check_positive_int("hidden_layers[]", h)
        check_positive_int("num_epochs", self.num_epochs)
        check_positive_int("batch_size", self.batch_size)
        check_positive_float("lr", self.lr)
        check_interval("weight_decay", self.weight_decay, 0.0, math.inf)
        check_choice("optimizer", self.optimizer, {"adam", "adamw", "sgd"})
        check_choice("schedule", self.schedule, {"step", "cosine", "onecycle"})
        check_interval("lr_decay", self.lr_decay, 0.0, 1.0, closed_high=True)
        check_choice("init", self.init, INITS)
        check_interval("dropout", self.dropout, 0.0, 1.0)
        check_choice("activation", self.activation, ACTIVATIONS)
        check_choice("normalize", self.normalize, {"handout", "standard"})
        check_nonneg_int("crop_padding", self.crop_padding)
        check_interval("label_smoothing", self.label_smoothing, 0.0, 1.0)
        check_nonneg_int("seed", self.seed)

    @property
    def depth(self) -> int:
        return len(self.hidden_layers) + 1

    @classmethod
    def from_dict(cls, d: dict) -> "MLPConfig":
        unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"Unknown MLPConfig field(s) {sorted(unknown)}; "
                             f"valid fields are {[f.name for f in dataclasses.fields(cls)]}.")
        return cls(**d)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["hidden_layers"] = list(self.hidden_layers)
        return d


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
        opt = torch.optim.SGD(params, lr=config.lr, momentum=0.9, nesterov=True, weight_decay=config.weight_decay)
    total = config.num_epochs * steps_per_epoch
    if config.schedule == "step":
        # the handout's per-epoch decay, applied at each epoch boundary
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: config.lr_decay ** (step // steps_per_epoch))
    elif config.schedule == "cosine":
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 0.5 * (1 + math.cos(math.pi * step / total)))
    else:
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=config.lr, total_steps=total, pct_start=0.25)
    return opt, sched


def _autocast(device: torch.device):
    # bfloat16 mixed precision on CUDA (no loss scaling needed); full float32 elsewhere
    return torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")


def train_one_epoch(model: nn.Module, X: torch.Tensor, y: torch.Tensor, optimizer, scheduler, *,
                    batch_size: int, generator: torch.Generator, flip: bool = False, crop_padding: int = 0,
                    label_smoothing: float = 0.0) -> tuple[float, float]:
    """One pass over a fresh seeded permutation of (X, y). Returns (mean loss, running accuracy)."""
    model.train()
    N = X.shape[0]
    perm = torch.randperm(N, generator=generator, device=generator.device).to(X.device)
    total_loss = torch.zeros((), device=X.device)
    correct = torch.zeros((), device=X.device, dtype=torch.long)
    seen = 0
    for start in range(0, N - batch_size + 1 if N >= batch_size else 1, batch_size):
        idx = perm[start:start + batch_size]
        xb, yb = X.index_select(0, idx), y.index_select(0, idx)   # row copies: faster than X[idx] on 4-D tensors
        if flip or crop_padding:
            xb = augment_batch(xb, generator, flip=flip, crop_padding=crop_padding)
        with _autocast(X.device):
            logits = model(xb)
            loss = F.cross_entropy(logits, yb, label_smoothing=label_smoothing)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"The training loss became {loss.item()}; training diverged. "
                                     "Try a smaller learning rate.")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        total_loss += loss.detach() * yb.shape[0]
        correct += (logits.argmax(1) == yb).sum()
        seen += yb.shape[0]
    return total_loss.item() / seen, correct.item() / seen


@torch.no_grad()
def evaluate(model: nn.Module, X: torch.Tensor, y: torch.Tensor, batch_size: int = 2000) -> float:
    """Accuracy of the most confident class, in ``eval()`` mode."""
    model.eval()
    correct = 0
    for start in range(0, X.shape[0], batch_size):
        with _autocast(X.device):
            logits = model(X[start:start + batch_size])
        correct += (logits.argmax(1) == y[start:start + batch_size]).sum().item()
    return correct / max(X.shape[0], 1)


def fit(config: MLPConfig, data: TensorSplits, *, verbose: bool = False, num_train_eval: int = 5000):
    """Train the model of ``config`` on ``data``; return (model, history).

    history: ``train_loss``, ``train_acc`` (running, on the augmented minibatches),
    ``train_eval_acc`` (``eval()`` mode, on a fixed subset of ``num_train_eval`` training images),
    ``val_acc`` (per epoch), ``train_seconds``, ``device``.
    """
    if config.normalize != data.normalize:
        raise ValueError(f"The config expects inputs normalised as {config.normalize!r}, but the data were "
                         f"normalised as {data.normalize!r}; load them with load_tensor_splits(normalize="
                         f"{config.normalize!r}) or change the config.")
    device = data.device
    torch.manual_seed(config.seed)          # dropout masks draw from torch's global generator
    model = build_model(config, data.X_train[0].numel(), len(data.class_names)).to(device)
    steps = max(data.X_train.shape[0] // config.batch_size, 1)
    opt, sched = make_optimizer(model, config, steps)
    gen = torch.Generator(device="cpu").manual_seed(config.seed)
    sub = torch.randperm(data.X_train.shape[0], generator=gen)[:num_train_eval].to(device)
    X_sub, y_sub = data.X_train[sub], data.y_train[sub]
    history = {k: [] for k in ("train_loss", "train_acc", "train_eval_acc", "val_acc")}
    epochs = range(config.num_epochs)
    if verbose:
        from tqdm.auto import tqdm
        epochs = tqdm(epochs, desc=f"depth {config.depth}", unit="epoch", leave=False)
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in epochs:
        loss, acc = train_one_epoch(model, data.X_train, data.y_train, opt, sched, batch_size=config.batch_size,
                                    generator=gen, flip=config.flip, crop_padding=config.crop_padding,
                                    label_smoothing=config.label_smoothing)
        history["train_loss"].append(loss)
        history["train_acc"].append(acc)
        history["train_eval_acc"].append(evaluate(model, X_sub, y_sub))
        history["val_acc"].append(evaluate(model, data.X_val, data.y_val))
        if verbose:
            epochs.set_postfix(loss=f"{loss:.3f}", val_acc=f"{history['val_acc'][-1]:.3f}")
    if device.type == "cuda":
        torch.cuda.synchronize()
    history["train_seconds"] = time.perf_counter() - start
    history["device"] = str(device)
    return model, history


# ---------------------------------------------------------------------------------------------
# checkpoints
# ---------------------------------------------------------------------------------------------

def save_checkpoint(path, model: nn.Module, config: MLPConfig, **extra) -> Path:
    """Write the model's weights and its config atomically (temp file, then rename)."""
    path = Path(path)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    with atomic_path(path) as tmp:
        torch.save({"state_dict": state, "config": config.to_dict(), **extra}, tmp)
    return path


def load_checkpoint(path, model: nn.Module | None = None, device=None):
    """Load a checkpoint written by :func:`save_checkpoint`; return (model, config).

    With ``model`` given, its shapes must match the checkpoint's: a mismatch raises ``ValueError``
    naming both shapes.
    """
    blob = torch.load(path, map_location="cpu", weights_only=True)
    config = MLPConfig.from_dict(blob["config"])
    state = blob["state_dict"]
    if model is None:
        first = next(v for k, v in state.items() if k.endswith("weight") and v.ndim == 2)
        last = [v for k, v in state.items() if k.endswith("weight") and v.ndim == 2][-1]
        model = build_model(config, first.shape[1], last.shape[0])
    own = model.state_dict()
    for k in sorted(set(own) | set(state)):
        if k not in own or k not in state:
            raise ValueError(f"Checkpoint {path} does not fit the model: parameter {k!r} is only in the "
                             f"{'checkpoint' if k in state else 'model'}.")
        if own[k].shape != state[k].shape:
            raise ValueError(f"Checkpoint {path} does not fit the model: {k!r} has shape "
                             f"{tuple(state[k].shape)} in the checkpoint and {tuple(own[k].shape)} in the model.")
    model.load_state_dict(state)
    if device is not None:
        model.to(device)
    return model, config


def layer_statistics(model: MultiLayerPerceptron, X: torch.Tensor, y: torch.Tensor, *,
                     weight_decay: float = 0.0) -> dict[str, list[float]]:
    """Scale of the signal through each Linear layer of ``model`` on one batch, in train mode.

    Returns, per Linear layer (input side first): ``activation_std`` (std of the layer's output),
    ``grad_std`` (std of dLoss/dW for the data loss alone) and ``decay_std`` (std of
    ``weight_decay * W``, the L2 term that Adam adds to that gradient).
    """
    outputs = []
    hooks = [m.register_forward_hook(lambda _m, _i, out: outputs.append(out.detach())) for m in model.linears]
    model.train()
    model.zero_grad(set_to_none=True)
    try:
        F.cross_entropy(model(X), y).backward()
    finally:
        for h in hooks:
            h.remove()
    stats = {"activation_std": [o.float().std().item() for o in outputs],
             "grad_std": [m.weight.grad.float().std().item() for m in model.linears],
             "decay_std": [weight_decay * m.weight.detach().float().std().item() for m in model.linears]}
    model.zero_grad(set_to_none=True)
    return stats
