"""First-order update rules, one pure function each, as in CS231n's ``optim.py``.

Every rule is ``next_w, next_config = rule(w, dw, config)``: ``w`` a parameter array, ``dw`` its gradient (same
shape), ``config`` a dict with ``learning_rate`` (and ``momentum``, and the ``velocity`` of the previous step, absent
at the first). Nothing is changed in place: a new array and a new dict are returned."""
from __future__ import annotations

import numpy as np


def sgd(w: np.ndarray, dw: np.ndarray, config: dict) -> tuple[np.ndarray, dict]:
    """Vanilla SGD: ``w <- w - lr dw``."""
    return w - config["learning_rate"] * dw, config


def sgd_momentum(w: np.ndarray, dw: np.ndarray, config: dict) -> tuple[np.ndarray, dict]:
    """Classical (heavy-ball) momentum: ``v <- mu v - lr dw``; ``w <- w + v`` (v starts at 0)."""
    v = config["momentum"] * config.get("velocity", 0.0) - config["learning_rate"] * dw
    return w + v, {**config, "velocity": v}


def nesterov_momentum(w: np.ndarray, dw: np.ndarray, config: dict) -> tuple[np.ndarray, dict]:
    """Nesterov's accelerated gradient in the form of Sutskever et al. (2013), as CS231n writes it:
    ``v' <- mu v - lr dw``; ``w <- w - mu v + (1 + mu) v'``."""
    mu, v = config["momentum"], config.get("velocity", 0.0)
    v_next = mu * v - config["learning_rate"] * dw
    return w - mu * v + (1 + mu) * v_next, {**config, "velocity": v_next}
