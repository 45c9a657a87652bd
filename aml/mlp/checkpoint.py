"""Saving and loading a trained MLP with its config. Files are read with ``weights_only=True`` (an
untrusted checkpoint cannot run code), and their tensors must fit the model of their config."""
from __future__ import annotations

from pathlib import Path

import torch

from ..runs import atomic_path
from .config import MLPConfig
from .model import MultiLayerPerceptron, build_model


def save_checkpoint(path, model: MultiLayerPerceptron, config: MLPConfig) -> Path:
    """Write the model's weights, sizes and config to ``path`` atomically (no half-written file)."""
    blob = {"state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()}, "config": config.to_dict(),
            "input_size": model.linears[0].in_features, "num_classes": model.linears[-1].out_features}
    with atomic_path(path) as tmp:        # a directory at ``path``: IsADirectoryError naming it
        torch.save(blob, tmp)
    return Path(path)


def load_checkpoint(path, device=None) -> tuple[MultiLayerPerceptron, MLPConfig]:
    """Load a checkpoint written by :func:`save_checkpoint`; return (model, config).

    A file that cannot be read safely, holds an impossible config, tensors that are not finite, or a
    state_dict whose keys or shapes differ from its config's model raises ``ValueError`` naming it.
    """
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        config = MLPConfig.from_dict(blob["config"])
        model = build_model(config, blob["input_size"], blob["num_classes"])
        state = dict(blob["state_dict"])
    except Exception as e:  # noqa: BLE001 - torch raises UnpicklingError, RuntimeError, EOFError, ...
        raise ValueError(f"The checkpoint {path} cannot be read safely as a save_checkpoint file "
                         f"({type(e).__name__}: {' '.join(str(e).split('. ')[0].split())[:200]}).") from None
    bad = [k for k, v in state.items() if not isinstance(v, torch.Tensor) or not torch.isfinite(v).all()
           or (k.endswith("running_var") and (v < 0).any())]
    if bad:
        raise ValueError(f"The checkpoint {path} must hold finite tensors (BatchNorm variances >= 0). Got {bad} "
                         "wrong instead.")
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:                 # missing or unexpected keys, or a shape that differs
        raise ValueError(f"The checkpoint {path} does not fit the model of its config: "
                         f"{' '.join(str(e).split())}") from None
    return model if device is None else model.to(device), config
