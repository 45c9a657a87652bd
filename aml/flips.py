"""Horizontal flips, the one home of every flip: of images, as training augmentation, and as test-time averaging.

Images are HWC-flattened 32x32x3 rows (N, 3072), possibly centred and scaled (flipping commutes with
both, since the mean image is subtracted before and the scale is global).
"""
from __future__ import annotations

import numpy as np

from .data import IMAGE_SHAPE


def hflip_images(X: np.ndarray) -> np.ndarray:
    """Mirror HWC-flattened 32x32x3 images (N, 3072) left to right; returns a new array."""
    N = X.shape[0]
    if X.ndim != 2 or X.shape[1] != int(np.prod(IMAGE_SHAPE)):
        raise ValueError(f"The 'X' parameter must hold flattened 32x32x3 images, shape (N, 3072). "
                         f"Got shape {X.shape} instead.")
    return np.ascontiguousarray(X.reshape(N, *IMAGE_SHAPE)[:, :, ::-1, :]).reshape(X.shape)   # N = 0 too


def random_hflip(X_batch: np.ndarray, idx: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Solver augmentation: mirror each image of the minibatch (n, 3072) with probability 1/2."""
    flip = rng.random(X_batch.shape[0]) < 0.5
    out = X_batch.copy()
    out[flip] = hflip_images(X_batch[flip])
    return out


def flip_averaged_scores(model, X: np.ndarray, transform=None) -> np.ndarray:
    """Mean scores (N, C) of each image X (N, 3072) and of its mirror image (test-time flips), each
    passed through ``transform`` (the run's input transform) first when given."""
    transform = transform or (lambda Z: Z)
    return 0.5 * (model.scores(transform(X)) + model.scores(transform(hflip_images(X))))


def flip_averaged_predict(model, X: np.ndarray, transform=None) -> np.ndarray:
    """Labels (N,) from :func:`flip_averaged_scores`."""
    return np.argmax(flip_averaged_scores(model, X, transform), axis=1)
