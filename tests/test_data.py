import os
import pickle
import re
import struct

import numpy as np
import pytest

import aml.data
from aml import load_cifar10
from aml.data import TEST_FILE, TRAIN_FILES, data_root, ensure_cifar10, load_cifar10_images
from aml.flips import hflip_images
from aml.runs import REPO_ROOT

OFFICIAL_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"


@pytest.fixture
def tmp_path(tmp_path):
    """pytest's tmp_path with its symlinks resolved, as data_root() resolves them (macOS: /tmp -> /private/tmp),
    so that the paths in the expected messages are the ones the loader prints."""
    return tmp_path.resolve()


@pytest.fixture(autouse=True)
def _isolated_default_root(tmp_path_factory, monkeypatch):
    """An empty AML_DATA_DIR of its own for each test (the tests that need another set it themselves): code
    that loses its root argument must not find, or write into, the shared data folder."""
    monkeypatch.setenv("AML_DATA_DIR", str(tmp_path_factory.mktemp("default-root")))


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


def test_split_order_layout_and_mean(tmp_path):
    _write_fake_cifar(tmp_path)
    d = load_cifar10(tmp_path, num_training=70, num_validation=10, num_test=15, subtract_mean=False,
                     download=False)
    assert d.X_train.shape == (70, 3072) and d.X_val.shape == (10, 3072) and d.X_test.shape == (15, 3072)
    assert d.X_train.dtype == np.float32 and d.y_train.dtype == np.int64
    # HWC order: the first three values are pixel (0, 0)'s red, green, blue
    np.testing.assert_array_equal(d.X_train[:, 0], np.arange(70))
    np.testing.assert_array_equal(d.X_train[:, 1], 200)
    np.testing.assert_array_equal(d.X_val[:, 0], np.arange(70, 80))       # the next images
    np.testing.assert_array_equal(d.X_test[:, 0], np.arange(100, 115))    # the first test images
    np.testing.assert_array_equal(d.y_val, np.arange(70, 80) % 10)
    assert d.mean_image is None

    centred = load_cifar10(tmp_path, num_training=70, num_validation=10, num_test=15, download=False)
    # the mean of the 70 training images, computed exactly and rounded once to float32
    expected = (d.X_train.astype(np.float64).sum(axis=0) / 70).astype(np.float32)
    assert centred.mean_image.dtype == np.float32 and centred.mean_image.shape == (3072,)
    np.testing.assert_array_equal(centred.mean_image, expected)
    for X, X_raw in ((centred.X_train, d.X_train), (centred.X_val, d.X_val), (centred.X_test, d.X_test)):
        np.testing.assert_array_equal(X, X_raw - expected)
    np.testing.assert_allclose(centred.X_train.mean(axis=0), 0, atol=1e-3)


def test_root_from_environment(tmp_path, monkeypatch):
    _write_fake_cifar(tmp_path)
    monkeypatch.setenv("AML_DATA_DIR", str(tmp_path))
    assert data_root() == tmp_path.resolve()
    assert load_cifar10(num_training=50, num_validation=50, num_test=20, download=False).X_train.shape == (50, 3072)


def _whole(message):
    """A ``match`` pattern that accepts ``message`` and nothing else."""
    return f"^{re.escape(str(message))}$"


def test_missing_folder_offline_says_where(tmp_path, monkeypatch):
    def no_download(*args):
        raise AssertionError("download=False must not download")
    monkeypatch.setattr(aml.data, "_download", no_download)
    root = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError, match=_whole(
            f"CIFAR-10 not found: {root / 'cifar-10-batches-py'} lacks data_batch_1, data_batch_2, data_batch_3, "
            f"data_batch_4, data_batch_5, test_batch. Put the extracted 'cifar-10-batches-py' folder of "
            f"{OFFICIAL_URL} under {root}, or set AML_DATA_DIR to the folder that holds it "
            "(e.g. AML_DATA_DIR=../shared/data). Or pass download=True.")):
        load_cifar10(root, download=False)
    assert not root.exists()


def test_failed_download_says_where(tmp_path, monkeypatch):
    def offline(root=None):
        raise OSError("network is unreachable")
    monkeypatch.setattr(aml.data, "download_cifar10", offline)
    with pytest.raises(FileNotFoundError, match=_whole(
            f"CIFAR-10 not found in {tmp_path / 'cifar-10-batches-py'}, and downloading it failed: "
            "network is unreachable")) as e:
        load_cifar10(tmp_path)
    assert isinstance(e.value.__cause__, OSError)


def test_truncated_batch_names_the_file(tmp_path):
    folder = _write_fake_cifar(tmp_path)
    raw = (folder / "data_batch_3").read_bytes()
    (folder / "data_batch_3").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match="data_batch_3.*truncated or corrupted"):
        load_cifar10_images(tmp_path, download=False)


@pytest.mark.parametrize("kwargs,words", [
    (dict(num_training=0), "'num_training'"),
    (dict(num_validation=-1), "The 'num_validation' parameter must be an int >= 0. Got -1 instead."),
    (dict(num_test=-1), "'num_test'"),
    (dict(num_training=90, num_validation=20), "num_training \\+ num_validation"),
    (dict(num_training=50, num_validation=10, num_test=21), "'num_test'"),
])
def test_bad_split_sizes(tmp_path, kwargs, words):
    _write_fake_cifar(tmp_path)
    with pytest.raises(ValueError, match=words):
        load_cifar10(tmp_path, download=False, **kwargs)


def test_default_split_is_the_handouts_49000_1000_1000(tmp_path, monkeypatch):
    _write_fake_cifar(tmp_path)       # 100 training images: the default split does not fit
    with pytest.raises(ValueError, match=_whole(
            "num_training + num_validation must be at most 100. Got 49000 + 1000 instead.")):
        load_cifar10(tmp_path, download=False)

    def images(root=None, *, download=True):   # all 50,000 training images (one, broadcast), 999 test images
        X = np.broadcast_to(np.zeros((1, 32, 32, 3), np.uint8), (50000, 32, 32, 3))
        y = np.zeros(50000, np.int64)
        return X, y, X[:999], y[:999]
    monkeypatch.setattr(aml.data, "load_cifar10_images", images)
    with pytest.raises(ValueError, match=_whole("The 'num_test' parameter must be at most 999. Got 1000 instead.")):
        load_cifar10(tmp_path)


def test_mean_image_is_rounded_once_to_the_dtype(monkeypatch):
    # 683 / 8195 lies just below the midpoint of two float16 numbers: the exact mean rounds down, but a
    # float32 quotient (NumPy's own accumulator for float16) rounds onto the midpoint and then up.
    num_training = 8195
    X = np.zeros((num_training + 1, 32, 32, 3), np.uint8)
    X[:2, 0, 0, 0], X[2, 0, 0, 0], X[num_training, 0, 0, 0] = 255, 173, 1
    y = np.zeros(num_training + 1, np.int64)
    monkeypatch.setattr(aml.data, "load_cifar10_images", lambda root=None, *, download=True: (X, y, X[:1], y[:1]))
    d = load_cifar10(num_training=num_training, num_validation=1, num_test=1, dtype=np.float16)
    mean = np.float16(683 / 8195)
    assert d.mean_image.dtype == np.float16 and float(mean) == 0.08331298828125
    np.testing.assert_array_equal(d.mean_image, np.r_[mean, np.zeros(3071, np.float16)])
    assert d.X_val[0, 0] == np.float16(1) - mean and d.X_train[2, 0] == np.float16(173) - mean


# Case 3: empty validation or test splits, and the other legal edge values
@pytest.mark.parametrize("subtract_mean", [True, False])
def test_empty_validation_and_test_splits(tmp_path, subtract_mean):
    _write_fake_cifar(tmp_path)
    d = load_cifar10(tmp_path, num_training=100, num_validation=0, num_test=0, subtract_mean=subtract_mean,
                     download=False, dtype=np.float64)
    assert d.X_train.shape == (100, 3072) and d.X_val.shape == (0, 3072) and d.X_test.shape == (0, 3072)
    assert d.X_val.dtype == d.X_test.dtype == np.float64
    assert d.y_val.shape == d.y_test.shape == (0,) and d.y_val.dtype == d.y_test.dtype == np.int64


def test_largest_legal_split_sizes(tmp_path):
    _write_fake_cifar(tmp_path)
    d = load_cifar10(tmp_path, num_training=1, num_validation=99, num_test=20, download=False)
    assert d.X_train.shape == (1, 3072) and d.X_val.shape == (99, 3072) and d.X_test.shape == (20, 3072)
    np.testing.assert_array_equal(d.X_train, 0)      # one image minus its own mean


@pytest.mark.parametrize("dtype", [np.uint8, "int64", "no such dtype"])
def test_dtype_must_be_floating(tmp_path, dtype):      # case 7: uint8 would wrap when the mean is subtracted
    _write_fake_cifar(tmp_path)
    with pytest.raises(TypeError, match="'dtype' parameter must be a floating dtype.*Got"):
        load_cifar10(tmp_path, num_training=50, download=False, dtype=dtype)


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
def test_bad_batch_contents_name_the_file(tmp_path, entries, words):
    folder = _write_fake_cifar(tmp_path)
    _rewrite_batch(folder, entries)
    with pytest.raises(ValueError, match=words) as e:
        load_cifar10_images(tmp_path, download=False)
    assert "data_batch_2" in str(e.value)


@pytest.mark.parametrize("batch,words", [
    ([1, 2, 3], "must hold a dict with 'data' and 'labels' entries. Got list instead"),
    ({b"data": np.zeros((20, 3072), np.uint8)}, "must hold a dict.*Got keys \\[\"b'data'\"\\]"),
    ({b"labels": [0] * 20}, "must hold a dict.*Got keys \\[\"b'labels'\"\\]"),
])
def test_batch_must_be_a_dict_with_data_and_labels(tmp_path, batch, words):
    folder = _write_fake_cifar(tmp_path)
    _dump(folder / "data_batch_2", batch)
    with pytest.raises(ValueError, match=f"data_batch_2 {words}"):
        load_cifar10_images(tmp_path, download=False)


def test_str_keys_and_integer_array_labels_are_accepted(tmp_path):
    folder = _write_fake_cifar(tmp_path)
    batch = pickle.loads((folder / "data_batch_2").read_bytes())
    _dump(folder / "data_batch_2", {"data": batch[b"data"], "labels": np.asarray(batch[b"labels"], np.uint8)})
    X_train, y_train, _, _ = load_cifar10_images(tmp_path, download=False)
    assert X_train.shape == (100, 32, 32, 3) and y_train.dtype == np.int64
    np.testing.assert_array_equal(y_train, np.arange(100) % 10)


@pytest.mark.parametrize("dtype", [np.uint8, np.int32])
def test_integer_array_labels_come_back_as_int64(tmp_path, dtype):
    folder = _write_fake_cifar(tmp_path)
    _rewrite_batch(folder, {b"labels": np.arange(100, 120, dtype=dtype) % 10}, name=TEST_FILE)
    _, _, _, y_test = load_cifar10_images(tmp_path, download=False)
    assert y_test.dtype == np.int64
    np.testing.assert_array_equal(y_test, np.arange(100, 120) % 10)


def test_batches_of_one_image_are_accepted(tmp_path):
    _write_fake_cifar(tmp_path, per_batch=1)
    X_train, y_train, X_test, y_test = load_cifar10_images(tmp_path, download=False)
    assert X_train.shape == (5, 32, 32, 3) and X_test.shape == (1, 32, 32, 3)
    np.testing.assert_array_equal(X_train[:, 0, 0, 0], np.arange(5))
    assert X_test[0, 0, 0, 0] == 5 and y_train.tolist() == [0, 1, 2, 3, 4] and y_test.tolist() == [5]


def test_error_lists_at_most_ten_keys_of_a_batch_without_data(tmp_path):
    folder = _write_fake_cifar(tmp_path)
    _dump(folder / "data_batch_2", {f"k{i:02d}".encode(): i for i in range(12)})
    first_ten = [f"b'k{i:02d}'" for i in range(10)]
    with pytest.raises(ValueError, match=_whole(
            f"The CIFAR-10 batch file {folder / 'data_batch_2'} must hold a dict with 'data' and 'labels' "
            f"entries. Got keys {first_ten} instead.")):
        load_cifar10_images(tmp_path, download=False)


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


def test_python2_batch_files_load(tmp_path):    # the official files were written by Python 2
    folder = _write_fake_cifar(tmp_path)
    data = np.arange(20 * 3072).reshape(20, 3072).astype(np.uint8)    # every byte value, 128-255 included
    data[:, 0] = 255 - np.arange(20)
    (folder / TEST_FILE).write_bytes(_python2_batch(data, [9 - i % 10 for i in range(20)]))
    _, _, X_test, y_test = load_cifar10_images(tmp_path, download=False)
    np.testing.assert_array_equal(X_test, data.reshape(20, 3, 32, 32).transpose(0, 2, 3, 1))
    assert y_test.dtype == np.int64 and y_test.tolist() == [9 - i % 10 for i in range(20)]


# Case 7: a directory or a FIFO where a batch file is expected, a batch copied over another
@pytest.mark.parametrize("make", ["directory", "fifo"])
def test_batch_that_is_not_a_regular_file(tmp_path, make):
    folder = _write_fake_cifar(tmp_path)
    (folder / TEST_FILE).unlink()
    if make == "directory":
        (folder / TEST_FILE).mkdir()
    elif hasattr(os, "mkfifo"):
        os.mkfifo(folder / TEST_FILE)            # opening it would block forever
    else:
        pytest.skip("no FIFOs on this system")
    with pytest.raises(FileNotFoundError, match="lacks test_batch \\(not a regular file\\)"):
        load_cifar10_images(tmp_path, download=False)


@pytest.mark.parametrize("source,target", [("data_batch_2", TEST_FILE), ("data_batch_1", "data_batch_2"),
                                           ("data_batch_5", TEST_FILE)])
def test_batch_copied_over_another_is_refused(tmp_path, source, target):
    folder = _write_fake_cifar(tmp_path)
    (folder / target).write_bytes((folder / source).read_bytes())
    with pytest.raises(ValueError, match=_whole(
            f"The CIFAR-10 batch files {source} and {target} in {folder} hold the same images; one was copied "
            "over the other. Delete the folder and download the dataset again.")):
        load_cifar10_images(tmp_path, download=False)


def test_batches_that_share_only_their_first_image_are_distinct(tmp_path):
    folder = _write_fake_cifar(tmp_path)
    first = pickle.loads((folder / "data_batch_1").read_bytes())[b"data"][0]
    data = pickle.loads((folder / "data_batch_2").read_bytes())[b"data"]
    data[0] = first
    _rewrite_batch(folder, {b"data": data})
    X_train, _, _, _ = load_cifar10_images(tmp_path, download=False)
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


# Case 5: a relative AML_DATA_DIR is resolved against the working directory of the call
def test_relative_data_dir_is_resolved(tmp_path, monkeypatch):
    (tmp_path / "work").mkdir()
    _write_fake_cifar(tmp_path / "shared")
    monkeypatch.chdir(tmp_path / "work")
    monkeypatch.setenv("AML_DATA_DIR", "../shared/./")
    assert data_root() == (tmp_path / "shared").resolve()
    assert data_root().is_absolute() and ".." not in data_root().parts
    assert data_root("rel") == (tmp_path / "work" / "rel").resolve()
    assert load_cifar10(num_training=50, num_validation=5, num_test=5, download=False).X_test.shape == (5, 3072)


# Case 6: a bad root fails before any folder is created, and a failed download leaves none behind
def test_download_into_a_root_under_a_regular_file(tmp_path):
    (tmp_path / "file.txt").write_text("not a folder")
    root = tmp_path / "file.txt" / "a" / "b"
    with pytest.raises(FileNotFoundError, match="file.txt is not a directory.*AML_DATA_DIR"):
        load_cifar10(root)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.txt"]


def _access_as_owner(path, mode):
    """``os.access`` for the folder's owner who is not root: the owner's permission bits decide."""
    return mode & ~(os.stat(path).st_mode >> 6) & 0o7 == 0


@pytest.mark.parametrize("mode", [0o500, 0o600])     # not writable; writable but not searchable
def test_download_into_a_read_only_folder(tmp_path, monkeypatch, mode):
    def offline(url, dest, root):
        raise ConnectionError(f"Could not download {url}")
    monkeypatch.setattr(aml.data, "_download", offline)
    ro = tmp_path / "ro"
    ro.mkdir(mode=mode)
    if hasattr(os, "geteuid") and os.geteuid() == 0:   # root may write anywhere: answer as for a user
        monkeypatch.setattr(os, "access", _access_as_owner)
    root = ro / "a" / "b"
    try:
        with pytest.raises(FileNotFoundError, match=_whole(
                f"CIFAR-10 not found in {root / 'cifar-10-batches-py'}, and downloading it failed: The data root "
                f"must be a writable folder, or creatable inside one. Got {root} instead: {ro} is not writable. "
                "Set AML_DATA_DIR to a writable folder.")):
            ensure_cifar10(root)
    finally:
        ro.chmod(0o700)
    assert not (ro / "a").exists()


def test_failed_download_removes_the_folders_it_created(tmp_path, monkeypatch):
    def offline(url, dest, root):
        raise ConnectionError(f"Could not download {url}")
    monkeypatch.setattr(aml.data, "_download", offline)
    (tmp_path / "keep").mkdir()
    with pytest.raises(FileNotFoundError, match="Could not download"):
        ensure_cifar10(tmp_path / "keep" / "a" / "b")
    assert list(tmp_path.iterdir()) == [tmp_path / "keep"] and not any((tmp_path / "keep").iterdir())


def test_hflip_images_is_an_involution():
    X = np.random.default_rng(0).standard_normal((3, 3072))
    np.testing.assert_array_equal(hflip_images(hflip_images(X)), X)
    np.testing.assert_array_equal(hflip_images(X).reshape(3, 32, 32, 3)[:, :, 0], X.reshape(3, 32, 32, 3)[:, :, 31])
