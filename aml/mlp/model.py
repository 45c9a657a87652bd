"""``MultiLayerPerceptron`` (Q4a), the meaning of depth, and the per-layer signal scales behind Q4c.

Depth is the number of ``nn.Linear`` layers: depth 2 is ``hidden_layers=[50]``, the handout's net.
Shapes: N samples, D inputs (3072), H hidden units, C classes."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .._checks import check_choice, check_interval, check_positive_int

HANDOUT_STD = 1e-3           # the handout's weights_init: N(0, 1e-3^2) weights, zero biases


class MultiLayerPerceptron(nn.Module):
    """Flatten - [Linear - (BatchNorm1d) - ReLU - (Dropout)] x (depth - 1) - Linear.

    Parameters
    ----------
    input_size, num_classes : int
        D (3072) and C: ``forward`` maps (N, 3, 32, 32) or (N, D) to logits (N, C), no softmax.
    hidden_layers : sequence of int
        H of each hidden layer; ``[50]`` is the handout's two-layer net.
    batch_norm : bool
        BatchNorm1d after each hidden Linear (whose bias it makes redundant: dropped).
    dropout : float in [0, 1)
        Dropout after each hidden ReLU.
    init : {"handout", "kaiming"}
        Weights N(0, 1e-3^2) (the handout's) or N(0, 2 / fan_in) (He et al. 2015); biases zero.
    """

    def __init__(self, input_size, hidden_layers, num_classes, *, batch_norm=False, dropout=0.0,
                 init="handout"):
        super().__init__()
        widths = [input_size, *check_mlp_args(hidden_layers, dropout, init, input_size, num_classes)]
        layers = [nn.Flatten()]                                 # (N, 3, 32, 32) -> (N, D)
        for fan_in, fan_out in zip(widths[:-1], widths[1:]):
            layers.append(nn.Linear(fan_in, fan_out, bias=not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm1d(fan_out))
            layers.append(nn.ReLU())
            if dropout:
                layers.append(nn.Dropout(dropout))
        layers.append(nn.Linear(widths[-1], num_classes))
        self.layers = nn.Sequential(*layers)
        for linear in self.linears:
            if init == "handout":
                nn.init.normal_(linear.weight, 0.0, HANDOUT_STD)
            else:
                nn.init.kaiming_normal_(linear.weight, nonlinearity="relu")
            if linear.bias is not None:
                nn.init.zeros_(linear.bias)

    @property
    def linears(self) -> list[nn.Linear]:
        return [m for m in self.layers if isinstance(m, nn.Linear)]

    @property
    def depth(self) -> int:
        return len(self.linears)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def check_mlp_args(hidden_layers, dropout=0.0, init="handout", input_size=1, num_classes=1) -> tuple[int, ...]:
    """Check the model's arguments; return ``hidden_layers`` as a tuple of positive ints."""
    if isinstance(hidden_layers, (int, np.integer, str)) or not np.iterable(hidden_layers) or not len(hidden_layers):
        raise TypeError("The 'hidden_layers' parameter must be a non-empty sequence of ints such as [50]. "
                        f"Got {hidden_layers!r} instead.")
    check_positive_int("input_size", input_size)
    check_positive_int("num_classes", num_classes)
    check_interval("dropout", dropout, 0.0, 1.0)
    check_choice("init", init, ("handout", "kaiming"))
    return tuple(check_positive_int("hidden_layers[]", h) for h in hidden_layers)


def hidden_layers_for_depth(depth: int, width: int) -> tuple[int, ...]:
    """The ``hidden_layers`` of a net with ``depth`` >= 2 Linear layers, each hidden one ``width`` wide."""
    if check_positive_int("depth", depth) < 2:
        raise ValueError(f"The 'depth' parameter must be at least 2 (one hidden layer). Got {depth} instead.")
    return (check_positive_int("width", width),) * (depth - 1)


def build_model(config, input_size: int = 3072, num_classes: int = 10) -> MultiLayerPerceptron:
    """The model of an :class:`MLPConfig`, its weights seeded by ``config.seed`` (torch's global RNG untouched)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        return MultiLayerPerceptron(input_size, config.hidden_layers, num_classes, batch_norm=config.batch_norm,
                                    dropout=config.dropout, init=config.init)


def layer_statistics(model: MultiLayerPerceptron, X: torch.Tensor, y: torch.Tensor, *,
                     weight_decay: float = 0.0) -> dict[str, list[float]]:
    """Per Linear layer, input side first, on one batch X (N, D), y (N,) in train mode: ``activation_std``
    (std of its output), ``grad_std`` (of dLoss/dW, the data loss) and ``decay_std`` (of ``weight_decay * W``)."""
    model.train()
    model.zero_grad(set_to_none=True)
    h, outputs = X, []
    for layer in model.layers:
        h = layer(h)
        if isinstance(layer, nn.Linear):
            outputs.append(h.detach())
    F.cross_entropy(h, y).backward()
    stats = {"activation_std": [o.float().std().item() for o in outputs],
             "grad_std": [m.weight.grad.float().std().item() for m in model.linears],
             "decay_std": [weight_decay * m.weight.detach().float().std().item() for m in model.linears]}
    model.zero_grad(set_to_none=True)
    return stats
