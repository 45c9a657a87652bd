"""The CIFAR-10 loader: the handout's split, the selection split, the sealed test split, the data root and
batch contents that are wrong. (Hostile files, paths and downloads: tests/test_data_security.py.)"""
import pickle
import struct

import numpy as np
import pytest

import aml.data
from aml import load_cifar10
from aml.data import (
    TEST_FILE,
    TRAIN_FILES,
    CIFAR10Split,
    SealedTest,
    data_root,
    load_cifar10_images,
    selection_indices,
    split_indices,
)
from aml.runs import checkout

pytestmark = pytest.mark.usefixtures("isolated_data_dir")


def write_fake_cifar(root, per_batch=20, protocol=4):
    """CIFAR-format batches; pixel (0, 0) red of image i holds i, green 200; labels i % 10."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for b, name in enumerate((*TRAIN_FILES, TEST_FILE)):
        data = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
        data[:, 0], data[:, 1024] = b * per_batch + np.arange(per_batch), 200
        labels = [int(i % 10) for i in range(b * per_batch, (b + 1) * per_batch)]
        (folder / name).write_bytes(pickle.dumps({b"data": data, b"labels": labels}, protocol=protocol))
    return folder


def test_split_order_layout_and_mean(tmp_dir):
    write_fake_cifar(tmp_dir)
    d = load_cifar10(tmp_dir, num_training=70, num_validation=10, num_test=15, subtract_mean=False, download=False)
    X_test, y_test = d.test._open()
    assert d.X_train.shape == (70, 3072) and d.X_val.shape == (10, 3072) and X_test.shape == (15, 3072)
    assert d.X_sel.shape == (0, 3072) and d.y_sel.shape == (0,) and d.mean_image is None
    assert d.X_train.dtype == np.float32 and d.y_train.dtype == np.int64
    np.testing.assert_array_equal(d.X_train[:, 0], np.arange(70))         # HWC: pixel (0, 0)'s red, green
    np.testing.assert_array_equal(d.X_train[:, 1], 200)
    np.testing.assert_array_equal(d.X_val[:, 0], np.arange(70, 80))       # the next images
    np.testing.assert_array_equal(X_test[:, 0], np.arange(100, 115))      # the first test images
    np.testing.assert_array_equal(y_test, np.arange(100, 115) % 10)
    centred = load_cifar10(tmp_dir, num_training=70, num_validation=10, num_test=15, download=False)
    expected = (d.X_train.astype(np.float64).sum(axis=0) / 70).astype(np.float32)   # exact, rounded once
    np.testing.assert_array_equal(centred.mean_image, expected)
    for X, X_raw in ((centred.X_train, d.X_train), (centred.X_val, d.X_val), (centred.test._open()[0], X_test)):
        np.testing.assert_array_equal(X, X_raw - expected)


def test_selection_split_is_carved_out_of_the_training_images(tmp_dir):
    write_fake_cifar(tmp_dir)
    raw = load_cifar10(tmp_dir, num_training=80, num_validation=10, num_test=5, num_selection=20,
                       subtract_mean=False, download=False)
    train_ids, sel_ids = raw.X_train[:, 0].astype(int), raw.X_sel[:, 0].astype(int)
    np.testing.assert_array_equal(sel_ids, selection_indices(np.arange(80) % 10, 20, seed=0))
    np.testing.assert_array_equal(np.sort(np.r_[train_ids, sel_ids]), np.arange(80))
    np.testing.assert_array_equal(raw.X_val[:, 0], np.arange(80, 90))
    np.testing.assert_array_equal(raw.y_sel, sel_ids % 10)
    d = load_cifar10(tmp_dir, num_training=80, num_validation=10, num_test=5, num_selection=20, download=False)
    np.testing.assert_array_equal(d.mean_image, raw.X_train.mean(axis=0, dtype=np.float64).astype(np.float32))
    np.testing.assert_array_equal(d.X_sel, raw.X_sel - d.mean_image)
    assert repr(d) == "CIFAR10Split(train=(60, 3072), selection=(20, 3072), val=(10, 3072), test=(5, 3072) sealed)"


@pytest.mark.parametrize("kwargs,error,words", [
    (dict(num_training=0), ValueError, "'num_training' parameter must be a positive int. Got 0"),
    (dict(num_validation=-1), ValueError, "'num_validation' parameter must be an int >= 0. Got -1"),
    (dict(num_test=-1), ValueError, "'num_test'"),
    (dict(num_training=90, num_validation=20), ValueError, "num_training \\+ num_validation must be at most 100"),
    (dict(num_test=21), ValueError, "'num_test' parameter must be at most 20. Got 21"),
    (dict(num_selection=50), ValueError, "'num_selection' parameter must be below num_training \\(50\\), so that the "
                                         "training split is not empty. Got 50"),
    (dict(num_selection=15), ValueError, "'num_selection' parameter must be a multiple of 10"),
    (dict(num_selection=True), TypeError, "'num_selection'"),
    (dict(dtype=np.uint8), TypeError, "'dtype' parameter must be a floating dtype"),
    (dict(dtype="no such dtype"), TypeError, "'dtype' parameter must be a floating dtype"),
    (dict(dtype=None), TypeError, "'dtype' parameter must be a floating dtype"),
])
def test_bad_split_arguments_are_named(tmp_dir, kwargs, error, words):
    write_fake_cifar(tmp_dir)
    with pytest.raises(error, match=words):
        load_cifar10(tmp_dir, download=False, **({"num_training": 50, "num_validation": 10} | kwargs))


def test_empty_validation_and_test_splits_are_allowed(tmp_dir):
    write_fake_cifar(tmp_dir)
    d = load_cifar10(tmp_dir, num_training=100, num_validation=0, num_test=0, download=False, dtype=np.float64)
    assert d.X_val.shape == (0, 3072) and d.test.shape == (0, 3072) and d.X_val.dtype == np.float64


def test_default_split_is_the_handouts(monkeypatch):
    X = np.broadcast_to(np.zeros((1, 32, 32, 3), np.uint8), (50000, 32, 32, 3))
    y = np.arange(50000) % 10
    monkeypatch.setattr(aml.data, "load_cifar10_images",
                        lambda root, download: (X, y, SealedTest(X[:10000], y[:10000])))
    d = load_cifar10()
    assert (len(d.X_train), len(d.X_val), len(d.test), len(d.X_sel)) == (49000, 1000, 1000, 0)


def _rewrite(folder, entries, name="data_batch_2"):
    batch = pickle.loads((folder / name).read_bytes())
    (folder / name).write_bytes(pickle.dumps({**batch, **entries}, protocol=4))


@pytest.mark.parametrize("entries,words", [
    ({b"data": None}, "'data' must be a uint8 array of shape \\(n, 3072\\), n >= 1. Got NoneType"),
    ({b"data": np.full((20, 3072), 300.7)}, "Got float64 \\(20, 3072\\)"),
    ({b"data": np.zeros((20, 1024), np.uint8)}, "Got uint8 \\(20, 1024\\)"),
    ({b"data": np.zeros((0, 3072), np.uint8)}, "Got uint8 \\(0, 3072\\)"),
    ({b"labels": [10] * 20}, "'labels' parameter must hold labels in \\[0, 10\\). Got values in \\[10, 10\\]"),
    ({b"labels": np.r_[np.full(19, 9), -1]}, "labels in \\[0, 10\\)"),
    ({b"labels": [3.7] * 20}, "'labels' parameter must be an integer numpy.ndarray"),
    ({b"labels": [True] * 20}, "'labels' parameter must be an integer"),
    ({b"labels": "0123"}, "'labels' parameter must be an integer"),
    ({b"labels": [1] * 19}, "'labels' parameter must have shape \\(20,\\)"),
])
def test_bad_batch_contents_are_refused_naming_the_file(tmp_dir, entries, words):
    folder = write_fake_cifar(tmp_dir)
    _rewrite(folder, entries)
    with pytest.raises(ValueError, match=f"The CIFAR-10 batch file {folder / 'data_batch_2'} is not a valid batch: "
                                         f".*{words}"):
        load_cifar10_images(tmp_dir, download=False)


@pytest.mark.parametrize("batch", [[1, 2, 3], {b"labels": [0] * 20}])
def test_a_batch_that_is_no_dict_of_data_and_labels_is_refused(tmp_dir, batch):
    folder = write_fake_cifar(tmp_dir)
    (folder / TEST_FILE).write_bytes(pickle.dumps(batch))
    with pytest.raises(ValueError, match=f"{folder / TEST_FILE} is not a valid batch"):
        load_cifar10_images(tmp_dir, download=False)


def test_truncated_batch_names_the_file(tmp_dir):
    folder = write_fake_cifar(tmp_dir)
    raw = (folder / "data_batch_3").read_bytes()
    (folder / "data_batch_3").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match="data_batch_3 is not a valid batch"):
        load_cifar10_images(tmp_dir, download=False)


def test_str_keys_and_integer_array_labels_come_back_as_int64(tmp_dir):
    folder = write_fake_cifar(tmp_dir)
    batch = pickle.loads((folder / TEST_FILE).read_bytes())
    labels = np.arange(20, dtype=np.uint8) % 10
    (folder / TEST_FILE).write_bytes(pickle.dumps({"data": batch[b"data"], "labels": labels}))
    y_test = load_cifar10_images(tmp_dir, download=False)[2]._open()[1]
    assert y_test.dtype == np.int64 and y_test.tolist() == [i % 10 for i in range(20)]


def _python2_batch(data, labels):
    """The bytes Python 2's ``cPickle.dump(batch, f, 2)`` writes, as in the official files (keys and pixels: str)."""
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
    folder = write_fake_cifar(tmp_dir)
    data = np.arange(20 * 3072).reshape(20, 3072).astype(np.uint8)
    (folder / TEST_FILE).write_bytes(_python2_batch(data, [9 - i % 10 for i in range(20)]))
    X_test, y_test = load_cifar10_images(tmp_dir, download=False)[2]._open()
    np.testing.assert_array_equal(X_test, data.reshape(20, 3, 32, 32).transpose(0, 2, 3, 1))
    assert y_test.tolist() == [9 - i % 10 for i in range(20)]


def test_batches_re_pickled_with_protocol_5_load(tmp_dir):
    write_fake_cifar(tmp_dir / "p4")
    write_fake_cifar(tmp_dir / "p5", protocol=5)     # NumPy pickles arrays through _frombuffer here
    assert b"_frombuffer" in (tmp_dir / "p5" / "cifar-10-batches-py" / TEST_FILE).read_bytes()
    for a, b in zip(load_cifar10_images(tmp_dir / "p4", download=False)[:2],
                    load_cifar10_images(tmp_dir / "p5", download=False)[:2]):
        np.testing.assert_array_equal(a, b)


def test_root_from_environment_and_default(tmp_dir, monkeypatch):
    monkeypatch.setenv("AML_DATA_DIR", str(tmp_dir))
    assert data_root() == tmp_dir
    for value in (None, ""):                         # unset or empty: the checkout's data/, never the cwd
        monkeypatch.delenv("AML_DATA_DIR") if value is None else monkeypatch.setenv("AML_DATA_DIR", value)
        assert data_root() == checkout() / "data"
    with pytest.raises(TypeError, match="The 'root' parameter must be a non-empty path. Got 123"):
        data_root(123)
    with pytest.raises(TypeError, match="The 'root' parameter must be a non-empty path. Got ''"):
        data_root("")


def test_relative_data_dir_means_the_checkout_s_folder_from_any_working_directory(tmp_dir, monkeypatch):
    repo = tmp_dir / "repo"
    (repo / "aml").mkdir(parents=True)
    (repo / "aml" / "__init__.py").write_text("")
    (repo / "notebooks").mkdir()
    (repo / "tools").mkdir()
    write_fake_cifar(repo / "shared")
    monkeypatch.setenv("AML_DATA_DIR", "shared/./")
    for cwd in (repo, repo / "notebooks", repo / "tools"):     # make report, a notebook's kernel, tools/
        monkeypatch.chdir(cwd)
        assert data_root() == repo / "shared"
    monkeypatch.setenv("AML_DATA_DIR", "../repo/shared")
    assert data_root() == repo / "shared" and ".." not in data_root().parts
    assert load_cifar10(num_training=50, num_validation=5, num_test=5, download=False).test.shape == (5, 3072)
    assert data_root("rel") == repo / "tools" / "rel"           # an argument is the working directory's


def test_the_test_split_is_sealed(tmp_dir):
    write_fake_cifar(tmp_dir)
    d = load_cifar10(tmp_dir, num_training=70, num_validation=10, num_test=15, download=False)
    assert isinstance(d.test, SealedTest) and len(d.test) == 15 and d.test.shape == (15, 3072)
    assert repr(d.test) == "SealedTest(15 images of shape (3072,); evaluate with aml.ledger.evaluate_on_test)"
    assert not hasattr(d, "X_test") and not hasattr(d, "y_test")
    with pytest.raises(TypeError, match="cannot be turned into an array"):
        np.asarray(d.test)
    with pytest.raises(TypeError):
        d.test[0]


def test_sealed_test_copies_its_labels_and_map_keeps_them():
    X, y = np.arange(12.0).reshape(4, 3), np.array([3, 1, 2, 0])
    test = SealedTest(X, y)
    y[0] = 9                                                  # the caller's array is not the sealed one
    doubled = test.map(lambda A: 2 * A)
    np.testing.assert_array_equal(doubled._open()[0], 2 * X)
    np.testing.assert_array_equal(doubled._open()[1], [3, 1, 2, 0])
    with pytest.raises(ValueError, match="'y' parameter must have shape \\(3,\\)"):
        test.map(lambda A: A[:3])


@pytest.mark.parametrize("X,y,error,words", [
    (np.zeros((3, 2)), np.zeros(2, np.int64), ValueError, "'y' parameter must have shape \\(3,\\)"),
    (np.zeros((3, 2)), np.zeros(3), TypeError, "'y' parameter must be an integer"),
    ([[0, 0]] * 3, np.zeros(3, np.int64), TypeError, "'X' parameter must be an array"),
])
def test_sealed_test_checks_what_it_seals(X, y, error, words):
    with pytest.raises(error, match=words):
        SealedTest(X, y)


def test_split_needs_a_sealed_test_split():
    X, y = np.zeros((4, 3)), np.zeros(4, np.int64)
    with pytest.raises(TypeError, match="The 'test' parameter of CIFAR10Split must be a SealedTest. Got ndarray"):
        CIFAR10Split(X, y, X, y, X[:0])
    assert CIFAR10Split(X, y, X, y, SealedTest(X[:0], y[:0])).X_sel.shape == (0, 3)


def test_selection_indices_are_stratified_seeded_sorted_and_distinct():
    labels = np.random.default_rng(1).integers(0, 10, 500)
    idx = selection_indices(labels, 60, seed=3)
    assert idx.dtype == np.int64 and idx.shape == (60,) and np.all(np.diff(idx) > 0)
    assert np.bincount(labels[idx], minlength=10).tolist() == [6] * 10
    np.testing.assert_array_equal(idx, selection_indices(labels.copy(), 60, seed=3))
    assert not np.array_equal(idx, selection_indices(labels, 60, seed=4))
    rng = np.random.default_rng(3)      # numpy's default_rng(seed), one choice per class in class order
    expected = np.sort(np.concatenate([rng.choice(np.flatnonzero(labels == c), 6, replace=False) for c in range(10)]))
    np.testing.assert_array_equal(idx, expected)
    assert selection_indices(labels, 0).shape == (0,)


@pytest.mark.parametrize("labels,num,error,words", [
    (np.tile(np.arange(10), 3), 25, ValueError, "'num_selection' parameter must be a multiple of 10"),
    (np.tile(np.arange(10), 3), -10, ValueError, "'num_selection' parameter must be an int >= 0"),
    (np.tile(np.arange(10), 3), 40, ValueError, "at least 4 images of each class for num_selection=40. Got 3"),
    (np.r_[np.tile(np.arange(10), 3), 10], 10, ValueError, "'labels' parameter must hold labels in \\[0, 10\\)"),
    (np.zeros(30), 10, TypeError, "'labels' parameter must be an integer"),
])
def test_selection_indices_check_their_arguments(labels, num, error, words):
    with pytest.raises(error, match=words):
        selection_indices(labels, num)


def test_split_indices_are_disjoint_and_cover_the_first_images():
    labels = np.tile(np.arange(10), 12)
    train, sel, val = split_indices(labels, num_training=100, num_validation=15, num_selection=30)
    assert len(train) == 70 and len(sel) == 30 and np.all(np.diff(train) > 0)
    np.testing.assert_array_equal(np.sort(np.r_[train, sel]), np.arange(100))
    np.testing.assert_array_equal(val, np.arange(100, 115))
    np.testing.assert_array_equal(sel, selection_indices(labels[:100], 30, seed=0))
