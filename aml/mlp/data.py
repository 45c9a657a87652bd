"""CIFAR-10 as device-resident tensors for the PyTorch half, and the choice of device.

Shapes: N samples; images are (N, 3, 32, 32) float32 tensors, labels (N,) int64.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch

from .._checks import check_choice, check_positive_int
from ..data import CLASS_NAMES, SealedTest, load_cifar10_images, split_indices

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
    """CIFAR-10 as float32 tensors (N, 3, 32, 32) and int64 labels (N,), all on one device.

    ``X_sel, y_sel``: the selection split (training images held out of training, on which
    :func:`aml.mlp.fit` monitors and every choice is made); None or empty when there is none, and
    then ``fit`` monitors ``X_val, y_val``. ``test`` holds all 10,000 test images as tensors on the
    device, sealed (:class:`aml.data.SealedTest`; the handout's test set is their first 1,000): they
    reach a model only through :func:`aml.ledger.evaluate_on_test`.
    """
    X_train: torch.Tensor
    y_train: torch.Tensor
    X_val: torch.Tensor
    y_val: torch.Tensor
    test: SealedTest
    class_names: tuple = CLASS_NAMES
    normalize: str = "handout"      # how the images were normalised (see to_tensor_images)
    X_sel: torch.Tensor | None = None
    y_sel: torch.Tensor | None = None

    @property
    def device(self) -> torch.device:
        return self.X_train.device

    @property
    def has_selection(self) -> bool:
        """Whether there is a non-empty selection split (which ``fit`` then monitors)."""
        return self.X_sel is not None and len(self.X_sel) > 0

    def subset(self, num_train: int) -> "TensorSplits":
        """The first ``num_train`` training images (for quick runs); other splits unchanged."""
        num_train = check_positive_int("num_train", num_train)
        if num_train > self.X_train.shape[0]:
            raise ValueError(f"The 'num_train' parameter must be at most {self.X_train.shape[0]}. "
                             f"Got {num_train} instead.")
        return dataclasses.replace(self, X_train=self.X_train[:num_train], y_train=self.y_train[:num_train])


def check_splits(data: TensorSplits) -> None:
    """Refuse, naming the split, expected and got, what would fail deep inside torch (or train silently):
    images that are not float32 tensors (N, ...) with one shape per image across splits, labels that
    are not int64 (N,) in [0, C) with C = ``len(data.class_names)``, and non-finite images."""
    C = len(data.class_names)
    shape = None
    pairs = [("X_train", "y_train"), ("X_val", "y_val")] + ([("X_sel", "y_sel")] if data.X_sel is not None else [])
    for x_name, y_name in pairs:
        X, y = getattr(data, x_name), getattr(data, y_name)
        if not isinstance(X, torch.Tensor) or X.dtype != torch.float32:
            got = f"dtype {X.dtype}" if isinstance(X, torch.Tensor) else type(X).__name__
            raise TypeError(f"The data's {x_name!r} must be a float32 torch.Tensor of images (N, 3, 32, 32). "
                            f"Got {got} instead.")
        if X.ndim < 2 or (shape is not None and X.shape[1:] != shape):
            expected = f"(N, {', '.join(map(str, shape))}) like X_train" if shape is not None else "(N, 3, 32, 32)"
            raise ValueError(f"The data's {x_name!r} must have shape {expected}. Got shape {tuple(X.shape)} instead.")
        shape = X.shape[1:] if shape is None else shape
        if not isinstance(y, torch.Tensor) or y.dtype != torch.int64:
            got = f"dtype {y.dtype}" if isinstance(y, torch.Tensor) else type(y).__name__
            raise TypeError(f"The data's {y_name!r} must be an int64 torch.Tensor of labels (N,). Got {got} instead.")
        if y.shape != (X.shape[0],):
            raise ValueError(f"The data's {y_name!r} must have shape ({X.shape[0]},) to match {x_name}. "
                             f"Got shape {tuple(y.shape)} instead.")
        if y.numel() and (int(y.min()) < 0 or int(y.max()) >= C):
            raise ValueError(f"The data's {y_name!r} must hold labels in [0, {C}) (C = len(class_names)). "
                             f"Got values in [{int(y.min())}, {int(y.max())}] instead.")
        if not torch.isfinite(X).all():
            raise ValueError(f"The data's {x_name!r} must be finite. Got NaN or inf values instead.")


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
                       num_validation=1000, num_selection=0, download=True) -> TensorSplits:
    """Read CIFAR-10 once through :mod:`aml.data`, normalise it, and put every split on ``device``.

    The splits are those of :func:`aml.data.load_cifar10` (both call :func:`aml.data.split_indices`):
    ``num_selection`` of the first ``num_training`` training images (stratified) form the selection
    split, the rest the training split; the next ``num_validation`` images the validation split.
    """
    device = pick_device() if device is None else torch.device(device)
    X_all, y_all, test = load_cifar10_images(root, download=download)
    train, sel, val = split_indices(y_all, num_training=num_training, num_validation=num_validation,
                                    num_selection=num_selection)

    def put(X, y):
        return to_tensor_images(X, normalize).to(device), torch.from_numpy(np.asarray(y, dtype=np.int64)).to(device)

    X_sel, y_sel = put(X_all[sel], y_all[sel])
    return TensorSplits(*put(X_all[train], y_all[train]), *put(X_all[val], y_all[val]),
                        test.map(lambda X: to_tensor_images(X, normalize).to(device)), normalize=normalize,
                        X_sel=X_sel, y_sel=y_sel)
