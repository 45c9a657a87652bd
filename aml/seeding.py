"""One call that seeds every global generator a notebook may touch."""
from __future__ import annotations

import random

import numpy as np

from ._checks import check_seed


def set_seed(seed: int) -> None:
    """Seed Python, NumPy's global generator and torch (if installed) in one call, for notebooks.

    The seed (an int in [0, 2**32)) is validated before any generator is touched, so a bad seed
    leaves them all as they were.
    """
    seed = check_seed("seed", seed)
    random.seed(seed)
    np.random.seed(seed)
    try:
        import torch
    except ImportError:  # torch is optional for the NumPy half of the project
        return
    torch.manual_seed(seed)
