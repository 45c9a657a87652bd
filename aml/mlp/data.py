"""CIFAR-10 as device-resident tensors for the PyTorch half, the choice of device, and ZCA inputs.
Shapes: N samples; images are (N, 3, 32, 32) float32 tensors, labels (N,) int64."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .._checks import check_positive_float, check_positive_int
from ..data import CLASS_NAMES, SealedTest, load_cifar10_images, split_indices
from ..features import ZCA


def pick_device(prefer: str | None = None) -> torch.device:
    """``prefer`` if given, else CUDA when available, then Apple's MPS, else the CPU."""
    if prefer is None:
        prefer = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    return torch.device(prefer)


def fast_bfloat16(device, cpuinfo: str | None = None) -> bool:
    """Whether ``MLPConfig(bfloat16=True)`` pays on ``device``: on CUDA, and on a CPU whose ``cpuinfo`` (default:
    Linux's /proc/cpuinfo, else none) lists bfloat16 instructions (``avx512_bf16``, ``amx_bf16``)."""
    kind = torch.device(device).type
    if cpuinfo is None and kind == "cpu":
        cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").is_file() else ""
    return kind == "cuda" or (kind == "cpu" and bool({"avx512_bf16", "amx_bf16"} & set(cpuinfo.split())))


@dataclass
class TensorSplits:
    """CIFAR-10 as float32 images (N, 3, 32, 32) and int64 labels (N,), all on one device.

    ``X_sel, y_sel``: the selection split (training images held out of training), which
    :func:`aml.mlp.fit` monitors when it is non-empty (else ``X_val, y_val``). ``test``: the 10,000
    test images, sealed (:class:`aml.data.SealedTest`; the handout's test set is their first 1,000).
    ``normalize``: how the images were normalised, ``"handout"`` ([-1, 1]) or ``"zca"``.
    """
    X_train: torch.Tensor
    y_train: torch.Tensor
    X_val: torch.Tensor
    y_val: torch.Tensor
    test: SealedTest
    class_names: tuple = CLASS_NAMES
    normalize: str = "handout"
    X_sel: torch.Tensor | None = None
    y_sel: torch.Tensor | None = None

    @property
    def device(self) -> torch.device:
        return self.X_train.device

    def subset(self, num_train: int) -> "TensorSplits":
        """The first ``num_train`` training images (for quick runs); the other splits unchanged."""
        if check_positive_int("num_train", num_train) > len(self.X_train):
            raise ValueError(f"The 'num_train' parameter must be at most {len(self.X_train)}. Got {num_train} instead.")
        return dataclasses.replace(self, X_train=self.X_train[:num_train], y_train=self.y_train[:num_train])


def to_tensor_images(images: np.ndarray) -> torch.Tensor:
    """Images (N, 32, 32, 3), uint8 in [0, 255] or floats in [0, 1] -> float32 (N, 3, 32, 32) in
    [-1, 1]: the handout's ``ToTensor()`` then ``Normalize(0.5, 0.5)``."""
    images = np.asarray(images)
    unit = np.issubdtype(images.dtype, np.floating) and (not images.size or 0 <= images.min() <= images.max() <= 1)
    if images.ndim != 4 or images.shape[3] != 3 or not (images.dtype == np.uint8 or unit):
        raise ValueError("The 'images' parameter must be (N, H, W, 3) uint8 in [0, 255] or floats in [0, 1]. "
                         f"Got {images.dtype} of shape {images.shape} instead.")
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float()
    return (x / 127.5 - 1 if images.dtype == np.uint8 else x * 2 - 1).contiguous()


def load_tensor_splits(root=None, *, device=None, num_training=49000, num_validation=1000, num_selection=0,
                       download=True) -> TensorSplits:
    """CIFAR-10 on ``device`` (default :func:`pick_device`), split as :func:`aml.data.load_cifar10` splits
    it (:func:`aml.data.split_indices`): ``num_selection`` of the first ``num_training`` images
    (stratified) for selection, the rest for training, the next ``num_validation`` for validation."""
    device = pick_device() if device is None else torch.device(device)
    X_all, y_all, test = load_cifar10_images(root, download=download)
    train, sel, val = split_indices(y_all, num_training=num_training, num_validation=num_validation,
                                    num_selection=num_selection)

    def put(rows):
        return to_tensor_images(X_all[rows]).to(device), torch.as_tensor(y_all[rows], dtype=torch.int64).to(device)

    X_sel, y_sel = put(sel)
    return TensorSplits(*put(train), *put(val), test.map(lambda X: to_tensor_images(X).to(device)),
                        X_sel=X_sel, y_sel=y_sel)


def zca_splits(data: TensorSplits, *, eps: float = 0.1) -> TensorSplits:
    """Every split whitened by the :class:`aml.features.ZCA` of the training images and their mirror
    images (so that it commutes with the flip augmentation); a direction of variance lambda ends with
    variance lambda / (lambda + eps * mean(lambda)). The GPU budget's inputs (benchmarks/gpu_runs/)."""
    rows = torch.cat([data.X_train, data.X_train.flip(-1)]).flatten(1).cpu().numpy()       # (2N, D)
    mean_variance = float(rows.var(axis=0, ddof=1).mean())                               # mean(lambda)
    zca = ZCA(eps=check_positive_float("eps", eps) * mean_variance).fit(rows, max_samples=None)
    mean, W = (torch.as_tensor(a, dtype=torch.float32, device=data.device) for a in (zca.mean_, zca.projection()))

    def whiten(X):                                                  # (N, 3, 32, 32) -> the same, whitened
        return ((X.flatten(1) - mean) @ W).view_as(X)

    X_sel = None if data.X_sel is None else whiten(data.X_sel)
    return dataclasses.replace(data, X_train=whiten(data.X_train), X_sel=X_sel, X_val=whiten(data.X_val),
                               test=data.test.map(whiten), normalize="zca")
