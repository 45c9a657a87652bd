"""CIFAR-10: finding it, reading it safely, splitting it as the handout does, sealing the test split.

Shapes: N images, D = 3072 = 32 x 32 x 3. Images are (N, 32, 32, 3) uint8, or flattened to (N, D) in
height-width-channel order, as the handout's loader does. The batches live in ``data_root()/cifar-10-batches-py``.
"""
from __future__ import annotations

import hashlib
import os
import pickle
import shutil
import stat
import tarfile
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import runs
from ._checks import check_nonneg_int, check_positive_int, check_seed, check_y

URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
MD5 = "c58f30108f718f92721af3b95e74349a"
FOLDER = "cifar-10-batches-py"
TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_FILE = "test_batch"
CLASS_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
IMAGE_SHAPE = (32, 32, 3)
MAX_BATCH_BYTES = 64 * 2**20     # an official batch has 31,035,704 bytes; a larger file is refused unread

try:
    from numpy._core import multiarray, numeric
except ImportError:  # NumPy < 2
    from numpy.core import multiarray, numeric
# Hand-written because torchvision's CIFAR10 calls pickle.load (it runs whatever a file names) and this
# offline copy's checksums differ from the official ones. These are the only globals a batch may name:
# protocol 2 (the official files) rebuilds arrays with _reconstruct, protocol 5 with _frombuffer.
_GLOBALS = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype}
for _core in ("core", "_core"):   # where NumPy 1 and NumPy 2 write them from
    _GLOBALS[f"numpy.{_core}.multiarray", "_reconstruct"] = multiarray._reconstruct
    _GLOBALS[f"numpy.{_core}.numeric", "_frombuffer"] = numeric._frombuffer


class _Unpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) not in _GLOBALS:
            raise pickle.UnpicklingError(f"it names the Python object '{module}.{name}', which a batch may not")
        return _GLOBALS[module, name]


class SealedTest:
    """The test split: images X (N, ...) (array or tensor), labels y (N,) int. Only
    :func:`aml.ledger.evaluate_on_test` opens it (``_open``), recording the look first; ``len``,
    ``shape`` and ``map`` are all else one can do."""

    __slots__ = ("_X", "_y")

    def __init__(self, X, y):
        if len(getattr(X, "shape", ())) < 1:
            raise TypeError(f"The 'X' parameter must be an array of shape (N, ...). Got {type(X).__name__} instead.")
        y = check_y(y, num_samples=X.shape[0], name="y").astype(np.int64)   # a copy the caller cannot change
        y.flags.writeable = False
        self._X, self._y = X, y

    def __len__(self) -> int:
        return len(self._y)

    @property
    def shape(self) -> tuple:
        return tuple(self._X.shape)

    def __repr__(self) -> str:
        return f"SealedTest({len(self)} images of shape {self.shape[1:]}; evaluate with aml.ledger.evaluate_on_test)"

    def __array__(self, *args, **kwargs):
        raise TypeError("A SealedTest cannot be turned into an array: use aml.ledger.evaluate_on_test.")

    def map(self, fn) -> SealedTest:
        """``SealedTest(fn(X), y)``: for preprocessing (a fitted mean, tensors, a device), never a model."""
        return SealedTest(fn(self._X), self._y)

    def _open(self) -> tuple:
        return self._X, self._y


@dataclass(frozen=True)
class CIFAR10Split:
    """X arrays (N, D), y arrays (N,) int64; ``test`` sealed. Choices are made on the selection split
    (``X_sel``, carved out of the training images), so ``X_val`` gives an unbiased estimate."""
    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    test: SealedTest
    mean_image: np.ndarray | None = None   # (D,) the training mean that was subtracted, or None
    X_sel: np.ndarray | None = None        # (S, D); None means (0, D)
    y_sel: np.ndarray | None = None        # (S,)
    class_names: tuple = CLASS_NAMES

    def __post_init__(self):
        if not isinstance(self.test, SealedTest):
            raise TypeError(f"The 'test' parameter of CIFAR10Split must be a SealedTest. Got {type(self.test).__name__}"
                            " instead.")
        if self.X_sel is None:
            object.__setattr__(self, "X_sel", self.X_train[:0])
            object.__setattr__(self, "y_sel", np.zeros(0, np.int64))

    def __repr__(self) -> str:
        return (f"CIFAR10Split(train={self.X_train.shape}, selection={self.X_sel.shape}, val={self.X_val.shape}, "
                f"test={self.test.shape} sealed)")


def data_root(root=None) -> Path:
    """``root``, else ``$AML_DATA_DIR`` (a relative one is taken from the checkout root, so that a notebook,
    whose working directory is notebooks/, tools/ and the tests mean the same folder), else ``<checkout>/data``."""
    if root is None:
        root = runs.checkout() / Path(os.environ.get("AML_DATA_DIR") or "data").expanduser()
    if not isinstance(root, (str, os.PathLike)) or str(root) == "":
        raise TypeError(f"The 'root' parameter must be a non-empty path. Got {root!r} instead.")
    return Path(root).expanduser().resolve()


def _batch_size(path: Path) -> int | None:
    """The size of the batch file at ``path``; None when nothing at all is there; else ValueError."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        if not os.path.lexists(path):
            return None
        raise ValueError(f"The CIFAR-10 batch file {path} must be a file. Got a dangling link instead.") from None
    except OSError as e:       # a symlink loop, a parent that is a file, no permission
        raise ValueError(f"The CIFAR-10 batch file {path} must be a readable file. Got: {e.strerror}.") from None
    readable = stat.S_ISREG(info.st_mode) and os.access(path, os.R_OK)
    if not readable or info.st_size > MAX_BATCH_BYTES:
        got = ("a folder" if stat.S_ISDIR(info.st_mode) else "a special file" if not stat.S_ISREG(info.st_mode)
               else "a file without read permission" if not readable else f"{info.st_size} bytes")
        raise ValueError(f"The CIFAR-10 batch file {path} must be a readable regular file of at most {MAX_BATCH_BYTES} "
                         f"bytes. Got {got} instead; it was not read.")
    return info.st_size


def _read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One batch file -> uint8 images (n, 32, 32, 3) and int64 labels (n,); ValueError naming the file."""
    _batch_size(path)
    try:
        with open(path, "rb") as f:
            batch = _Unpickler(f, encoding="bytes").load()
        batch = {k.decode() if isinstance(k, bytes) else k: v for k, v in batch.items()}
        data = batch["data"]
        if not (isinstance(data, np.ndarray) and data.dtype == np.uint8 and data.shape[1:] == (3072,) and len(data)):
            got = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
            raise ValueError(f"'data' must be a uint8 array of shape (n, 3072), n >= 1. Got {got} instead")
        labels = check_y(np.asarray(batch["labels"]), num_samples=len(data), num_classes=10, name="labels")
    except Exception as e:     # whatever a malformed or hostile file makes the unpickler or the checks raise
        raise ValueError(f"The CIFAR-10 batch file {path} is not a valid batch: {type(e).__name__}: {e}. Delete it "
                         "and download the dataset again.") from None
    # each row holds 1024 red, 1024 green, 1024 blue values: CHW -> HWC
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels.astype(np.int64)


def _fetch(url: str, dest: Path) -> None:
    with urllib.request.urlopen(url, timeout=60) as response, open(dest, "wb") as f:
        shutil.copyfileobj(response, f)


def _download(folder: Path) -> None:
    """Download the archive into a temporary folder beside ``folder``, check its MD5, extract only the six
    batch files (regular files, by name), and move them into ``folder``, which must hold none of them."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder.parent, prefix=".cifar-download-") as tmp:
        archive = Path(tmp) / "cifar-10-python.tar.gz"
        _fetch(URL, archive)
        digest = hashlib.md5(archive.read_bytes(), usedforsecurity=False).hexdigest()
        if digest != MD5:
            raise ValueError(f"The download of {URL} must have MD5 {MD5}. Got {digest} instead.")
        with tarfile.open(archive, "r:gz") as tar:
            for name in (*TRAIN_FILES, TEST_FILE):
                member = tar.getmember(f"{FOLDER}/{name}")          # KeyError when missing
                if not member.isfile():
                    raise ValueError(f"The archive {URL} must hold {member.name} as a regular file. Got a link or "
                                     "device instead.")
                with tar.extractfile(member) as src, open(Path(tmp) / name, "wb") as dst:
                    shutil.copyfileobj(src, dst)
        folder.mkdir(exist_ok=True)
        for name in (*TRAIN_FILES, TEST_FILE):
            os.replace(Path(tmp) / name, folder / name)


def load_cifar10_images(root=None, *, download=True):
    """All of CIFAR-10 in the official order.

    A batch file that is there but wrong (a folder, a link loop, unreadable, too big, not a batch) is an
    error naming it, never a download; the archive is fetched only when all six are plainly absent.

    Returns
    -------
    X_train : (50000, 32, 32, 3) uint8
    y_train : (50000,) int64
    test : SealedTest of (10000, 32, 32, 3) uint8 images
    """
    folder = data_root(root) / FOLDER
    if os.path.lexists(folder) and not folder.is_dir():
        raise ValueError(f"The CIFAR-10 folder {folder} must be a folder. Got a file or dangling link instead.")
    missing = [name for name in (*TRAIN_FILES, TEST_FILE) if _batch_size(folder / name) is None]
    where = f"Put the extracted {FOLDER} of {URL} in {folder.parent}, or set AML_DATA_DIR to the folder holding it."
    if missing and (not download or len(missing) < 6):
        raise FileNotFoundError(f"CIFAR-10 not found: {folder} lacks {', '.join(missing)}. {where}")
    if missing:
        try:
            _download(folder)
        except Exception as e:
            raise FileNotFoundError(f"CIFAR-10 not found in {folder}, and downloading {URL} failed "
                                    f"({type(e).__name__}: {e}). {where}") from e
    batches = [_read_batch(folder / name) for name in (*TRAIN_FILES, TEST_FILE)]
    X_train, y_train = (np.concatenate(arrays) for arrays in zip(*batches[:-1]))
    return X_train, y_train, SealedTest(*batches[-1])


def selection_indices(labels, num_selection: int, *, seed: int = 0) -> np.ndarray:
    """Sorted distinct indices (num_selection,) into ``labels`` (N,): ``num_selection // 10`` of each
    class, drawn without replacement by ``np.random.default_rng(seed)``; num_selection a multiple of 10."""
    labels = check_y(labels, num_samples=len(labels), num_classes=len(CLASS_NAMES), name="labels")
    if check_nonneg_int("num_selection", num_selection) % len(CLASS_NAMES):
        raise ValueError(f"The 'num_selection' parameter must be a multiple of {len(CLASS_NAMES)}, so that every class"
                         f" gives as many images. Got {num_selection} instead.")
    rng, per_class = np.random.default_rng(check_seed("seed", seed)), num_selection // len(CLASS_NAMES)
    picks = []
    for c in range(len(CLASS_NAMES)):
        members = np.flatnonzero(labels == c)
        if len(members) < per_class:
            raise ValueError(f"The 'labels' parameter must hold at least {per_class} images of each class for "
                             f"num_selection={num_selection}. Got {len(members)} of class {c} instead.")
        picks.append(rng.choice(members, per_class, replace=False))
    return np.sort(np.concatenate(picks)).astype(np.int64)


def split_indices(labels, *, num_training=49000, num_validation=1000, num_selection=0):
    """Rows of the training images: selection (:func:`selection_indices`, seed 0) out of the first
    ``num_training``, training the rest of those in order, validation the next ``num_validation``.

    Returns
    -------
    train, selection, validation : int64 arrays of num_training - num_selection, num_selection, num_validation
    """
    num_training = check_positive_int("num_training", num_training)
    num_validation = check_nonneg_int("num_validation", num_validation)
    if num_training + num_validation > len(labels):
        raise ValueError(f"num_training + num_validation must be at most {len(labels)}. Got {num_training} + "
                         f"{num_validation} instead.")
    if check_nonneg_int("num_selection", num_selection) >= num_training:
        raise ValueError(f"The 'num_selection' parameter must be below num_training ({num_training}), so that the "
                         f"training split is not empty. Got {num_selection} instead.")
    selection = selection_indices(labels[:num_training], num_selection, seed=0)
    train = np.delete(np.arange(num_training, dtype=np.int64), selection)
    return train, selection, np.arange(num_training, num_training + num_validation, dtype=np.int64)


def load_cifar10(root=None, *, num_training=49000, num_validation=1000, num_test=1000, num_selection=0,
                 subtract_mean=True, download=True, dtype=np.float32) -> CIFAR10Split:
    """The handout's split, flattened to (N, D) and, with ``subtract_mean``, centred on the training mean.

    Parameters
    ----------
    root : path, optional
        See :func:`data_root`.
    num_training, num_validation, num_selection : int
        See :func:`split_indices`: ``X_train`` gets num_training - num_selection > 0 images.
    num_test : int >= 0
        The first ``num_test`` test images, sealed in ``split.test``.
    subtract_mean : bool
        Subtract the mean image (D,) of ``X_train`` from every split.
    download : bool
        Download CIFAR-10 when it is plainly absent.
    dtype : floating dtype
    """
    num_test = check_nonneg_int("num_test", num_test)
    try:
        floating = dtype is not None and np.dtype(dtype).kind == "f"
    except TypeError:
        floating = False
    if not floating:
        raise TypeError(f"The 'dtype' parameter must be a floating dtype such as numpy.float32. Got {dtype!r} instead.")
    X_all, y_all, test = load_cifar10_images(root, download=download)
    train, sel, val = split_indices(y_all, num_training=num_training, num_validation=num_validation,
                                    num_selection=num_selection)
    X_te, y_te = test._open()       # sealed again below: no test array leaves this function
    if num_test > len(y_te):
        raise ValueError(f"The 'num_test' parameter must be at most {len(y_te)}. Got {num_test} instead.")
    X_train, X_sel, X_val, X_test = (X.reshape(len(X), 3072).astype(dtype)
                                     for X in (X_all[train], X_all[sel], X_all[val], X_te[:num_test]))
    mean_image = X_train.mean(axis=0, dtype=np.float64).astype(dtype) if subtract_mean else None
    for X in (X_train, X_sel, X_val, X_test) if subtract_mean else ():
        X -= mean_image
    return CIFAR10Split(X_train, y_all[train], X_val, y_all[val], SealedTest(X_test, y_te[:num_test]), mean_image,
                        X_sel=X_sel, y_sel=y_all[sel])
