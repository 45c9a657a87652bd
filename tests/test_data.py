import pickle

import numpy as np
import pytest

from aml import load_cifar10
from aml.data import TEST_FILE, TRAIN_FILES, data_root, hflip_images, load_cifar10_images


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
        with open(folder / name, "wb") as f:
            pickle.dump({b"data": data, b"labels": labels, b"batch_label": name.encode()}, f)
    return folder


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
    assert data_root() == tmp_path
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


def test_hflip_images_is_an_involution():
    X = np.random.default_rng(0).standard_normal((3, 3072))
    np.testing.assert_array_equal(hflip_images(hflip_images(X)), X)
    np.testing.assert_array_equal(hflip_images(X).reshape(3, 32, 32, 3)[:, :, 0], X.reshape(3, 32, 32, 3)[:, :, 31])
