"""CIFAR-10 as device-resident tensors for the PyTorch half, and the choice of device.

Shapes: N samples; images are (N, 3, 32, 32) float32 tensors, labels (N,) int64.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch

from .._checks import check_choice, check_nonneg_int, check_positive_int
from ..data import CLASS_NAMES, check_split_sizes, load_cifar10_images

CIFAR_MEAN = (0.49139968, 0.48215841, 0.44653091)
CIFAR_STD = (0.24703223, 0.24348513, 0.26158784)


def pick_device(prefer: str | None = None) -> torch.device:
    """``prefer`` if given, else CUDA when available, then Apple's MPS, else the CPU."""
    if prefer is not None:
        return torch.device(prefer)
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


@dataclass
class TensorSplits:
    """CIFAR-10 as float tensors (N, 3, 32, 32) and int64 labels (N,), all on one device.

    ``X_test`` holds all 10,000 test images; the handout's test set is their first 1,000. Reach the
    test arrays only through :func:`aml.ledger.evaluate_on_test`.
    """
    X_train: torch.Tensor
    y_train: torch.Tensor
    X_val: torch.Tensor
    y_val: torch.Tensor
    X_test: torch.Tensor
    y_test: torch.Tensor
    class_names: tuple = CLASS_NAMES
    normalize: str = "handout"      # how the images were normalised (see to_tensor_images)

    @property
    def device(self) -> torch.device:
        return self.X_train.device

    def subset(self, num_train: int) -> "TensorSplits":
        """The first ``num_train`` training images (for quick runs); other splits unchanged."""
        num_train = check_positive_int("num_train", num_train)
        if num_train > self.X_train.shape[0]:
            raise ValueError(f"The 'num_train' parameter must be at most {self.X_train.shape[0]}. "
                             f"Got {num_train} instead.")
        return dataclasses.replace(self, X_train=self.X_train[:num_train], y_train=self.y_train[:num_train])


def to_tensor_images(images: np.ndarray, normalize: str = "handout") -> torch.Tensor:
    """Images (N, 32, 32, 3) -> normalised float32 (N, 3, 32, 32).

    ``images`` are uint8 in [0, 255] (divided by 255, as ``ToTensor`` does) or floats already in
    [0, 1] (used as they are). ``"handout"``: ``Normalize(0.5, 0.5)`` per channel, i.e. [-1, 1];
    ``"standard"``: per-channel mean 0, std 1 (CIFAR-10 training statistics).
    """
    check_choice("normalize", normalize, {"handout", "standard"})
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[3] != 3:
        raise ValueError(f"The 'images' parameter must have shape (N, H, W, 3). Got {images.shape} instead.")
    if images.dtype == np.uint8:
        x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div_(255)
    elif np.issubdtype(images.dtype, np.floating):
        if images.size and not (np.isfinite(images).all() and images.min() >= 0 and images.max() <= 1):
            raise ValueError("The 'images' parameter, when float, must hold values in [0, 1] (as ToTensor "
                             f"gives). Got values in [{images.min()}, {images.max()}] instead; pass uint8 "
                             "images for the 0-255 range.")
        x = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32)).permute(0, 3, 1, 2).clone()
    else:
        raise TypeError(f"The 'images' parameter must be uint8 or float. Got dtype {images.dtype} instead.")
    mean, std = ((0.5,) * 3, (0.5,) * 3) if normalize == "handout" else (CIFAR_MEAN, CIFAR_STD)
    return x.sub_(torch.tensor(mean).view(1, 3, 1, 1)).div_(torch.tensor(std).view(1, 3, 1, 1)).contiguous()


def load_tensor_splits(root=None, *, normalize="handout", device=None, num_training=49000,
                       num_validation=1000, download=True) -> TensorSplits:
    """Read CIFAR-10 once through :mod:`aml.data`, normalise it, and put every split on ``device``."""
    device = pick_device() if device is None else torch.device(device)
    n_tr = check_positive_int("num_training", num_training)
    n_val = check_nonneg_int("num_validation", num_validation)
    X_all, y_all, X_te, y_te = load_cifar10_images(root, download=download)
    check_split_sizes(n_tr, n_val, X_all.shape[0])

    def put(X, y):
        return to_tensor_images(X, normalize).to(device), torch.from_numpy(np.asarray(y, dtype=np.int64)).to(device)

    return TensorSplits(*put(X_all[:n_tr], y_all[:n_tr]), *put(X_all[n_tr:n_tr + n_val], y_all[n_tr:n_tr + n_val]),
                        *put(X_te, y_te), normalize=normalize)
