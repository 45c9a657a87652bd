"""The CIFAR-10 loader under hostile use: pickles that run code, something other than a batch file where
one should be (an error naming the path, never a download), huge files, and unsafe or wrong archives."""
import hashlib
import io
import os
import pickle
import tarfile

import numpy as np
import pytest

import aml.data
from aml.data import FOLDER, TEST_FILE, TRAIN_FILES, load_cifar10_images

pytestmark = pytest.mark.usefixtures("isolated_data_dir")
BATCHES = (*TRAIN_FILES, TEST_FILE)


def _batch_bytes(index, per_batch=10):
    data = np.full((per_batch, 3072), index, dtype=np.uint8)
    return pickle.dumps({b"data": data, b"labels": [i % 10 for i in range(per_batch)]}, protocol=4)


def _write_batches(folder):
    folder.mkdir(parents=True)
    for i, name in enumerate(BATCHES):
        (folder / name).write_bytes(_batch_bytes(i))
    return folder


@pytest.fixture
def no_download(monkeypatch):
    def fetch(url, dest):
        raise AssertionError("must not download")
    monkeypatch.setattr(aml.data, "_fetch", fetch)


class _WritesAFile:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return os.system, (f"touch {self.path}",)


@pytest.mark.parametrize("wrap", [lambda x: {b"data": x, b"labels": []}, lambda x: x])
def test_pickle_that_would_write_a_file_is_refused(tmp_dir, wrap, no_download):
    folder = _write_batches(tmp_dir / FOLDER)
    marker = tmp_dir / "pwned"
    (folder / "data_batch_1").write_bytes(pickle.dumps(wrap(_WritesAFile(marker)), protocol=4))
    with pytest.raises(ValueError, match=r"data_batch_1 is not a valid batch: UnpicklingError: it names the Python "
                                         r"object '(posix|nt|os)\.system', which a batch may not"):
        load_cifar10_images(tmp_dir)
    assert not marker.exists()
    os.system(f"touch {marker}")                   # the check above can fail: the payload does write it
    assert marker.exists()


@pytest.mark.parametrize("module,name", [("builtins", "eval"), ("numpy", "load"), ("numpy.core.multiarray", "scalar")])
def test_only_the_numpy_reconstruction_globals_are_admitted(tmp_dir, module, name):
    folder = _write_batches(tmp_dir / FOLDER)
    (folder / TEST_FILE).write_bytes(b"\x80\x02c" + f"{module}\n{name}\n".encode() + b")R.")
    with pytest.raises(ValueError, match=f"names the Python object '{module}.{name}'"):
        load_cifar10_images(tmp_dir, download=False)


def test_pickle_that_allocates_a_huge_array_is_refused(tmp_dir):
    class Huge:
        def __reduce__(self):
            return aml.data.multiarray._reconstruct, (np.ndarray, (2**62,), b"b")
    folder = _write_batches(tmp_dir / FOLDER)
    (folder / TEST_FILE).write_bytes(pickle.dumps({b"data": Huge(), b"labels": []}, protocol=4))
    with pytest.raises(ValueError, match="test_batch is not a valid batch"):
        load_cifar10_images(tmp_dir, download=False)


def test_out_of_band_protocol_5_buffers_are_refused(tmp_dir):
    folder = _write_batches(tmp_dir / FOLDER)
    buffers = []
    (folder / TEST_FILE).write_bytes(pickle.dumps({b"data": np.zeros((10, 3072), np.uint8), b"labels": [0] * 10},
                                                  protocol=5, buffer_callback=buffers.append))
    assert buffers
    with pytest.raises(ValueError, match="test_batch is not a valid batch: UnpicklingError.*out-of-band"):
        load_cifar10_images(tmp_dir, download=False)


def _loop(path):
    os.symlink(path.name, path)                    # a link to itself: ELOOP


def _fifo(path):
    os.mkfifo(path)                                # opening it would block forever


@pytest.mark.parametrize("make,words", [
    (os.mkdir, "must be a readable regular file of at most .* bytes. Got a folder instead; it was not read."),
    (_loop, "must be a readable file. Got: Too many levels of symbolic links."),
    (_fifo, "must be a readable regular file .*Got a special file instead"),
    (lambda p: os.symlink(p.parent / "nothing", p), "must be a file. Got a dangling link instead."),
])
def test_something_else_where_a_batch_file_should_be_is_an_error_never_a_download(tmp_dir, make, words, no_download):
    folder = _write_batches(tmp_dir / FOLDER)
    (folder / TEST_FILE).unlink()
    make(folder / TEST_FILE)
    with pytest.raises(ValueError, match=f"^The CIFAR-10 batch file {folder / TEST_FILE} {words}"):
        load_cifar10_images(tmp_dir)
    assert sorted(os.listdir(folder)) == sorted(BATCHES)


def test_an_unreadable_batch_file_is_an_error_never_a_download(tmp_dir, monkeypatch, no_download):
    folder = _write_batches(tmp_dir / FOLDER)
    (folder / "data_batch_4").chmod(0)
    real_access = os.access          # root may read anything: answer by the permission bits, as for a user
    monkeypatch.setattr(os, "access", lambda p, mode: real_access(p, mode) and bool(os.stat(p).st_mode & 0o444))
    with pytest.raises(ValueError, match=f"{folder / 'data_batch_4'} must be a readable regular file .*Got a file "
                                         "without read permission instead"):
        load_cifar10_images(tmp_dir)


def test_a_file_where_the_batch_folder_should_be_is_an_error(tmp_dir, no_download):
    (tmp_dir / FOLDER).write_text("not a folder")
    with pytest.raises(ValueError, match=f"The CIFAR-10 folder {tmp_dir / FOLDER} must be a folder"):
        load_cifar10_images(tmp_dir)
    assert (tmp_dir / FOLDER).read_text() == "not a folder"


def test_a_folder_missing_some_batches_is_an_error_never_a_download(tmp_dir, no_download):
    folder = _write_batches(tmp_dir / FOLDER)
    (folder / "data_batch_2").unlink()
    with pytest.raises(FileNotFoundError, match=f"CIFAR-10 not found: {folder} lacks data_batch_2. Put the extracted"):
        load_cifar10_images(tmp_dir)


def test_missing_folder_offline_says_where(tmp_dir, no_download):
    with pytest.raises(FileNotFoundError, match=f"lacks {', '.join(BATCHES)}. Put the extracted {FOLDER} of "
                                                f"{aml.data.URL} in {tmp_dir}, or set AML_DATA_DIR"):
        load_cifar10_images(tmp_dir, download=False)
    assert os.listdir(tmp_dir) == []


def test_a_huge_batch_file_is_refused_before_it_is_read(tmp_dir, monkeypatch):
    folder = _write_batches(tmp_dir / FOLDER)
    with open(folder / "data_batch_3", "r+b") as f:
        f.truncate(10 * 2**30)                     # 10 GB, sparse: nothing is allocated
    monkeypatch.setattr(aml.data, "_Unpickler", None)   # reading it at all would fail otherwise
    with pytest.raises(ValueError, match=f"{folder / 'data_batch_3'} must be a readable regular file of at most "
                                         f"{aml.data.MAX_BATCH_BYTES} bytes. Got {10 * 2**30} bytes instead"):
        load_cifar10_images(tmp_dir)


def test_the_real_batch_loads(isolated_data_dir):
    path = aml.data.runs.checkout().parent / "shared" / "data" / FOLDER / TEST_FILE
    if not path.is_file():
        pytest.skip("no offline copy of CIFAR-10 here")
    X, y = aml.data._read_batch(path)
    assert X.shape == (10000, 32, 32, 3) and np.bincount(y).tolist() == [1000] * 10


# downloads: a local archive, served by replacing the fetch
def _tar_gz(entries):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for info, data in entries:
            info.size = len(data or b"")
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def _archive(skip=(), extra=()):
    return _tar_gz([*((tarfile.TarInfo(f"{FOLDER}/{n}"), _batch_bytes(i)) for i, n in enumerate(BATCHES)
                      if n not in skip), *extra])


@pytest.fixture
def serve(monkeypatch):
    """serve(archive, md5=None): the download fetches ``archive``; the expected MD5 is its own unless given."""
    def start(archive, md5=None):
        fetched = []

        def fetch(url, dest):
            fetched.append(url)
            dest.write_bytes(archive)
        monkeypatch.setattr(aml.data, "_fetch", fetch)
        monkeypatch.setattr(aml.data, "MD5", md5 or hashlib.md5(archive).hexdigest())
        return fetched
    return start


def test_download_puts_the_batches_in_place(tmp_dir, serve):
    fetched = serve(_archive(extra=[(tarfile.TarInfo("../evil"), b"x")]))     # entries not asked for: ignored
    root = tmp_dir / "new" / "data"
    X_train, _, test = load_cifar10_images(root)
    assert fetched == [aml.data.URL] and X_train.shape == (50, 32, 32, 3) and test._open()[0][0, 0, 0, 0] == 5
    assert os.listdir(root) == [FOLDER] and not (tmp_dir / "new" / "evil").exists() and not (tmp_dir / "evil").exists()
    load_cifar10_images(root)
    assert len(fetched) == 1                       # in place: no second download


def test_download_into_an_empty_folder_or_a_link_to_one(tmp_dir, serve):
    serve(_archive())
    (tmp_dir / "elsewhere" / "mine").mkdir(parents=True)
    (tmp_dir / "root").mkdir()
    (tmp_dir / "root" / FOLDER).symlink_to(tmp_dir / "elsewhere")
    load_cifar10_images(tmp_dir / "root")
    assert sorted(os.listdir(tmp_dir / "elsewhere")) == sorted([*BATCHES, "mine"])     # added to, never replaced


@pytest.mark.parametrize("archive,md5,words", [
    (_archive(), "0" * 32, f"ValueError: The download of {aml.data.URL} must have MD5 0{{32}}. Got [0-9a-f]{{32}}"),
    (_archive(skip=["data_batch_3"]), None, "KeyError: \"filename 'cifar-10-batches-py/data_batch_3' not found"),
    (_archive(skip=[TEST_FILE], extra=[(tarfile.TarInfo(f"{FOLDER}/{TEST_FILE}"), None)]), None, "ok"),
    (b"not a gzip file", None, "ReadError"),
])
def test_a_wrong_archive_is_refused_and_leaves_nothing_behind(tmp_dir, serve, archive, md5, words):
    if words == "ok":                              # a link named like a batch file
        link = tarfile.TarInfo(f"{FOLDER}/{TEST_FILE}")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        archive, words = _archive(skip=[TEST_FILE], extra=[(link, None)]), "must hold .*test_batch as a regular file"
    serve(archive, md5)
    with pytest.raises(FileNotFoundError, match=f"CIFAR-10 not found in {tmp_dir / FOLDER}, and downloading "
                                                f".* failed \\(.*{words}"):
        load_cifar10_images(tmp_dir)
    assert os.listdir(tmp_dir) == []


def test_a_failed_fetch_names_the_folder_and_leaves_no_temporary_folder(tmp_dir, monkeypatch):
    def offline(url, dest):
        dest.write_bytes(b"part of an archive")
        raise ConnectionError("network is unreachable")
    monkeypatch.setattr(aml.data, "_fetch", offline)
    with pytest.raises(FileNotFoundError, match="downloading .* failed \\(ConnectionError: network is unreachable\\)"):
        load_cifar10_images(tmp_dir)
    assert os.listdir(tmp_dir) == []


def test_a_root_under_a_regular_file_is_a_one_line_error(tmp_dir, serve):
    serve(_archive())
    (tmp_dir / "file.txt").write_text("x")
    with pytest.raises((FileNotFoundError, ValueError), match="file.txt") as e:
        load_cifar10_images(tmp_dir / "file.txt" / "a")
    assert "\n" not in str(e.value) and (tmp_dir / "file.txt").read_text() == "x"
