"""Why a deep network does or does not train: the scale of the signal and of the gradients per layer."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .model import MultiLayerPerceptron


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
