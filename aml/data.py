"""CIFAR-10: finding, downloading, reading and splitting it the way the handout does.

Shapes: N images; D = 3072 = 32 x 32 x 3 values per flattened image. Images are returned as
(N, 32, 32, 3) uint8 or flattened to (N, D) in height-width-channel order, the layout of the
handout's loader. The dataset is looked for in ``<root>/cifar-10-batches-py/``, where root is the
``root`` argument, else the environment variable ``AML_DATA_DIR``, else the repository's ``data/``.

The batch files are pickles, so they are read with an unpickler that builds NumPy arrays and plain
containers only: a file that names any other Python object is refused, never run.
"""
from __future__ import annotations

import hashlib
import http.client
import io
import os
import pickle
import shutil
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath

import numpy as np

from ._checks import check_nonneg_int, check_positive_int
from .runs import REPO_ROOT

try:
    from numpy._core.multiarray import _reconstruct
except ImportError:  # NumPy < 2
    from numpy.core.multiarray import _reconstruct

URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
MD5 = "c58f30108f718f92721af3b95e74349a"
FOLDER = "cifar-10-batches-py"
TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_FILE = "test_batch"
CLASS_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
IMAGE_SHAPE = (32, 32, 3)

DOWNLOAD_TIMEOUT_S = 60.0        # longest wait for a connection or for the next bytes of the archive
DOWNLOAD_ATTEMPTS = 3
RETRY_BACKOFF_S = 2.0            # attempt k + 1 starts k * RETRY_BACKOFF_S seconds after attempt k failed
MAX_ARCHIVE_BYTES = 200 * 2**20  # the official archive has 170,498,071 bytes; an endless stream stops here
LEFTOVER_AGE_S = 600.0           # a temporary file untouched this long belongs to a killed run
_ARCHIVE = "cifar-10-python.tar.gz"

# Everything the official (Python 2, protocol 2) batch pickles name, plus the names NumPy 2 writes.
_BATCH_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}


@dataclass(frozen=True)
class CIFAR10Split:
    """The handout's split. X arrays are (N, D) HWC-flattened; y arrays are (N,) int64."""
    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    mean_image: np.ndarray | None   # (D,) the training mean that was subtracted, or None
    class_names: tuple = CLASS_NAMES

    def __repr__(self) -> str:
        return (f"CIFAR10Split(train={self.X_train.shape}, val={self.X_val.shape}, "
                f"test={self.X_test.shape}, dtype={self.X_train.dtype})")


def data_root(root=None) -> Path:
    """The folder that holds (or will hold) ``cifar-10-batches-py``, as an absolute, resolved path.

    Parameters
    ----------
    root : str or os.PathLike, optional
        Defaults to ``$AML_DATA_DIR``, else the repository's ``data/``. A relative path is resolved
        against the current working directory at the time of the call.
    """
    if root is None:
        root = os.environ.get("AML_DATA_DIR") or REPO_ROOT / "data"
    if not isinstance(root, (str, os.PathLike)):
        raise TypeError(f"The 'root' parameter must be a str or os.PathLike. Got {type(root).__name__} instead.")
    if str(root) == "":
        raise ValueError("The 'root' parameter must be a non-empty path. Got '' instead.")
    return Path(root).expanduser().resolve()


class _RefusedGlobal(pickle.UnpicklingError):
    pass


class _BatchUnpickler(pickle.Unpickler):
    """Builds NumPy arrays and plain containers only; refuses every other global the pickle names."""

    def find_class(self, module: str, name: str):
        try:
            return _BATCH_GLOBALS[module, name]
        except KeyError:
            raise _RefusedGlobal(f"{module}.{name}") from None


def _describe(value) -> str:
    if isinstance(value, np.ndarray):
        return f"a {value.dtype} array of shape {value.shape}"
    return type(value).__name__


def _entry(batch, key: str, path: Path):
    """``batch[b"data"]`` or ``batch["data"]`` (likewise for "labels") of the unpickled dict ``batch``."""
    for k in (key.encode(), key):
        if isinstance(batch, dict) and k in batch:
            return batch[k]
    got = f"keys {sorted(map(repr, batch))[:10]}" if isinstance(batch, dict) else _describe(batch)
    raise ValueError(f"The CIFAR-10 batch file {path} must hold a dict with 'data' and 'labels' entries. "
                     f"Got {got} instead.")


def _check_data(data, path: Path) -> np.ndarray:
    """The batch's pixels: a uint8 array (n, D) with n >= 1, each row 1024 red, green, blue values."""
    if not (isinstance(data, np.ndarray) and data.dtype == np.uint8 and data.ndim == 2
            and data.shape[0] > 0 and data.shape[1] == np.prod(IMAGE_SHAPE)):
        raise ValueError(f"The 'data' entry of CIFAR-10 batch file {path} must be a uint8 array of shape "
                         f"(n, {np.prod(IMAGE_SHAPE)}) with n >= 1. Got {_describe(data)} instead.")
    return data


def _check_labels(labels, num_rows: int, path: Path) -> np.ndarray:
    """The batch's labels, a list of ints or a 1-D integer array with values in [0, 10) -> (n,) int64."""
    num_classes = len(CLASS_NAMES)
    if isinstance(labels, list):
        bad = [repr(v) for v in labels if type(v) is not int or not 0 <= v < num_classes][:1]
    elif isinstance(labels, np.ndarray) and labels.dtype.kind in "iu" and labels.ndim == 1:
        bad = [repr(v) for v in labels[(labels < 0) | (labels >= num_classes)][:1].tolist()]
    else:
        bad = [_describe(labels)]
    if not bad and len(labels) != num_rows:
        bad = [f"{len(labels)} labels"]
    if bad:
        raise ValueError(f"The 'labels' entry of CIFAR-10 batch file {path} must be a list or 1-D integer array "
                         f"of {num_rows} ints in [0, {num_classes}), one per row of 'data'. Got {bad[0]} instead.")
    return np.asarray(labels, dtype=np.int64)


def _read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One pickled batch -> uint8 images (n, 32, 32, 3) and int64 labels (n,)."""
    raw = path.read_bytes()
    try:
        batch = _BatchUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except _RefusedGlobal as e:
        raise ValueError(f"The CIFAR-10 batch file {path} names the Python object '{e}'; a batch may hold only "
                         "NumPy arrays, lists, ints and strings. It was not loaded (it is not a CIFAR-10 batch "
                         "and may be malicious): delete it and download the dataset again.") from None
    except Exception as e:  # whatever malformed bytes make the unpickler raise
        raise ValueError(f"CIFAR-10 batch file {path} is truncated or corrupted ({type(e).__name__}: {e}). "
                         "Delete the folder and download the dataset again.") from e
    data = _check_data(_entry(batch, "data", path), path)
    labels = _check_labels(_entry(batch, "labels", path), data.shape[0], path)
    # each row holds 1024 red, 1024 green, 1024 blue values: CHW -> HWC
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels


def _check_distinct(images: dict[str, np.ndarray], folder: Path) -> None:
    """Refuse two batch files with the same images (one file copied over another)."""
    names = list(images)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            if np.array_equal(images[a][:1], images[b][:1]) and np.array_equal(images[a], images[b]):
                raise ValueError(f"The CIFAR-10 batch files {a} and {b} in {folder} hold the same images; "
                                 "one was copied over the other. Delete the folder and download the dataset again.")


def _missing(folder: Path) -> list[str]:
    """The batch files that ``folder`` lacks, or holds as something other than a regular file."""
    return [name if not (folder / name).exists() else f"{name} (not a regular file)"
            for name in (*TRAIN_FILES, TEST_FILE) if not (folder / name).is_file()]


def _where_to_put(root: Path) -> str:
    return (f"Put the extracted '{FOLDER}' folder of {URL} under {root}, or set AML_DATA_DIR to the folder "
            "that holds it (e.g. AML_DATA_DIR=../shared/data).")


def _create_root(root: Path) -> list[Path]:
    """Create ``root`` and its missing parents, checking first that they can be; return the created
    folders, deepest first. Nothing is created when the check fails."""
    missing, ancestor = [], root
    while not ancestor.exists() and not ancestor.is_symlink():
        missing.append(ancestor)
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise NotADirectoryError(f"The data root must be a folder, or creatable inside one. Got {root} instead: "
                                 f"{ancestor} is not a directory. Set AML_DATA_DIR to a writable folder.")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise PermissionError(f"The data root must be a writable folder, or creatable inside one. Got {root} "
                              f"instead: {ancestor} is not writable. Set AML_DATA_DIR to a writable folder.")
    root.mkdir(parents=True, exist_ok=True)
    return missing


def _remove_empty(folders: list[Path]) -> None:
    """Remove the given folders, deepest first, as long as they are empty."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            return


def _remove_leftovers(root: Path) -> None:
    """Delete the temporary archive and extraction folders of runs killed at least LEFTOVER_AGE_S ago
    (a live download writes at least every DOWNLOAD_TIMEOUT_S; younger ones may belong to one)."""
    if not root.is_dir():
        return
    for path in [*root.glob(f"{_ARCHIVE}*.tmp"), *root.glob(".cifar-extract-*")]:
        try:
            if time.time() - path.lstat().st_mtime < LEFTOVER_AGE_S:
                continue
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
        except OSError:
            pass  # someone else removed it, or the folder is read-only: not our problem


def _copy(response, f, url: str) -> str:
    """Copy an HTTP response into the open file ``f``, reporting every 10 % on stderr; return its MD5."""
    size = response.headers.get("Content-Length", "")
    total = int(size) if size.isdigit() else 0
    md5, done, reported = hashlib.md5(usedforsecurity=False), 0, 0
    while chunk := response.read(2**20):
        done += len(chunk)
        if done > MAX_ARCHIVE_BYTES:
            raise ValueError(f"The download of {url} must be at most {MAX_ARCHIVE_BYTES} bytes. "
                             f"Got more than that instead; this is not the CIFAR-10 archive.")
        f.write(chunk)
        md5.update(chunk)
        if total and 10 * done // total > reported:
            reported = 10 * done // total
            print(f"CIFAR-10: {10 * reported:3d}% ({done / 2**20:.0f} of {total / 2**20:.0f} MiB)",
                  file=sys.stderr, flush=True)
    return md5.hexdigest()


def _download(url: str, dest: Path, root: Path) -> str:
    """Stream ``url`` into ``dest``, retrying a failed attempt; return the MD5 of what arrived."""
    print(f"CIFAR-10: downloading {url} into {root}", file=sys.stderr, flush=True)
    for attempt in range(1, DOWNLOAD_ATTEMPTS + 1):
        try:
            with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response, open(dest, "wb") as f:
                return _copy(response, f, url)
        except (OSError, http.client.HTTPException) as e:  # URLError, timeouts, resets, cut-off bodies
            client_error = isinstance(e, urllib.error.HTTPError) and 400 <= e.code < 500
            if attempt == DOWNLOAD_ATTEMPTS or client_error:
                raise ConnectionError(f"Could not download {url} (attempt {attempt} of {DOWNLOAD_ATTEMPTS}, "
                                      f"timeout {DOWNLOAD_TIMEOUT_S:g} s): {type(e).__name__}: {e}. "
                                      + _where_to_put(root)) from e
            time.sleep(RETRY_BACKOFF_S * attempt)


def _fetch_archive(root: Path) -> Path:
    """Download ``URL`` into a new ``*.tmp`` file of ``root`` and check its MD5; return the file."""
    fd, name = tempfile.mkstemp(dir=root, prefix=f"{_ARCHIVE}.", suffix=".tmp")
    os.close(fd)
    archive = Path(name)
    try:
        digest = _download(URL, archive, root)
        if digest != MD5:
            raise ValueError(f"Downloaded {URL} but got a checksum mismatch: expected MD5 {MD5}, got {digest}. "
                             + _where_to_put(root))
    except BaseException:
        archive.unlink(missing_ok=True)
        raise
    return archive


def _check_member(member: tarfile.TarInfo, url: str) -> None:
    """Refuse archive entries that could land outside the extraction folder, and links or devices."""
    parts = PurePosixPath(member.name.replace("\\", "/")).parts
    if member.name.startswith(("/", "\\")) or PureWindowsPath(member.name).drive or ".." in parts:
        raise ValueError(f"The archive {url} must hold relative paths only. Got the entry {member.name!r} instead.")
    if not (member.isfile() or member.isdir()):
        raise ValueError(f"The archive {url} must hold regular files and folders only. Got the entry "
                         f"{member.name!r} (a link, device or FIFO) instead.")


def _extract(archive: Path, root: Path) -> Path:
    """Extract ``archive`` into a new ``.cifar-extract-*`` folder of ``root``; return that folder."""
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=".cifar-extract-"))
    try:
        with tarfile.open(archive, "r:gz") as tar:
            members = tar.getmembers()
            for member in members:
                _check_member(member, URL)
            safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
            tar.extractall(tmp, members=members, **safe)
        if _missing(tmp / FOLDER):
            raise ValueError(f"The archive {URL} must hold {FOLDER}/ with {', '.join((*TRAIN_FILES, TEST_FILE))}. "
                             f"Got an archive that lacks {', '.join(_missing(tmp / FOLDER))} instead.")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return tmp


def _put_in_place(folder: Path, target: Path) -> None:
    """Move ``folder`` to ``target``, replacing what is there (an incomplete folder, a file or a link)."""
    if target.is_dir() and not target.is_symlink():
        shutil.rmtree(target)
    elif target.exists() or target.is_symlink():
        target.unlink()
    os.replace(folder, target)


def download_cifar10(root=None) -> Path:
    """Download the official archive, check its MD5, extract it safely into ``root``; return the batch folder.

    The archive streams into a ``*.tmp`` file and is extracted into a ``.cifar-extract-*`` folder beside
    the target, which replaces whatever is at ``<root>/cifar-10-batches-py`` only when complete, so an
    interrupted run never leaves a half-written folder behind. The root is checked before any folder is
    created, and folders created for a download that fails are removed again.

    Parameters
    ----------
    root : str or os.PathLike, optional
        See :func:`data_root`.

    Returns
    -------
    folder : Path
        ``<root>/cifar-10-batches-py``.
    """
    root = data_root(root)
    created = _create_root(root)
    try:
        _remove_leftovers(root)
        archive = _fetch_archive(root)
        try:
            tmp = _extract(archive, root)
        finally:
            archive.unlink()
        try:
            _put_in_place(tmp / FOLDER, root / FOLDER)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        _remove_empty(created)
        raise
    return root / FOLDER


def ensure_cifar10(root=None) -> Path:
    """Make sure the batches are in place, downloading them if any is missing; return the batch folder.

    Also removes what killed downloads left in the root (see ``LEFTOVER_AGE_S``). Any failure is raised
    as ``FileNotFoundError`` saying why and where to put the data instead.
    """
    folder = data_root(root) / FOLDER
    _remove_leftovers(folder.parent)
    if _missing(folder):
        try:
            download_cifar10(folder.parent)
        except Exception as e:
            raise FileNotFoundError(f"CIFAR-10 not found in {folder}, and downloading it failed: {e}") from e
    return folder


def load_cifar10_images(root=None, *, download=True):
    """All of CIFAR-10 as uint8 images, in the official order.

    Parameters
    ----------
    root : str or os.PathLike, optional
        See :func:`data_root`.
    download : bool
        Download the archive when a batch file is missing; otherwise raise ``FileNotFoundError``.

    Returns
    -------
    X_train : (50000, 32, 32, 3) uint8
    y_train : (50000,) int64
    X_test : (10000, 32, 32, 3) uint8
    y_test : (10000,) int64
    """
    folder = data_root(root) / FOLDER
    if download:
        ensure_cifar10(root)
    elif missing := _missing(folder):
        raise FileNotFoundError(f"CIFAR-10 not found: {folder} lacks {', '.join(missing)}. "
                                f"{_where_to_put(folder.parent)} Or pass download=True.")
    batches = {name: _read_batch(folder / name) for name in (*TRAIN_FILES, TEST_FILE)}
    _check_distinct({name: X for name, (X, _) in batches.items()}, folder)
    X_test, y_test = batches.pop(TEST_FILE)
    X_train = np.concatenate([X for X, _ in batches.values()])
    y_train = np.concatenate([y for _, y in batches.values()])
    return X_train, y_train, X_test, y_test


def check_split_sizes(num_training: int, num_validation: int, available: int) -> None:
    """Raise ``ValueError`` unless the training and validation splits fit in ``available`` images."""
    if num_training + num_validation > available:
        raise ValueError(f"num_training + num_validation must be at most {available}. "
                         f"Got {num_training} + {num_validation} instead.")


def _check_float_dtype(dtype) -> np.dtype:
    try:
        kind = np.dtype(dtype).kind
    except TypeError:
        kind = None
    if kind != "f":
        raise TypeError(f"The 'dtype' parameter must be a floating dtype such as numpy.float32. "
                        f"Got {dtype!r} instead.")
    return np.dtype(dtype)


def load_cifar10(root=None, *, num_training=49000, num_validation=1000, num_test=1000,
                 subtract_mean=True, download=True, dtype=np.float32) -> CIFAR10Split:
    """The handout's split, flattened to (N, D) and, with ``subtract_mean``, centred.

    Parameters
    ----------
    root : str or os.PathLike, optional
        See :func:`data_root`.
    num_training : int > 0
        The first ``num_training`` training images form the training split.
    num_validation : int >= 0
        The next ``num_validation`` training images form the validation split.
    num_test : int >= 0
        The first ``num_test`` test images.
    subtract_mean : bool
        Subtract the mean image (D,) of the training split from every split.
    download : bool
        Download CIFAR-10 if it is missing.
    dtype : floating dtype
        Dtype of the X arrays.

    Returns
    -------
    CIFAR10Split
        X arrays (N, D) of ``dtype``, y arrays (N,) int64; empty splits are (0, D) and (0,).
    """
    num_training = check_positive_int("num_training", num_training)
    num_validation = check_nonneg_int("num_validation", num_validation)
    num_test = check_nonneg_int("num_test", num_test)
    dtype = _check_float_dtype(dtype)
    X_all, y_all, X_te, y_te = load_cifar10_images(root, download=download)
    check_split_sizes(num_training, num_validation, X_all.shape[0])
    if num_test > X_te.shape[0]:
        raise ValueError(f"The 'num_test' parameter must be at most {X_te.shape[0]}. Got {num_test} instead.")

    def flat(X):
        return X.reshape(X.shape[0], np.prod(IMAGE_SHAPE)).astype(dtype)

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
