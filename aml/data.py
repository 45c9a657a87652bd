"""CIFAR-10: finding, downloading, reading and splitting it the way the handout does.

Shapes: N images; D = 3072 = 32 x 32 x 3 values per flattened image. Images are returned as
(N, 32, 32, 3) uint8 or flattened to (N, D) in height-width-channel order, the layout of the
handout's loader. The dataset is looked for in ``<root>/cifar-10-batches-py/``, where root is the
``root`` argument, else the environment variable ``AML_DATA_DIR`` (a relative one is taken relative to
the repository, so notebooks, scripts and tests find the same folder), else the repository's ``data/``.

The test split is returned sealed (:class:`SealedTest`): it reaches a model only through
:func:`aml.ledger.evaluate_on_test`, which records every look in the test-set ledger. Choices are made
on a selection split carved out of the training images (:func:`selection_indices`), so the handout's
validation images give an unbiased estimate of the chosen model.

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

from ._checks import check_nonneg_int, check_positive_int, check_seed
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


class SealedTest:
    """The test split, sealed: its images and labels reach a model only through
    :func:`aml.ledger.evaluate_on_test`, which appends a row to the test-set ledger before it returns.

    ``len()``, ``shape`` and ``repr`` say how big the split is; nothing else of it can be read, indexed,
    iterated or turned into an array. Preprocessing that must also apply to test images (a fitted
    transform, a conversion to tensors) goes through :meth:`map`, which returns a new sealed split.

    Parameters
    ----------
    X : numpy.ndarray or torch.Tensor, shape (N, ...)
        The test images: (N, D) flattened, (N, 32, 32, 3) uint8, or (N, 3, 32, 32) tensors.
    y : numpy.ndarray of int, shape (N,)
        Their labels.

    Notes
    -----
    The loaders build this object themselves (:func:`load_cifar10`, :func:`load_cifar10_images`). The
    public constructor is the escape for unit tests and for code that builds its own splits: the seal
    is a convention Python cannot enforce; ``_open`` is for :mod:`aml.ledger` (and this module's loaders) alone.
    """

    __slots__ = ("_X", "_y")

    def __init__(self, X, y):
        shape = getattr(X, "shape", None)
        if shape is None or len(shape) < 1:
            raise TypeError("The 'X' parameter of SealedTest must be an array or tensor of shape (N, ...). "
                            f"Got {_describe(X)} instead.")
        if not (isinstance(y, np.ndarray) and y.dtype.kind in "iu" and y.ndim == 1):
            raise TypeError("The 'y' parameter of SealedTest must be a 1-D integer numpy.ndarray (N,). "
                            f"Got {_describe(y)} instead.")
        if y.shape[0] != shape[0]:
            raise ValueError(f"The 'y' parameter of SealedTest must hold one label per image, {shape[0]}. "
                             f"Got {y.shape[0]} labels instead.")
        y = y.astype(np.int64)          # a copy: the sealed labels cannot be changed through the caller's array
        y.flags.writeable = False
        self._X, self._y = X, y

    def __len__(self) -> int:
        return int(self._y.shape[0])

    @property
    def shape(self) -> tuple:
        """The shape of the sealed images, e.g. (N, D)."""
        return tuple(self._X.shape)

    def __repr__(self) -> str:
        return (f"SealedTest({len(self)} images of shape {self.shape[1:]}, dtype={self._X.dtype}; sealed: "
                "evaluate with aml.ledger.evaluate_on_test)")

    def __array__(self, *args, **kwargs):
        raise TypeError("A SealedTest cannot be turned into an array: evaluate a model on it with "
                        "aml.ledger.evaluate_on_test, which records the look in the test-set ledger.")

    def map(self, fn) -> "SealedTest":
        """The same split with ``fn`` applied to its images: ``SealedTest(fn(X), y)``.

        For preprocessing only (subtracting a fitted mean, a PCA, ``to_tensor_images``, moving to a
        device): ``fn`` sees the test images, so it must not be a model or anything that keeps them.

        Parameters
        ----------
        fn : callable
            ``fn(X) -> X'`` with X' of shape (N, ...), one row per image.
        """
        if not callable(fn):
            raise TypeError(f"The 'fn' parameter must be callable. Got {_describe(fn)} instead.")
        out = fn(self._X)
        if getattr(out, "shape", (None,))[:1] != (len(self),):
            raise ValueError(f"The 'fn' parameter must return one row per test image, shape ({len(self)}, ...). "
                             f"Got {_describe(out)} instead.")
        return SealedTest(out, self._y)

    def head(self, num_test: int) -> "SealedTest":
        """The first ``num_test`` images (the handout's test set is the first 1,000), still sealed."""
        num_test = check_nonneg_int("num_test", num_test)
        if num_test > len(self):
            raise ValueError(f"The 'num_test' parameter must be at most {len(self)}. Got {num_test} instead.")
        return SealedTest(self._X[:num_test], self._y[:num_test])

    def _open(self) -> tuple:
        """(X, y): for :func:`aml.ledger.evaluate_on_test` only."""
        return self._X, self._y


@dataclass(frozen=True)
class CIFAR10Split:
    """The handout's split plus an optional selection split; X arrays are (N, D) HWC-flattened and y
    arrays (N,) int64.

    Sizes, as :func:`load_cifar10` makes them: ``X_train`` holds ``num_training - num_selection``
    images, ``X_sel`` ``num_selection`` (carved out of the first ``num_training``, stratified; (0, D)
    when there is none), ``X_val`` the next ``num_validation`` and ``test`` the first ``num_test`` test
    images, sealed (:class:`SealedTest`).

    Every choice (search, pruning, best epoch, flips, depth, the tested seed) is made on the selection
    split; the validation split then gives an unbiased estimate, and the test split one ledgered look.
    """
    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    test: SealedTest
    mean_image: np.ndarray | None = None   # (D,) the training mean that was subtracted, or None
    X_sel: np.ndarray | None = None        # (S, D); None means empty, (0, D)
    y_sel: np.ndarray | None = None        # (S,)
    class_names: tuple = CLASS_NAMES

    def __post_init__(self):
        if not isinstance(self.test, SealedTest):
            raise TypeError("The 'test' parameter of CIFAR10Split must be a SealedTest (build one with "
                            f"aml.data.SealedTest(X_test, y_test)). Got {_describe(self.test)} instead.")
        if (self.X_sel is None) != (self.y_sel is None):
            raise ValueError("The 'X_sel' and 'y_sel' parameters of CIFAR10Split must be given together. "
                             f"Got only {'X_sel' if self.y_sel is None else 'y_sel'} instead.")
        if self.X_sel is None:
            object.__setattr__(self, "X_sel", np.zeros((0, *self.X_train.shape[1:]), self.X_train.dtype))
            object.__setattr__(self, "y_sel", np.zeros(0, np.int64))
        if len(self.X_sel) != len(self.y_sel):
            raise ValueError(f"The 'y_sel' parameter of CIFAR10Split must hold one label per row of X_sel, "
                             f"{len(self.X_sel)}. Got {len(self.y_sel)} instead.")

    @property
    def X_test(self):
        raise AttributeError("The test split is sealed: pass split.test to aml.ledger.evaluate_on_test "
                             "(its TestEvaluation then holds the predictions and labels).")

    y_test = X_test

    def __repr__(self) -> str:
        return (f"CIFAR10Split(train={self.X_train.shape}, selection={self.X_sel.shape}, val={self.X_val.shape}, "
                f"test={self.test.shape} sealed, dtype={self.X_train.dtype})")


def data_root(root=None) -> Path:
    """The folder that holds (or will hold) ``cifar-10-batches-py``, as an absolute, resolved path.

    Parameters
    ----------
    root : str or os.PathLike, optional
        Defaults to ``$AML_DATA_DIR``, else the repository's ``data/``. A relative ``AML_DATA_DIR`` is
        resolved against the repository root (``aml.runs.REPO_ROOT``), so a notebook (whose kernel
        starts in ``notebooks/``), a script and the tests all find the same folder; a relative
        ``root`` argument is resolved against the current working directory, as any path argument.
    """
    if root is None:
        env = os.environ.get("AML_DATA_DIR")
        root = REPO_ROOT / Path(env).expanduser() if env else REPO_ROOT / "data"
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
    test : SealedTest
        The 10,000 test images (10000, 32, 32, 3) uint8 and labels, sealed: evaluate on them with
        :func:`aml.ledger.evaluate_on_test` (convert them first with ``test.map(...)``), and get the
        images for a figure after that with :func:`test_images_for_display`.
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
    return X_train, y_train, SealedTest(X_test, y_test)


def test_images_for_display(evaluation, root=None, *, download=False) -> np.ndarray:
    """The test images an evaluation was made on, as uint8 (N, 32, 32, 3), for figures drawn *after*
    the ledgered evaluation (misclassified examples).

    Parameters
    ----------
    evaluation : aml.ledger.TestEvaluation
        What :func:`aml.ledger.evaluate_on_test` returned: proof that the look is in the ledger. Its
        ``labels`` (N,) must be those of the first N test images.
    root : str or os.PathLike, optional
        See :func:`data_root`.
    download : bool
        Download CIFAR-10 if it is missing.

    Returns
    -------
    images : (N, 32, 32, 3) uint8
        The first N test images, in the order of ``evaluation.predictions``.
    """
    from .ledger import TestEvaluation  # aml.ledger imports this module

    if not isinstance(evaluation, TestEvaluation):
        raise TypeError("The 'evaluation' parameter must be the TestEvaluation that aml.ledger.evaluate_on_test "
                        f"returned (test images are shown only after the ledgered look). Got {_describe(evaluation)} "
                        "instead.")
    folder = ensure_cifar10(root) if download else data_root(root) / FOLDER
    if not (folder / TEST_FILE).is_file():
        raise FileNotFoundError(f"CIFAR-10 not found: {folder} lacks {TEST_FILE}. {_where_to_put(folder.parent)} "
                                "Or pass download=True.")
    images, labels = _read_batch(folder / TEST_FILE)
    num_test = len(evaluation.labels)
    if num_test > len(labels) or not np.array_equal(labels[:num_test], evaluation.labels):
        raise ValueError(f"The 'evaluation' parameter must be an evaluation on the first {num_test} test images of "
                         f"{folder}. Got labels that differ from theirs instead.")
    return images[:num_test]


test_images_for_display.__test__ = False   # a library function, not a test, for pytest where it is imported


def selection_indices(labels, num_selection: int, *, seed: int = 0) -> np.ndarray:
    """Which training images form the selection split: ``num_selection // C`` of each class, drawn
    without replacement.

    Parameters
    ----------
    labels : numpy.ndarray of int, shape (N,)
        The labels of the training images the selection is carved from, in [0, C), C = 10.
    num_selection : int >= 0
        How many images to select; a multiple of C, so that every class gives as many.
    seed : int in [0, 2**32)
        Seeds ``np.random.default_rng``: the same labels, size and seed give the same indices.

    Returns
    -------
    indices : (num_selection,) int64
        Sorted, distinct indices into ``labels``.
    """
    num_classes = len(CLASS_NAMES)
    if not (isinstance(labels, np.ndarray) and labels.dtype.kind in "iu" and labels.ndim == 1):
        raise TypeError(f"The 'labels' parameter must be a 1-D integer numpy.ndarray (N,). Got {_describe(labels)} "
                        "instead.")
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"The 'labels' parameter must hold labels in [0, {num_classes}). Got values in "
                         f"[{labels.min()}, {labels.max()}] instead.")
    num_selection = check_nonneg_int("num_selection", num_selection)
    if num_selection % num_classes:
        raise ValueError(f"The 'num_selection' parameter must be a multiple of the number of classes, "
                         f"{num_classes}, so that every class gives as many images. Got {num_selection} instead.")
    rng = np.random.default_rng(check_seed("seed", seed))
    per_class = num_selection // num_classes
    picks = []
    for c in range(num_classes):
        members = np.flatnonzero(labels == c)
        if len(members) < per_class:
            raise ValueError(f"The 'labels' parameter must hold at least {per_class} images of each class for "
                             f"num_selection={num_selection}. Got {len(members)} of class {c} "
                             f"({CLASS_NAMES[c]}) instead.")
        picks.append(rng.choice(members, per_class, replace=False))
    return np.sort(np.concatenate(picks)).astype(np.int64)


def split_indices(labels, *, num_training: int = 49000, num_validation: int = 1000,
                  num_selection: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The training, selection and validation rows of the training images, as :func:`load_cifar10`
    splits them (one function, so that the NumPy and the PyTorch halves carve the same splits).

    The selection rows are drawn with :func:`selection_indices` (seed 0) from the first
    ``num_training`` images; the rest of those are the training rows, in their order; the next
    ``num_validation`` images are the validation rows.

    Parameters
    ----------
    labels : numpy.ndarray of int, shape (N,)
        Labels of all training images (``y_train`` of :func:`load_cifar10_images`).
    num_training : int > 0
    num_validation : int >= 0
    num_selection : int >= 0, a multiple of 10, below ``num_training``

    Returns
    -------
    train, selection, validation : int64 arrays of sizes num_training - num_selection, num_selection,
        num_validation
    """
    num_training = check_positive_int("num_training", num_training)
    num_validation = check_nonneg_int("num_validation", num_validation)
    num_selection = check_nonneg_int("num_selection", num_selection)
    check_split_sizes(num_training, num_validation, len(labels))
    if num_selection >= num_training:
        raise ValueError(f"The 'num_selection' parameter must be below num_training ({num_training}), so that "
                         f"training images remain. Got {num_selection} instead.")
    selection = selection_indices(labels[:num_training], num_selection, seed=0)
    train = np.delete(np.arange(num_training, dtype=np.int64), selection)
    validation = np.arange(num_training, num_training + num_validation, dtype=np.int64)
    return train, selection, validation


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


def load_cifar10(root=None, *, num_training=49000, num_validation=1000, num_test=1000, num_selection=0,
                 subtract_mean=True, download=True, dtype=np.float32) -> CIFAR10Split:
    """The handout's split, flattened to (N, D) and, with ``subtract_mean``, centred; the test split sealed.

    Parameters
    ----------
    root : str or os.PathLike, optional
        See :func:`data_root`.
    num_training : int > 0
        The first ``num_training`` training images form the training split (less the selection split).
    num_validation : int >= 0
        The next ``num_validation`` training images form the validation split.
    num_test : int >= 0
        The first ``num_test`` test images, sealed in ``split.test``.
    num_selection : int >= 0
        Size of the selection split, carved out of the first ``num_training`` images (stratified,
        ``num_selection // 10`` per class, seed 0: see :func:`split_indices`) and removed from the
        training split; a multiple of 10, below ``num_training``. 0: no selection split.
    subtract_mean : bool
        Subtract the mean image (D,) of the training split (the rows that remain after the
        selection split is removed) from every split.
    download : bool
        Download CIFAR-10 if it is missing.
    dtype : floating dtype
        Dtype of the X arrays.

    Returns
    -------
    CIFAR10Split
        ``X_train`` (num_training - num_selection, D), ``X_sel`` (num_selection, D), ``X_val``
        (num_validation, D) of ``dtype`` with int64 labels (N,), and ``test``, a :class:`SealedTest`
        of (num_test, D). Empty splits are (0, D) and (0,).
    """
    num_training = check_positive_int("num_training", num_training)
    num_validation = check_nonneg_int("num_validation", num_validation)
    num_test = check_nonneg_int("num_test", num_test)
    num_selection = check_nonneg_int("num_selection", num_selection)
    dtype = _check_float_dtype(dtype)
    X_all, y_all, test = load_cifar10_images(root, download=download)
    X_te, y_te = test._open()   # sealed again below: no test array leaves this function
    train, selection, validation = split_indices(y_all, num_training=num_training, num_validation=num_validation,
                                                 num_selection=num_selection)
    if num_test > len(test):
        raise ValueError(f"The 'num_test' parameter must be at most {len(test)}. Got {num_test} instead.")

    def flat(X):
        return X.reshape(X.shape[0], np.prod(IMAGE_SHAPE)).astype(dtype)

    # without a selection split the training rows are a slice: no copy of the uint8 images
    X_train = flat(X_all[:num_training] if not num_selection else X_all[train])
    X_sel = flat(X_all[selection])
    X_val = flat(X_all[num_training:num_training + num_validation])
    X_test = flat(X_te[:num_test])
    mean_image = None
    if subtract_mean:
        mean_image = X_train.mean(axis=0, dtype=np.float64).astype(dtype)
        for X in (X_train, X_sel, X_val, X_test):
            X -= mean_image
    return CIFAR10Split(X_train, y_all[train], X_val, y_all[validation],
                        SealedTest(X_test, y_te[:num_test]), mean_image,
                        X_sel=X_sel, y_sel=y_all[selection])
