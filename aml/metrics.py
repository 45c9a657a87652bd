"""Summaries of predictions and of repeated runs: confusion matrices, per-class accuracy, seed spreads,
and when a difference between two settings is larger than their seed noise."""
from __future__ import annotations

import math

import numpy as np

from ._checks import check_labels, check_positive_int


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


def mean_std(values) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1; 0 for a single value)."""
    values = np.asarray(list(values), dtype=float)
    if values.size == 0:
        raise ValueError("The 'values' parameter must hold at least one value. Got none instead.")
    return float(values.mean()), float(values.std(ddof=1)) if values.size > 1 else 0.0


def exceeds_noise(a, b, *, z: float = 2.0) -> bool:
    """Whether the means of two samples of seeds differ by more than ``z`` standard errors of their
    difference (Welch's form, sqrt(s_a^2 / n_a + s_b^2 / n_b)); with one seed each, never."""
    a, b = np.asarray(list(a), dtype=float), np.asarray(list(b), dtype=float)
    if a.size < 2 or b.size < 2:
        return False
    se = math.sqrt(a.var(ddof=1) / a.size + b.var(ddof=1) / b.size)
    diff = abs(a.mean() - b.mean())
    return diff > z * se if se > 0 else diff > 0


def median_index(values) -> int:
    """Index of the median value (the lower middle one for an even count): a typical run, not the luckiest."""
    values = list(values)
    if not values:
        raise ValueError("The 'values' parameter must hold at least one value. Got none instead.")
    order = sorted(range(len(values)), key=lambda i: (values[i], i))
    return order[(len(values) - 1) // 2]
