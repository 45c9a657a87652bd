"""Summaries of predictions and of repeated runs: confusion matrices, per-class accuracy, seed spreads,
and when a difference between two settings is larger than their seed noise."""
from __future__ import annotations

import math

import numpy as np

from ._checks import check_labels, check_positive_float, check_positive_int


def confusion_matrix(y_true, y_pred, num_classes: int) -> np.ndarray:
    """(C, C) counts: row i, column j counts images of class i predicted as class j."""
    num_classes = check_positive_int("num_classes", num_classes)
    y_true = check_labels(y_true, num_samples=len(y_true), name="y_true")
    y_pred = check_labels(y_pred, num_samples=len(y_true), name="y_pred")
    for name, y in (("y_true", y_true), ("y_pred", y_pred)):
        if y.size and (y.min() < 0 or y.max() >= num_classes):
            raise ValueError(f"The {name!r} parameter must hold labels in [0, {num_classes}). "
                             f"Got values in [{y.min()}, {y.max()}] instead.")
    return np.bincount(y_true * num_classes + y_pred, minlength=num_classes ** 2).reshape(num_classes, num_classes)


def per_class_accuracy(matrix: np.ndarray) -> np.ndarray:
    """Recall of each class (C,) from a confusion matrix (NaN for a class with no image)."""
    matrix = np.asarray(matrix, dtype=float)
    totals = matrix.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, np.diag(matrix) / totals, np.nan)


def _values(name: str, values) -> np.ndarray:
    values = np.asarray(list(values), dtype=float)
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"The {name!r} parameter must hold at least one number. Got {values.tolist()!r} instead.")
    return values


def mean_std(values) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1; 0 for a single value) of per-seed results."""
    values = _values("values", values)
    return float(values.mean()), float(values.std(ddof=1)) if values.size > 1 else 0.0


def seed_summary(values) -> dict:
    """``mean``, sample ``std`` (ddof=1), ``n`` and standard error of the mean ``se`` = std / sqrt(n)
    of one setting's per-seed results (std and se are 0 for a single seed: no estimate of the noise)."""
    values = _values("values", values)
    mean, std = mean_std(values)
    return {"mean": mean, "std": std, "n": values.size, "se": std / math.sqrt(values.size)}


def exceeds_noise(a, b, *, z: float = 2.0) -> bool:
    """Whether the mean results of two settings over seeds differ by more than their seed noise.

    The rule (Welch's two-standard-error rule): with ``n_a``, ``n_b`` seeds and sample variances
    ``s_a^2``, ``s_b^2`` (ddof=1), the standard error of the difference of the means is
    ``se = sqrt(s_a^2 / n_a + s_b^2 / n_b)``, and the difference exceeds the noise when
    ``|mean_a - mean_b| > z * se`` (strictly). ``z = 2`` is about a 95 % two-sided level.

    * With fewer than two seeds on either side there is no estimate of the noise: never (a tie).
    * With no spread at all (``se == 0``) any difference in the means exceeds it.

    Symmetric in ``a`` and ``b``; it says *whether* they differ, not which is larger.
    """
    z = check_positive_float("z", z)
    a, b = _values("a", a), _values("b", b)
    if a.size < 2 or b.size < 2:
        return False
    se = math.sqrt(a.var(ddof=1) / a.size + b.var(ddof=1) / b.size)
    return bool(abs(a.mean() - b.mean()) > z * se)


def unit_similarity(W1) -> float:
    """How alike a layer's units are: the mean absolute correlation between the weight vectors of
    every pair of distinct units, W1 (D, H) holding one unit per column (0: unrelated, 1: all alike)."""
    W1 = np.asarray(W1, dtype=float)
    if W1.ndim != 2 or W1.shape[1] < 2:
        raise ValueError(f"The 'W1' parameter must have shape (D, H) with H >= 2 units. Got {W1.shape} instead.")
    corr = np.corrcoef(W1.T)                                # (H, H)
    H = corr.shape[0]
    return float((np.abs(corr).sum() - np.trace(np.abs(corr))) / (H * (H - 1)))
