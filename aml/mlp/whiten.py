"""ZCA whitening of images for the MLP: decorrelate the pixels and give every direction of the training
images (nearly) unit variance, with the small-variance directions damped by ``eps``.

The covariance is estimated on the training images *and their mirror images*, so the whitening matrix
commutes with the horizontal flip: flipping whitened images equals whitening flipped ones, and the flip
augmentation keeps its meaning. Used by the GPU budget of Q4 (a sweep on a GPU found it helps wide
networks trained long, and hurts at the CPU budget's sizes: benchmarks/gpu_runs/).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

from .._checks import check_positive_float
from .data import TensorSplits


@dataclass(frozen=True)
class ZCA:
    """``x -> (x - mean) W`` on flattened images; ``W = U diag(1 / sqrt(lambda + eps)) U^T`` is symmetric."""
    mean: torch.Tensor       # (D,)
    W: torch.Tensor          # (D, D)

    def __call__(self, X: torch.Tensor) -> torch.Tensor:
        D = self.mean.numel()
        if X.ndim < 2 or X.shape[1:].numel() != D:
            raise ValueError(f"The 'X' parameter must hold images of {D} values each (the fitted shape). "
                             f"Got shape {tuple(X.shape)} instead.")
        flat = X.reshape(len(X), D).to(self.W.dtype) - self.mean
        return (flat @ self.W).to(torch.float32).reshape(X.shape)


def fit_zca(X: torch.Tensor, *, eps: float = 0.1, chunk: int = 8192) -> ZCA:
    """Fit ZCA on images ``X`` (N, C, H, W) and their mirrors, in float64 on ``X``'s device.

    ``eps`` is relative to the mean eigenvalue of the covariance: a direction of variance ``lambda``
    ends with variance ``lambda / (lambda + eps * mean(lambda))``.
    """
    eps = check_positive_float("eps", eps)
    if X.ndim != 4:
        raise ValueError(f"The 'X' parameter must be images (N, C, H, W). Got shape {tuple(X.shape)} instead.")
    N = len(X)
    if N < 2:
        raise ValueError(f"The 'X' parameter must hold at least 2 images. Got {N} instead.")
    D = X[0].numel()
    total = torch.zeros(D, dtype=torch.float64, device=X.device)
    for start in range(0, N, chunk):
        block = X[start:start + chunk].double()
        total += block.reshape(len(block), D).sum(0) + block.flip(-1).reshape(len(block), D).sum(0)
    mean = total / (2 * N)
    cov = torch.zeros(D, D, dtype=torch.float64, device=X.device)
    for start in range(0, N, chunk):
        block = X[start:start + chunk].double()
        for b in (block, block.flip(-1)):
            a = b.reshape(len(b), D) - mean
            cov += a.T @ a
    cov /= 2 * N
    lam, U = torch.linalg.eigh(cov)
    lam = lam.clamp(min=0)
    W = (U * torch.rsqrt(lam + eps * lam.mean())) @ U.T
    return ZCA(mean=mean, W=(W + W.T) / 2)


def zca_splits(data: TensorSplits, *, eps: float = 0.1) -> TensorSplits:
    """Every split of ``data`` whitened by the ZCA fitted on its training images; ``normalize="zca"``."""
    zca = fit_zca(data.X_train, eps=eps)
    X_sel = zca(data.X_sel) if data.X_sel is not None else None
    return dataclasses.replace(data, X_train=zca(data.X_train), X_sel=X_sel, X_val=zca(data.X_val),
                               test=data.test.map(zca), normalize="zca")
