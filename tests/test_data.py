import os
import pickle
from pathlib import Path

import numpy as np
import pytest

import aml.data
from aml import load_cifar10
from aml.data import TEST_FILE, TRAIN_FILES, data_root, ensure_cifar10, load_cifar10_images
from aml.flips import hflip_images


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

    centred = load_cifar10(tmp_path, num_training=70, num_validation=10, num_test=15, download=False)
    np.testing.assert_allclose(centred.X_train.mean(axis=0), 0, atol=1e-3)
    np.testing.assert_allclose(centred.X_val + centred.mean_image, d.X_val, atol=1e-3)


def test_root_from_environment(tmp_path, monkeypatch):
    _write_fake_cifar(tmp_path)
    monkeypatch.setenv("AML_DATA_DIR", str(tmp_path))
    assert data_root() == tmp_path.resolve()
    assert load_cifar10(num_training=50, num_validation=50, num_test=20, download=False).X_train.shape == (50, 3072)


def test_missing_folder_offline_says_where(tmp_path):
    with pytest.raises(FileNotFoundError, match="AML_DATA_DIR"):
        load_cifar10(tmp_path / "nowhere", download=False)


def test_failed_download_says_where(tmp_path, monkeypatch):
    import aml.data

    def offline(root=None):
        raise OSError("network is unreachable")
    monkeypatch.setattr(aml.data, "download_cifar10", offline)
    with pytest.raises(FileNotFoundError, match="AML_DATA_DIR.*|download"):
        load_cifar10(tmp_path)


def test_truncated_batch_names_the_file(tmp_path):
    folder = _write_fake_cifar(tmp_path)
    raw = (folder / "data_batch_3").read_bytes()
    (folder / "data_batch_3").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match="data_batch_3.*truncated or corrupted"):
        load_cifar10_images(tmp_path, download=False)


@pytest.mark.parametrize("kwargs,words", [
    (dict(num_training=0), "'num_training'"),
    (dict(num_test=-1), "'num_test'"),
    (dict(num_training=90, num_validation=20), "num_training \\+ num_validation"),
    (dict(num_training=50, num_validation=10, num_test=21), "'num_test'"),
])
def test_bad_split_sizes(tmp_path, kwargs, words):
    _write_fake_cifar(tmp_path)
    with pytest.raises(ValueError, match=words):
        load_cifar10(tmp_path, download=False, **kwargs)


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


def test_batch_copied_over_another_is_refused(tmp_path):
    folder = _write_fake_cifar(tmp_path)
    (folder / TEST_FILE).write_bytes((folder / "data_batch_2").read_bytes())
    with pytest.raises(ValueError, match="data_batch_2 and test_batch .*hold the same images"):
        load_cifar10_images(tmp_path, download=False)


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


def test_download_into_a_read_only_folder(tmp_path, monkeypatch):
    ro = tmp_path / "ro"
    ro.mkdir(mode=0o500)
    if hasattr(os, "geteuid") and os.geteuid() == 0:   # root may write anywhere: answer as for a user
        monkeypatch.setattr(os, "access", lambda path, mode: Path(path) != ro)
    try:
        with pytest.raises(FileNotFoundError, match="ro is not writable"):
            ensure_cifar10(ro / "a" / "b")
        assert not (ro / "a").exists()
    finally:
        ro.chmod(0o700)


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
