"""CIFAR-10: finding, downloading, reading and splitting it the way the handout does.

Images are returned flattened to (N, 3072) in height-width-channel order (32 x 32 x 3), the
layout of the handout's loader. The dataset is looked for in ``<root>/cifar-10-batches-py/``,
where root is the ``root`` argument, else the environment variable ``AML_DATA_DIR``, else the
repository's ``data/`` folder.
"""
from __future__ import annotations

import os
import pickle
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ._checks import check_nonneg_int, check_positive_int
from .utils import REPO_ROOT

URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
MD5 = "c58f30108f718f92721af3b95e74349a"
FOLDER = "cifar-10-batches-py"
TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_FILE = "test_batch"
CLASS_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
IMAGE_SHAPE = (32, 32, 3)


@dataclass(frozen=True)
class CIFAR10Split:
    """The handout's split. X arrays are (N, 3072) HWC-flattened; y arrays are (N,) int64."""
    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    mean_image: np.ndarray | None   # (3072,) the training mean that was subtracted, or None
    class_names: tuple = CLASS_NAMES

    def __repr__(self) -> str:
        return (f"CIFAR10Split(train={self.X_train.shape}, val={self.X_val.shape}, "
                f"test={self.X_test.shape}, dtype={self.X_train.dtype})")


def data_root(root=None) -> Path:
    """The folder that holds (or will hold) ``cifar-10-batches-py``."""
    if root is None:
        root = os.environ.get("AML_DATA_DIR") or REPO_ROOT / "data"
    return Path(root).expanduser()


def _read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One pickled batch -> uint8 images (n, 32, 32, 3) and int64 labels (n,)."""
    try:
        with open(path, "rb") as f:
            batch = pickle.load(f, encoding="bytes")
        data = np.asarray(batch[b"data"], dtype=np.uint8)
        labels = np.asarray(batch[b"labels"], dtype=np.int64)
    except (pickle.UnpicklingError, EOFError, KeyError, TypeError, ValueError, AttributeError) as e:
        raise ValueError(f"CIFAR-10 batch file {path} is truncated or corrupted ({type(e).__name__}: {e}). "
                         "Delete the folder and download the dataset again.") from e
    if data.ndim != 2 or data.shape[1] != 3072 or labels.shape != (data.shape[0],):
        raise ValueError(f"CIFAR-10 batch file {path} has data of shape {data.shape} and "
                         f"{labels.shape[0]} labels; expected (n, 3072) and n labels.")
    # each row holds 1024 red, 1024 green, 1024 blue values: CHW -> HWC
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels


def download_cifar10(root=None) -> Path:
    """Download and extract the official archive (MD5-checked) into ``root``; return the batch folder.

    The archive is extracted into a temporary folder beside the target and renamed into place only
    when complete, so an interrupted run never leaves a half-extracted folder behind.
    """
    from torchvision.datasets.utils import download_and_extract_archive

    root = data_root(root)
    root.mkdir(parents=True, exist_ok=True)
    target = root / FOLDER
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=".cifar-extract-"))
    try:
        download_and_extract_archive(URL, download_root=str(root), extract_root=str(tmp), md5=MD5)
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp / FOLDER, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def load_cifar10_images(root=None, *, download=True):
    """All of CIFAR-10 as uint8 images: (X_train (50000, 32, 32, 3), y_train, X_test (10000, ...), y_test)."""
    folder = data_root(root) / FOLDER
    missing = [name for name in (*TRAIN_FILES, TEST_FILE) if not (folder / name).is_file()]
    if missing:
        if not download:
            raise FileNotFoundError(
                f"CIFAR-10 not found: {folder} lacks {', '.join(missing)}. Put the extracted "
                f"'{FOLDER}' folder of {URL} under {data_root(root)}, or set AML_DATA_DIR to the "
                "folder that holds it (e.g. AML_DATA_DIR=../shared/data), or pass download=True.")
        ensure_cifar10(root)
    train = [_read_batch(folder / name) for name in TRAIN_FILES]
    X_test, y_test = _read_batch(folder / TEST_FILE)
    X_train = np.concatenate([b[0] for b in train])
    y_train = np.concatenate([b[1] for b in train])
    return X_train, y_train, X_test, y_test


def check_split_sizes(num_training: int, num_validation: int, available: int) -> None:
    if num_training + num_validation > available:
        raise ValueError(f"num_training + num_validation must be at most {available}. "
                         f"Got {num_training} + {num_validation} instead.")


def load_cifar10(root=None, *, num_training=49000, num_validation=1000, num_test=1000,
                 subtract_mean=True, download=True, dtype=np.float32) -> CIFAR10Split:
    """The handout's split: the first ``num_training`` training images, the next ``num_validation``
    for validation, the first ``num_test`` test images; flattened to (N, 3072) and, with
    ``subtract_mean``, centred by the mean image of the training split.
    """
    num_training = check_positive_int("num_training", num_training)
    num_validation = check_nonneg_int("num_validation", num_validation)
    num_test = check_nonneg_int("num_test", num_test)
    X_all, y_all, X_te, y_te = load_cifar10_images(root, download=download)
    check_split_sizes(num_training, num_validation, X_all.shape[0])
    if num_test > X_te.shape[0]:
        raise ValueError(f"The 'num_test' parameter must be at most {X_te.shape[0]}. Got {num_test} instead.")

    def flat(X):
        return X.reshape(X.shape[0], -1).astype(dtype)

    X_train = flat(X_all[:num_training])
    X_val = flat(X_all[num_training:num_training + num_validation])
    X_test = flat(X_te[:num_test])
    mean_image = None
    if subtract_mean:
        mean_image = X_train.mean(axis=0, dtype=np.float64).astype(dtype)
        for X in (X_train, X_val, X_test):
            X -= mean_image
    return CIFAR10Split(X_train, y_all[:num_training], X_val,
                        y_all[num_training:num_training + num_validation],
                        X_test, y_te[:num_test], mean_image)


def hflip_images(X: np.ndarray) -> np.ndarray:
    """Mirror HWC-flattened 32x32x3 images (N, 3072) left to right; returns a new array."""
    N = X.shape[0]
    return np.ascontiguousarray(X.reshape(N, *IMAGE_SHAPE)[:, :, ::-1, :]).reshape(N, -1)


def random_hflip(X_batch: np.ndarray, idx: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Solver augmentation: mirror each image of the minibatch with probability 1/2."""
    flip = rng.random(X_batch.shape[0]) < 0.5
    out = X_batch.copy()
    out[flip] = hflip_images(X_batch[flip])
    return out


def ensure_cifar10(root=None) -> Path:
    """Make sure the batches are in place (downloading them if missing); return the batch folder."""
    folder = data_root(root) / FOLDER
    if not all((folder / name).is_file() for name in (*TRAIN_FILES, TEST_FILE)):
        try:
            download_cifar10(root)
        except Exception as e:
            raise FileNotFoundError(
                f"CIFAR-10 not found in {folder} and the download of {URL} failed ({e}). "
                f"Put the extracted '{FOLDER}' folder under {data_root(root)}, or set AML_DATA_DIR "
                "to the folder that holds it (e.g. AML_DATA_DIR=../shared/data).") from e
    return folder
