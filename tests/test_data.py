"""The CIFAR-10 loader: the handout's split, the selection split, the sealed test split, the data root,
and batch files that are malformed. (Hostile files and servers: tests/test_data_security.py.)"""
import os
import pickle
import struct

import numpy as np
import pytest

import aml.data
from aml import ledger, load_cifar10
from aml.data import (
    TEST_FILE,
    TRAIN_FILES,
    SealedTest,
    data_root,
    ensure_cifar10,
    load_cifar10_images,
    selection_indices,
    split_indices,
    test_images_for_display,
)
from aml.runs import REPO_ROOT

OFFICIAL_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"

pytestmark = pytest.mark.usefixtures("isolated_data_dir")


def _opened(test):
    """The arrays of a sealed test split (for checking what the loader sealed; models go through the ledger)."""
    assert isinstance(test, SealedTest)
    return test._open()


def _write_fake_cifar(root, per_batch=20):
    """CIFAR-format batches where pixel values encode (image index, channel, row, col)."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for b, name in enumerate((*TRAIN_FILES, TEST_FILE)):
        data = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
        data[:, 0] = b * per_batch + np.arange(per_batch)     # red channel, pixel (0, 0): a global index
        data[:, 1024] = 200                                    # green channel, pixel (0, 0)
        labels = [int(i % 10) for i in range(b * per_batch, (b + 1) * per_batch)]
        _dump(folder / name, {b"data": data, b"labels": labels, b"batch_label": name.encode()})
    return folder


def _dump(path, obj):
    # protocol 4 pickles arrays with the globals the official files use (protocol 5 would not)
    path.write_bytes(pickle.dumps(obj, protocol=4))


def test_split_order_layout_and_mean(tmp_dir):
    _write_fake_cifar(tmp_dir)
    d = load_cifar10(tmp_dir, num_training=70, num_validation=10, num_test=15, subtract_mean=False,
                     download=False)
    X_test, y_test = _opened(d.test)
    assert d.X_train.shape == (70, 3072) and d.X_val.shape == (10, 3072) and X_test.shape == (15, 3072)
    assert d.X_sel.shape == (0, 3072) and d.y_sel.shape == (0,)           # no selection split by default
    assert d.X_train.dtype == np.float32 and d.y_train.dtype == np.int64
    # HWC order: the first three values are pixel (0, 0)'s red, green, blue
    np.testing.assert_array_equal(d.X_train[:, 0], np.arange(70))
    np.testing.assert_array_equal(d.X_train[:, 1], 200)
    np.testing.assert_array_equal(d.X_val[:, 0], np.arange(70, 80))       # the next images
    np.testing.assert_array_equal(X_test[:, 0], np.arange(100, 115))      # the first test images
    np.testing.assert_array_equal(y_test, np.arange(100, 115) % 10)
    np.testing.assert_array_equal(d.y_val, np.arange(70, 80) % 10)
    assert d.mean_image is None

    centred = load_cifar10(tmp_dir, num_training=70, num_validation=10, num_test=15, download=False)
    # the mean of the 70 training images, computed exactly and rounded once to float32
    expected = (d.X_train.astype(np.float64).sum(axis=0) / 70).astype(np.float32)
    assert centred.mean_image.dtype == np.float32 and centred.mean_image.shape == (3072,)
    np.testing.assert_array_equal(centred.mean_image, expected)
    for X, X_raw in ((centred.X_train, d.X_train), (centred.X_val, d.X_val), (_opened(centred.test)[0], X_test)):
        np.testing.assert_array_equal(X, X_raw - expected)
    np.testing.assert_allclose(centred.X_train.mean(axis=0), 0, atol=1e-3)


def test_root_from_environment(tmp_dir, monkeypatch):
    _write_fake_cifar(tmp_dir)
    monkeypatch.setenv("AML_DATA_DIR", str(tmp_dir))
    assert data_root() == tmp_dir.resolve()
    assert load_cifar10(num_training=50, num_validation=50, num_test=20, download=False).X_train.shape == (50, 3072)


def test_missing_folder_offline_says_where(tmp_dir, monkeypatch, whole):
    def no_download(*args):
        raise AssertionError("download=False must not download")
    monkeypatch.setattr(aml.data, "_download", no_download)
    root = tmp_dir / "nowhere"
    with pytest.raises(FileNotFoundError, match=whole(
            f"CIFAR-10 not found: {root / 'cifar-10-batches-py'} lacks data_batch_1, data_batch_2, data_batch_3, "
            f"data_batch_4, data_batch_5, test_batch. Put the extracted 'cifar-10-batches-py' folder of "
            f"{OFFICIAL_URL} under {root}, or set AML_DATA_DIR to the folder that holds it "
            "(e.g. AML_DATA_DIR=../shared/data). Or pass download=True.")):
        load_cifar10(root, download=False)
    assert not root.exists()


def test_failed_download_says_where(tmp_dir, monkeypatch, whole):
    def offline(root=None):
        raise OSError("network is unreachable")
    monkeypatch.setattr(aml.data, "download_cifar10", offline)
    with pytest.raises(FileNotFoundError, match=whole(
            f"CIFAR-10 not found in {tmp_dir / 'cifar-10-batches-py'}, and downloading it failed: "
            "network is unreachable")) as e:
        load_cifar10(tmp_dir)
    assert isinstance(e.value.__cause__, OSError)


def test_truncated_batch_names_the_file(tmp_dir):
    folder = _write_fake_cifar(tmp_dir)
    raw = (folder / "data_batch_3").read_bytes()
    (folder / "data_batch_3").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match="data_batch_3.*truncated or corrupted"):
        load_cifar10_images(tmp_dir, download=False)


@pytest.mark.parametrize("kwargs,words", [
    (dict(num_training=0), "'num_training'"),
    (dict(num_validation=-1), "The 'num_validation' parameter must be an int >= 0. Got -1 instead."),
    (dict(num_test=-1), "'num_test'"),
    (dict(num_training=90, num_validation=20), "num_training \\+ num_validation"),
    (dict(num_training=50, num_validation=10, num_test=21), "'num_test'"),
])
def test_bad_split_sizes(tmp_dir, kwargs, words):
    _write_fake_cifar(tmp_dir)
    with pytest.raises(ValueError, match=words):
        load_cifar10(tmp_dir, download=False, **kwargs)


def test_default_split_is_the_handouts_49000_1000_1000(tmp_dir, monkeypatch, whole):
    _write_fake_cifar(tmp_dir)       # 100 training images: the default split does not fit
    with pytest.raises(ValueError, match=whole(
            "num_training + num_validation must be at most 100. Got 49000 + 1000 instead.")):
        load_cifar10(tmp_dir, download=False)

    def images(root=None, *, download=True):   # all 50,000 training images (one, broadcast), 999 test images
        X = np.broadcast_to(np.zeros((1, 32, 32, 3), np.uint8), (50000, 32, 32, 3))
        y = np.zeros(50000, np.int64)
        return X, y, SealedTest(X[:999], y[:999])
    monkeypatch.setattr(aml.data, "load_cifar10_images", images)
    with pytest.raises(ValueError, match=whole("The 'num_test' parameter must be at most 999. Got 1000 instead.")):
        load_cifar10(tmp_dir)


def test_mean_image_is_rounded_once_to_the_dtype(monkeypatch):
    # 683 / 8195 lies just below the midpoint of two float16 numbers: the exact mean rounds down, but a
    # float32 quotient (NumPy's own accumulator for float16) rounds onto the midpoint and then up.
    num_training = 8195
    X = np.zeros((num_training + 1, 32, 32, 3), np.uint8)
    X[:2, 0, 0, 0], X[2, 0, 0, 0], X[num_training, 0, 0, 0] = 255, 173, 1
    y = np.zeros(num_training + 1, np.int64)
    monkeypatch.setattr(aml.data, "load_cifar10_images",
                        lambda root=None, *, download=True: (X, y, SealedTest(X[:1], y[:1])))
    d = load_cifar10(num_training=num_training, num_validation=1, num_test=1, dtype=np.float16)
    mean = np.float16(683 / 8195)
    assert d.mean_image.dtype == np.float16
    np.testing.assert_array_equal(d.mean_image, np.r_[mean, np.zeros(3071, np.float16)])
    assert d.X_val[0, 0] == np.float16(1) - mean and d.X_train[2, 0] == np.float16(173) - mean


# Case 3: empty validation or test splits, and the other legal edge values
@pytest.mark.parametrize("subtract_mean", [True, False])
def test_empty_validation_and_test_splits(tmp_dir, subtract_mean):
    _write_fake_cifar(tmp_dir)
    d = load_cifar10(tmp_dir, num_training=100, num_validation=0, num_test=0, subtract_mean=subtract_mean,
                     download=False, dtype=np.float64)
    X_test, y_test = _opened(d.test)
    assert d.X_train.shape == (100, 3072) and d.X_val.shape == (0, 3072) and X_test.shape == (0, 3072)
    assert d.X_val.dtype == X_test.dtype == d.X_sel.dtype == np.float64
    assert d.y_val.shape == y_test.shape == (0,) and d.y_val.dtype == y_test.dtype == np.int64


def test_largest_legal_split_sizes(tmp_dir):
    _write_fake_cifar(tmp_dir)
    d = load_cifar10(tmp_dir, num_training=1, num_validation=99, num_test=20, download=False)
    assert d.X_train.shape == (1, 3072) and d.X_val.shape == (99, 3072) and d.test.shape == (20, 3072)
    np.testing.assert_array_equal(d.X_train, 0)      # one image minus its own mean


@pytest.mark.parametrize("dtype", [np.uint8, "int64", "no such dtype"])
def test_dtype_must_be_floating(tmp_dir, dtype):      # case 7: uint8 would wrap when the mean is subtracted
    _write_fake_cifar(tmp_dir)
    with pytest.raises(TypeError, match="'dtype' parameter must be a floating dtype.*Got"):
        load_cifar10(tmp_dir, num_training=50, download=False, dtype=dtype)


# Case 2: batch contents are validated, and errors name the file
def _rewrite_batch(folder, entries, name="data_batch_2"):
    batch = pickle.loads((folder / name).read_bytes())
    batch.update(entries)
    _dump(folder / name, batch)


@pytest.mark.parametrize("entries,words", [
    ({b"data": None}, "'data' entry.*uint8 array of shape \\(n, 3072\\).*Got NoneType"),
    ({b"data": np.full((20, 3072), 300.7)}, "'data' entry.*uint8.*Got a float64 array of shape \\(20, 3072\\)"),
    ({b"data": np.zeros((20, 1024), np.uint8)}, "'data' entry.*Got a uint8 array of shape \\(20, 1024\\)"),
    ({b"data": np.zeros((0, 3072), np.uint8)}, "'data' entry.*n >= 1.*Got a uint8 array of shape \\(0, 3072\\)"),
    ({b"labels": [99] * 20}, "'labels' entry.*ints in \\[0, 10\\).*Got 99 instead"),
    ({b"labels": [9] * 19 + [10]}, "'labels' entry.*ints in \\[0, 10\\).*Got 10 instead"),
    ({b"labels": np.r_[np.full(19, 9), 10]}, "'labels' entry.*ints in \\[0, 10\\).*Got 10 instead"),
    ({b"labels": [1] * 19 + [-5]}, "Got -5 instead"),
    ({b"labels": [3.7] * 20}, "Got 3.7 instead"),
    ({b"labels": [True] * 20}, "Got True instead"),
    ({b"labels": np.full(20, 99)}, "Got 99 instead"),
    ({b"labels": np.full(20, 3.0)}, "Got a float64 array of shape \\(20,\\)"),
    ({b"labels": [1] * 19}, "20 ints.*Got 19 labels instead"),
    ({b"labels": "0123"}, "'labels' entry.*Got str instead"),
])
def test_bad_batch_contents_name_the_file(tmp_dir, entries, words):
    folder = _write_fake_cifar(tmp_dir)
    _rewrite_batch(folder, entries)
    with pytest.raises(ValueError, match=words) as e:
        load_cifar10_images(tmp_dir, download=False)
    assert "data_batch_2" in str(e.value)


@pytest.mark.parametrize("batch,words", [
    ([1, 2, 3], "must hold a dict with 'data' and 'labels' entries. Got list instead"),
    ({b"data": np.zeros((20, 3072), np.uint8)}, "must hold a dict.*Got keys \\[\"b'data'\"\\]"),
    ({b"labels": [0] * 20}, "must hold a dict.*Got keys \\[\"b'labels'\"\\]"),
])
def test_batch_must_be_a_dict_with_data_and_labels(tmp_dir, batch, words):
    folder = _write_fake_cifar(tmp_dir)
    _dump(folder / "data_batch_2", batch)
    with pytest.raises(ValueError, match=f"data_batch_2 {words}"):
        load_cifar10_images(tmp_dir, download=False)


def test_str_keys_and_integer_array_labels_are_accepted(tmp_dir):
    folder = _write_fake_cifar(tmp_dir)
    batch = pickle.loads((folder / "data_batch_2").read_bytes())
    _dump(folder / "data_batch_2", {"data": batch[b"data"], "labels": np.asarray(batch[b"labels"], np.uint8)})
    X_train, y_train, _ = load_cifar10_images(tmp_dir, download=False)
    assert X_train.shape == (100, 32, 32, 3) and y_train.dtype == np.int64
    np.testing.assert_array_equal(y_train, np.arange(100) % 10)


@pytest.mark.parametrize("dtype", [np.uint8, np.int32])
def test_integer_array_labels_come_back_as_int64(tmp_dir, dtype):
    folder = _write_fake_cifar(tmp_dir)
    _rewrite_batch(folder, {b"labels": np.arange(100, 120, dtype=dtype) % 10}, name=TEST_FILE)
    y_test = _opened(load_cifar10_images(tmp_dir, download=False)[2])[1]
    assert y_test.dtype == np.int64
    np.testing.assert_array_equal(y_test, np.arange(100, 120) % 10)


def test_batches_of_one_image_are_accepted(tmp_dir):
    _write_fake_cifar(tmp_dir, per_batch=1)
    X_train, y_train, test = load_cifar10_images(tmp_dir, download=False)
    X_test, y_test = _opened(test)
    assert X_train.shape == (5, 32, 32, 3) and X_test.shape == (1, 32, 32, 3)
    np.testing.assert_array_equal(X_train[:, 0, 0, 0], np.arange(5))
    assert X_test[0, 0, 0, 0] == 5 and y_train.tolist() == [0, 1, 2, 3, 4] and y_test.tolist() == [5]


def test_error_lists_at_most_ten_keys_of_a_batch_without_data(tmp_dir, whole):
    folder = _write_fake_cifar(tmp_dir)
    _dump(folder / "data_batch_2", {f"k{i:02d}".encode(): i for i in range(12)})
    first_ten = [f"b'k{i:02d}'" for i in range(10)]
    with pytest.raises(ValueError, match=whole(
            f"The CIFAR-10 batch file {folder / 'data_batch_2'} must hold a dict with 'data' and 'labels' "
            f"entries. Got keys {first_ten} instead.")):
        load_cifar10_images(tmp_dir, download=False)


def _python2_batch(data, labels):
    """The bytes Python 2's ``cPickle.dump(batch, f, 2)`` writes for ``{'data': data, 'labels': labels}``,
    as in the official files: the keys and the pixel buffer are Python 2 ``str``."""
    def string(b):
        return b"U" + bytes([len(b)]) + b if len(b) < 256 else b"T" + struct.pack("<I", len(b)) + b

    def integer(i):
        return b"K" + bytes([i]) if i < 256 else b"M" + struct.pack("<H", i)
    dtype = (b"cnumpy\ndtype\n" + string(b"u1") + integer(0) + integer(1) + b"\x87R"
             + b"(" + integer(3) + string(b"|") + b"NNN" + b"J\xff\xff\xff\xff" * 2 + integer(0) + b"tb")
    array = (b"cnumpy.core.multiarray\n_reconstruct\n" + b"cnumpy\nndarray\n" + integer(0) + b"\x85"
             + string(b"b") + b"\x87R" + b"(" + integer(1) + integer(data.shape[0]) + integer(data.shape[1])
             + b"\x86" + dtype + b"\x89" + string(data.tobytes()) + b"tb")
    return (b"\x80\x02}(" + string(b"data") + array
            + string(b"labels") + b"](" + b"".join(integer(v) for v in labels) + b"eu.")


def test_python2_batch_files_load(tmp_dir):    # the official files were written by Python 2
    folder = _write_fake_cifar(tmp_dir)
    data = np.arange(20 * 3072).reshape(20, 3072).astype(np.uint8)    # every byte value, 128-255 included
    data[:, 0] = 255 - np.arange(20)
    (folder / TEST_FILE).write_bytes(_python2_batch(data, [9 - i % 10 for i in range(20)]))
    X_test, y_test = _opened(load_cifar10_images(tmp_dir, download=False)[2])
    np.testing.assert_array_equal(X_test, data.reshape(20, 3, 32, 32).transpose(0, 2, 3, 1))
    assert y_test.dtype == np.int64 and y_test.tolist() == [9 - i % 10 for i in range(20)]


# Case 7: a directory or a FIFO where a batch file is expected, a batch copied over another
@pytest.mark.parametrize("make", ["directory", "fifo"])
def test_batch_that_is_not_a_regular_file(tmp_dir, make):
    folder = _write_fake_cifar(tmp_dir)
    (folder / TEST_FILE).unlink()
    if make == "directory":
        (folder / TEST_FILE).mkdir()
    elif hasattr(os, "mkfifo"):
        os.mkfifo(folder / TEST_FILE)            # opening it would block forever
    else:
        pytest.skip("no FIFOs on this system")
    with pytest.raises(FileNotFoundError, match="lacks test_batch \\(not a regular file\\)"):
        load_cifar10_images(tmp_dir, download=False)


@pytest.mark.parametrize("source,target", [("data_batch_2", TEST_FILE), ("data_batch_1", "data_batch_2"),
                                           ("data_batch_5", TEST_FILE)])
def test_batch_copied_over_another_is_refused(tmp_dir, source, target, whole):
    folder = _write_fake_cifar(tmp_dir)
    (folder / target).write_bytes((folder / source).read_bytes())
    with pytest.raises(ValueError, match=whole(
            f"The CIFAR-10 batch files {source} and {target} in {folder} hold the same images; one was copied "
            "over the other. Delete the folder and download the dataset again.")):
        load_cifar10_images(tmp_dir, download=False)


def test_batches_that_share_only_their_first_image_are_distinct(tmp_dir):
    folder = _write_fake_cifar(tmp_dir)
    first = pickle.loads((folder / "data_batch_1").read_bytes())[b"data"][0]
    data = pickle.loads((folder / "data_batch_2").read_bytes())[b"data"]
    data[0] = first
    _rewrite_batch(folder, {b"data": data})
    X_train = load_cifar10_images(tmp_dir, download=False)[0]
    np.testing.assert_array_equal(X_train[20], X_train[0])


def test_default_root_is_the_repositorys_data_folder(monkeypatch):
    monkeypatch.delenv("AML_DATA_DIR", raising=False)
    assert data_root() == (REPO_ROOT / "data").resolve()
    monkeypatch.setenv("AML_DATA_DIR", "")         # set but empty: the default too, not the working directory
    assert data_root() == (REPO_ROOT / "data").resolve()


@pytest.mark.parametrize("root,error", [(123, TypeError), ("", ValueError)])
def test_root_must_be_a_path(root, error):     # case 7: "" would silently mean the working directory
    with pytest.raises(error, match="The 'root' parameter must be"):
        data_root(root)


# Case 5: a relative AML_DATA_DIR means the same folder from every entry point: the repository's
def test_relative_data_dir_is_resolved_against_the_repository_not_the_working_directory(tmp_dir, monkeypatch):
    (tmp_dir / "repo" / "notebooks").mkdir(parents=True)
    _write_fake_cifar(tmp_dir / "repo" / "shared")
    monkeypatch.chdir(tmp_dir / "repo" / "notebooks")               # where a Jupyter kernel starts
    monkeypatch.setenv("AML_DATA_DIR", "shared/./")
    assert data_root() == (REPO_ROOT / "shared").resolve()            # the real root, whatever the cwd
    monkeypatch.setattr(aml.data, "REPO_ROOT", tmp_dir / "repo")
    assert data_root() == tmp_dir / "repo" / "shared"
    monkeypatch.setenv("AML_DATA_DIR", "../repo/shared")
    assert data_root() == tmp_dir / "repo" / "shared"                 # .. is taken from the repository too
    assert ".." not in data_root().parts
    assert load_cifar10(num_training=50, num_validation=5, num_test=5, download=False).test.shape == (5, 3072)
    assert data_root("rel") == tmp_dir / "repo" / "notebooks" / "rel"   # an argument: the working directory's


# Case 6: a bad root fails before any folder is created, and a failed download leaves none behind
def test_download_into_a_root_under_a_regular_file(tmp_dir):
    (tmp_dir / "file.txt").write_text("not a folder")
    root = tmp_dir / "file.txt" / "a" / "b"
    with pytest.raises(FileNotFoundError, match="file.txt is not a directory.*AML_DATA_DIR"):
        load_cifar10(root)
    assert sorted(p.name for p in tmp_dir.iterdir()) == ["file.txt"]


def _access_as_owner(path, mode):
    """``os.access`` for the folder's owner who is not root: the owner's permission bits decide."""
    return mode & ~(os.stat(path).st_mode >> 6) & 0o7 == 0


@pytest.mark.parametrize("mode", [0o500, 0o600])     # not writable; writable but not searchable
def test_download_into_a_read_only_folder(tmp_dir, monkeypatch, mode, whole):
    def offline(url, dest, root):
        raise ConnectionError(f"Could not download {url}")
    monkeypatch.setattr(aml.data, "_download", offline)
    ro = tmp_dir / "ro"
    ro.mkdir(mode=mode)
    if hasattr(os, "geteuid") and os.geteuid() == 0:   # root may write anywhere: answer as for a user
        monkeypatch.setattr(os, "access", _access_as_owner)
    root = ro / "a" / "b"
    try:
        with pytest.raises(FileNotFoundError, match=whole(
                f"CIFAR-10 not found in {root / 'cifar-10-batches-py'}, and downloading it failed: The data root "
                f"must be a writable folder, or creatable inside one. Got {root} instead: {ro} is not writable. "
                "Set AML_DATA_DIR to a writable folder.")):
            ensure_cifar10(root)
    finally:
        ro.chmod(0o700)
    assert not (ro / "a").exists()


def test_failed_download_removes_the_folders_it_created(tmp_dir, monkeypatch):
    def offline(url, dest, root):
        raise ConnectionError(f"Could not download {url}")
    monkeypatch.setattr(aml.data, "_download", offline)
    (tmp_dir / "keep").mkdir()
    with pytest.raises(FileNotFoundError, match="Could not download"):
        ensure_cifar10(tmp_dir / "keep" / "a" / "b")
    assert list(tmp_dir.iterdir()) == [tmp_dir / "keep"] and not any((tmp_dir / "keep").iterdir())


# The test split is sealed: it reaches a model only through aml.ledger.evaluate_on_test
def test_load_cifar10_returns_the_test_split_sealed(tmp_dir):
    _write_fake_cifar(tmp_dir)
    d = load_cifar10(tmp_dir, num_training=70, num_validation=10, num_test=15, download=False)
    assert isinstance(d.test, SealedTest) and len(d.test) == 15 and d.test.shape == (15, 3072)
    assert repr(d.test) == ("SealedTest(15 images of shape (3072,), dtype=float32; sealed: evaluate with "
                            "aml.ledger.evaluate_on_test)")
    assert repr(d) == ("CIFAR10Split(train=(70, 3072), selection=(0, 3072), val=(10, 3072), test=(15, 3072) sealed, "
                       "dtype=float32)")
    for attribute in ("X_test", "y_test"):
        with pytest.raises(AttributeError, match="The test split is sealed: pass split.test to "
                                                 "aml.ledger.evaluate_on_test"):
            getattr(d, attribute)
    with pytest.raises(TypeError, match="cannot be turned into an array.*evaluate_on_test"):
        np.asarray(d.test)
    with pytest.raises(TypeError):
        d.test[0]
    with pytest.raises(TypeError):
        list(d.test)


def test_load_cifar10_images_returns_the_test_images_sealed(tmp_dir):
    _write_fake_cifar(tmp_dir)
    X_train, y_train, test = load_cifar10_images(tmp_dir, download=False)
    assert X_train.shape == (100, 32, 32, 3) and isinstance(test, SealedTest) and test.shape == (20, 32, 32, 3)
    assert "sealed" in repr(test)


def test_sealed_test_map_and_head_keep_it_sealed_and_the_labels_with_it():
    X, y = np.arange(12.0).reshape(4, 3), np.array([3, 1, 2, 0])
    test = SealedTest(X, y)
    y[0] = 9                                                  # the caller's array is not the sealed one
    doubled = test.map(lambda A: 2 * A)
    assert isinstance(doubled, SealedTest) and doubled.shape == (4, 3)
    np.testing.assert_array_equal(doubled._open()[0], 2 * X)
    np.testing.assert_array_equal(doubled._open()[1], [3, 1, 2, 0])
    first = test.head(2)
    np.testing.assert_array_equal(first._open()[0], X[:2])
    np.testing.assert_array_equal(first._open()[1], [3, 1])
    with pytest.raises(ValueError, match="'fn' parameter must return one row per test image, shape \\(4, ...\\). "
                                         "Got a float64 array of shape \\(3, 3\\) instead"):
        test.map(lambda A: A[:3])
    with pytest.raises(TypeError, match="'fn' parameter must be callable"):
        test.map(None)
    with pytest.raises(ValueError, match="'num_test' parameter must be at most 4. Got 5 instead"):
        test.head(5)


@pytest.mark.parametrize("X,y,error,words", [
    (np.zeros((3, 2)), np.zeros(2, np.int64), ValueError, "one label per image, 3. Got 2 labels"),
    (np.zeros((3, 2)), np.zeros(3), TypeError, "'y' parameter of SealedTest must be a 1-D integer"),
    (np.zeros((3, 2)), np.zeros((3, 1), np.int64), TypeError, "'y' parameter of SealedTest must be a 1-D integer"),
    ([[0, 0]] * 3, np.zeros(3, np.int64), TypeError, "'X' parameter of SealedTest must be an array"),
])
def test_sealed_test_checks_what_it_seals(X, y, error, words):
    with pytest.raises(error, match=words):
        SealedTest(X, y)


def test_split_needs_a_sealed_test_split():
    X, y = np.zeros((4, 3)), np.zeros(4, np.int64)
    with pytest.raises(TypeError, match="The 'test' parameter of CIFAR10Split must be a SealedTest.*Got a float64 "
                                        "array of shape \\(0, 3\\) instead"):
        aml.data.CIFAR10Split(X, y, X, y, X[:0], y[:0], None)
    d = aml.data.CIFAR10Split(X, y, X, y, SealedTest(X[:0], y[:0]))
    assert d.X_sel.shape == (0, 3) and d.y_sel.shape == (0,) and d.mean_image is None


def test_test_images_for_display_only_after_a_ledgered_evaluation(tmp_dir, monkeypatch, whole):
    monkeypatch.setenv("AML_OUTPUT_DIR", str(tmp_dir / "out"))
    monkeypatch.setattr(ledger, "current_commit", lambda: "unknown")
    _write_fake_cifar(tmp_dir)
    d = load_cifar10(tmp_dir, num_training=70, num_validation=10, num_test=15, download=False)
    with pytest.raises(TypeError, match="'evaluation' parameter must be the TestEvaluation"):
        test_images_for_display(d.test, tmp_dir)
    result = ledger.evaluate_on_test("q3b", {}, 0, lambda X: np.zeros(len(X), np.int64), d.test, smoke=True)
    images = test_images_for_display(result, tmp_dir)
    assert images.shape == (15, 32, 32, 3) and images.dtype == np.uint8
    np.testing.assert_array_equal(images[:, 0, 0, 0], np.arange(100, 115))    # the evaluated images, in order
    np.testing.assert_array_equal(result.labels, np.arange(100, 115) % 10)
    other = ledger.evaluate_on_test("q3b", {}, 0, lambda X: np.zeros(len(X), np.int64),
                                    SealedTest(np.zeros((3, 1)), np.array([9, 9, 9])), smoke=True)
    with pytest.raises(ValueError, match=whole(f"The 'evaluation' parameter must be an evaluation on the first 3 "
                                               f"test images of {tmp_dir / 'cifar-10-batches-py'}. Got labels that "
                                               "differ from theirs instead.")):
        test_images_for_display(other, tmp_dir)


# The selection split: carved out of the training images, stratified, seeded
def test_selection_indices_are_stratified_sorted_and_distinct():
    labels = np.random.default_rng(1).integers(0, 10, 500)
    idx = selection_indices(labels, 60, seed=3)
    assert idx.dtype == np.int64 and idx.shape == (60,)
    assert np.all(np.diff(idx) > 0)                                    # sorted, no index twice
    assert np.bincount(labels[idx], minlength=10).tolist() == [6] * 10
    assert selection_indices(labels, 0).shape == (0,)


def test_selection_indices_depend_only_on_labels_size_and_seed():
    labels = np.tile(np.arange(10), 30)
    a = selection_indices(labels, 50, seed=0)
    np.testing.assert_array_equal(a, selection_indices(labels.copy(), 50, seed=0))
    assert not np.array_equal(a, selection_indices(labels, 50, seed=1))
    # the draw is numpy's default_rng(seed): class c's indices, one choice per class in class order
    rng = np.random.default_rng(0)
    expected = np.sort(np.concatenate([rng.choice(np.flatnonzero(labels == c), 5, replace=False) for c in range(10)]))
    np.testing.assert_array_equal(a, expected)


@pytest.mark.parametrize("labels,num,seed,error,words", [
    (np.tile(np.arange(10), 3), 25, 0, ValueError, "'num_selection' parameter must be a multiple of the number of "
                                                   "classes, 10, so that every class gives as many images. Got 25"),
    (np.tile(np.arange(10), 3), -10, 0, ValueError, "'num_selection' parameter must be an int >= 0. Got -10"),
    (np.tile(np.arange(10), 3), 10.0, 0, TypeError, "'num_selection'"),
    (np.tile(np.arange(10), 3), 40, 0, ValueError, "at least 4 images of each class for num_selection=40. Got 3 "
                                                   "of class 0 \\(airplane\\)"),
    (np.r_[np.tile(np.arange(10), 3), 10], 10, 0, ValueError, "'labels' parameter must hold labels in \\[0, 10\\)"),
    (np.zeros(30), 10, 0, TypeError, "'labels' parameter must be a 1-D integer"),
    (np.tile(np.arange(10), 3), 10, -1, ValueError, "'seed'"),
])
def test_selection_indices_check_their_arguments(labels, num, seed, error, words):
    with pytest.raises(error, match=words):
        selection_indices(labels, num, seed=seed)


def test_split_indices_are_disjoint_and_cover_the_first_images():
    labels = np.tile(np.arange(10), 12)
    train, sel, val = split_indices(labels, num_training=100, num_validation=15, num_selection=30)
    assert len(train) == 70 and len(sel) == 30 and len(val) == 15
    np.testing.assert_array_equal(np.sort(np.r_[train, sel]), np.arange(100))   # disjoint, and all of the first 100
    np.testing.assert_array_equal(val, np.arange(100, 115))
    assert np.all(np.diff(train) > 0)                                          # training rows keep their order
    np.testing.assert_array_equal(sel, selection_indices(labels[:100], 30, seed=0))
    with pytest.raises(ValueError, match="'num_selection' parameter must be below num_training \\(100\\)"):
        split_indices(labels, num_training=100, num_validation=0, num_selection=100)


def test_load_cifar10_carves_the_selection_split_out_of_the_training_images(tmp_dir):
    _write_fake_cifar(tmp_dir)          # pixel (0, 0, red) of image i holds i; labels i % 10
    d = load_cifar10(tmp_dir, num_training=80, num_validation=10, num_test=5, num_selection=20, download=False)
    assert d.X_train.shape == (60, 3072) and d.X_sel.shape == (20, 3072) and d.X_val.shape == (10, 3072)
    assert repr(d) == ("CIFAR10Split(train=(60, 3072), selection=(20, 3072), val=(10, 3072), test=(5, 3072) sealed, "
                       "dtype=float32)")
    raw = load_cifar10(tmp_dir, num_training=80, num_validation=10, num_test=5, num_selection=20,
                       subtract_mean=False, download=False)
    train_ids, sel_ids, val_ids = (raw.X_train[:, 0].astype(int), raw.X_sel[:, 0].astype(int),
                                   raw.X_val[:, 0].astype(int))
    np.testing.assert_array_equal(sel_ids, selection_indices(np.arange(80) % 10, 20, seed=0))
    np.testing.assert_array_equal(np.sort(np.r_[train_ids, sel_ids]), np.arange(80))   # disjoint from train
    np.testing.assert_array_equal(val_ids, np.arange(80, 90))                          # and from validation
    np.testing.assert_array_equal(raw.y_sel, sel_ids % 10)
    np.testing.assert_array_equal(raw.y_train, train_ids % 10)
    assert np.bincount(raw.y_sel).tolist() == [2] * 10
    # the mean is that of the remaining 60 training rows only, and it is subtracted from every split
    expected = (raw.X_train.astype(np.float64).sum(axis=0) / 60).astype(np.float32)
    np.testing.assert_array_equal(d.mean_image, expected)
    np.testing.assert_array_equal(d.X_sel, raw.X_sel - expected)
    np.testing.assert_array_equal(d.X_train, raw.X_train - expected)
    np.testing.assert_array_equal(d.test._open()[0], raw.test._open()[0] - expected)
    again = load_cifar10(tmp_dir, num_training=80, num_validation=10, num_test=5, num_selection=20, download=False)
    np.testing.assert_array_equal(again.X_sel, d.X_sel)                                 # the same every time


@pytest.mark.parametrize("num_selection,error,words", [
    (15, ValueError, "'num_selection' parameter must be a multiple of the number of classes"),
    (-10, ValueError, "'num_selection' parameter must be an int >= 0"),
    (True, TypeError, "'num_selection'"),
    (50, ValueError, "'num_selection' parameter must be below num_training \\(50\\)"),
])
def test_load_cifar10_checks_num_selection(tmp_dir, num_selection, error, words):
    _write_fake_cifar(tmp_dir)
    with pytest.raises(error, match=words):
        load_cifar10(tmp_dir, num_training=50, num_validation=10, num_selection=num_selection, download=False)
