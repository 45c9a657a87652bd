"""Saving and loading a trained MLP with its config. Files are read with ``weights_only=True``,
so an untrusted checkpoint cannot run code, and every tensor is checked (finite values, BatchNorm
running variances >= 0) before it reaches a model."""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..runs import atomic_path, to_jsonable
from .config import MLPConfig
from .train import build_model


def save_checkpoint(path, model: nn.Module, config: MLPConfig, **extra) -> Path:
    """Write the model's weights, its config and ``extra`` (plain JSON-like values) atomically.

    ``extra`` is converted to plain Python numbers, strings, lists and dicts first, so that every
    file written here is one that :func:`load_checkpoint` accepts.
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"The 'path' parameter must name a file to write. Got the directory {path} instead.")
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    if not state:
        raise ValueError("The 'model' parameter has an empty state_dict; there is nothing to save.")
    blob = {"state_dict": state, "config": config.to_dict(), **to_jsonable(extra, "extra")}
    with atomic_path(path) as tmp:
        torch.save(blob, tmp)
    return path


def load_checkpoint(path, model: nn.Module | None = None, device=None):
    """Load a checkpoint written by :func:`save_checkpoint`; return (model, config).

    With ``model`` given, its parameters must match the checkpoint's (``load_state_dict(strict=True)``):
    a mismatch raises ``ValueError`` naming the parameter and both shapes. An empty, truncated or
    foreign file, NaN/inf values or a negative BatchNorm running variance raise ``ValueError`` naming
    the file.
    """
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - torch raises UnpicklingError, RuntimeError, EOFError, ...
        raise ValueError(f"The checkpoint {path} cannot be read safely ({type(e).__name__}: "
                         f"{(str(e).splitlines() or ['empty'])[0][:300]}).") from None
    if not isinstance(blob, dict):
        raise ValueError(f"The checkpoint {path} must hold a dict. Got {type(blob).__name__} instead.")
    missing = [k for k in ("state_dict", "config") if k not in blob]
    if missing:
        raise ValueError(f"The checkpoint {path} lacks {missing}; it was not written by save_checkpoint.")
    try:
        config = MLPConfig.from_dict(blob["config"])
    except (TypeError, ValueError) as e:
        raise ValueError(f"The checkpoint {path} holds an impossible config: {e}") from None
    state = blob["state_dict"]
    _check_values(path, state)
    weights = [v for k, v in state.items() if k.endswith("weight") and v.ndim == 2]
    if not weights:
        raise ValueError(f"The checkpoint {path} holds no Linear weights (an empty or foreign state_dict).")
    if model is None:
        model = build_model(config, weights[0].shape[1], weights[-1].shape[0])
    _check_shapes(path, model, state)
    model.load_state_dict(state, strict=True)
    if device is not None:
        model.to(device)
    return model, config


def _check_shapes(path, model: nn.Module, state: dict) -> None:
    """``load_state_dict`` names missing keys itself, but reports shapes without the file; add it."""
    own = model.state_dict()
    for k in (k for k in own if k in state):
        if own[k].shape != state[k].shape:
            raise ValueError(f"Checkpoint {path} does not fit the model: {k!r} has shape "
                             f"{tuple(state[k].shape)} in the checkpoint and {tuple(own[k].shape)} in the model.")
    extra, missing = sorted(state.keys() - own.keys()), sorted(own.keys() - state.keys())
    if extra or missing:
        raise ValueError(f"Checkpoint {path} does not fit the model: only in the checkpoint {extra}, "
                         f"only in the model {missing}.")


def _check_values(path, state) -> None:
    """Every entry a tensor; floating ones finite; BatchNorm running variances >= 0."""
    if not isinstance(state, dict):
        raise ValueError(f"The checkpoint {path} must hold a state_dict (a dict). Got {type(state).__name__} instead.")
    for k, v in state.items():
        if not isinstance(v, torch.Tensor):
            raise ValueError(f"The checkpoint {path} must hold tensors. Got {type(v).__name__} for {k!r} instead.")
        if v.is_floating_point() and not torch.isfinite(v).all():
            raise ValueError(f"The checkpoint {path} must hold finite values. Got NaN or inf in {k!r} instead.")
        if k.endswith("running_var") and (v < 0).any():
            raise ValueError(f"The checkpoint {path} must hold BatchNorm running variances >= 0. "
                             f"Got {float(v.min()):.3g} in {k!r} instead.")
