"""The CIFAR-10 loader against hostile files and servers: pickles that run code, unsafe archives,
servers that never answer or send the wrong bytes, and what killed downloads leave behind."""
import contextlib
import hashlib
import io
import os
import pickle
import re
import socket
import tarfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

import aml.data
from aml.data import FOLDER, TEST_FILE, TRAIN_FILES, download_cifar10, ensure_cifar10, load_cifar10_images
from aml.paths import REPO_ROOT


def _batch_bytes(index, per_batch=10):
    data = np.full((per_batch, 3072), index, dtype=np.uint8)
    return pickle.dumps({b"data": data, b"labels": [i % 10 for i in range(per_batch)]}, protocol=4)


def _write_batches(folder):
    folder.mkdir(parents=True)
    for i, name in enumerate((*TRAIN_FILES, TEST_FILE)):
        (folder / name).write_bytes(_batch_bytes(i))
    return folder


# Case 1: a batch pickle must not run code
class _RunsACommand:
    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


@pytest.mark.parametrize("wrap", [lambda x: {b"data": x, b"labels": []}, lambda x: x])
def test_pickle_that_calls_os_system_is_refused(tmp_path, wrap):
    folder = _write_batches(tmp_path / FOLDER)
    marker = tmp_path / "pwned"
    (folder / "data_batch_1").write_bytes(pickle.dumps(wrap(_RunsACommand(f"touch {marker}")), protocol=4))
    with pytest.raises(ValueError, match=r"data_batch_1 names the Python object '(posix|nt|os)\.system'"):
        load_cifar10_images(tmp_path, download=False)
    assert not marker.exists()


def test_pickle_that_allocates_a_huge_array_is_refused(tmp_path):   # case 1: no MemoryError escapes
    class Huge:
        def __reduce__(self):
            return aml.data._reconstruct, (np.ndarray, (2**62,), b"b")
    folder = _write_batches(tmp_path / FOLDER)
    (folder / TEST_FILE).write_bytes(pickle.dumps({b"data": Huge(), b"labels": []}, protocol=4))
    with pytest.raises(ValueError, match="test_batch is truncated or corrupted"):
        load_cifar10_images(tmp_path, download=False)


def _real_test_batch():
    for root in (aml.data.data_root(), REPO_ROOT.parent / "shared" / "data"):
        if (root / FOLDER / TEST_FILE).is_file():
            return root / FOLDER / TEST_FILE
    pytest.skip("no offline copy of CIFAR-10 here")


def test_real_batch_loads_with_the_restricted_unpickler():
    X, y = aml.data._read_batch(_real_test_batch())
    assert X.shape == (10000, 32, 32, 3) and X.dtype == np.uint8
    assert y.shape == (10000,) and np.bincount(y).tolist() == [1000] * 10


# Case 4: downloads, on a local server
class _Handler(BaseHTTPRequestHandler):
    payload = b""

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.payload)))
        self.end_headers()
        self.wfile.write(self.payload)

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def _server(handler):
    """Run ``handler`` on 127.0.0.1 in a thread; yield the archive's URL there."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/cifar-10-python.tar.gz"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def serve(monkeypatch):
    """serve(payload) serves ``payload`` on 127.0.0.1 and points URL and MD5 at it."""
    with contextlib.ExitStack() as stack:
        def start(payload, md5=None):
            url = stack.enter_context(_server(type("Handler", (_Handler,), {"payload": payload})))
            monkeypatch.setattr(aml.data, "URL", url)
            monkeypatch.setattr(aml.data, "MD5", md5 or hashlib.md5(payload).hexdigest())
            return url
        yield start


def _tar_gz(entries):
    """A .tar.gz of (TarInfo, bytes or None) pairs."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for info, data in entries:
            info.size = len(data) if data is not None else 0
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def _fake_archive(extra=()):
    files = [(tarfile.TarInfo(f"{FOLDER}/{name}"), _batch_bytes(i)) for i, name in enumerate((*TRAIN_FILES, TEST_FILE))]
    return _tar_gz([*files, *extra])


def _leftovers(root):
    return sorted(p.name for p in root.iterdir() if p.name.endswith(".tmp") or p.name.startswith(".cifar-extract-"))


def test_successful_download_puts_the_batches_in_place(tmp_path, serve, capsys):
    serve(_fake_archive())
    root = tmp_path / "new" / "data"
    assert ensure_cifar10(root) == root / FOLDER
    X_train, _, X_test, _ = load_cifar10_images(root, download=False)
    assert X_train.shape == (50, 32, 32, 3) and X_test.shape == (10, 32, 32, 3) and X_test[0, 0, 0, 0] == 5
    assert _leftovers(root) == [] and sorted(p.name for p in root.iterdir()) == [FOLDER]
    assert "100%" in capsys.readouterr().err


def test_download_replaces_an_incomplete_folder(tmp_path, serve):   # case 7
    serve(_fake_archive())
    (tmp_path / FOLDER).mkdir()
    (tmp_path / FOLDER / "data_batch_1").write_bytes(b"half a file")
    load_cifar10_images(tmp_path)
    assert load_cifar10_images(tmp_path, download=False)[0].shape == (50, 32, 32, 3)


def test_checksum_mismatch(tmp_path, serve):
    archive = _fake_archive()            # built once: gzip stamps the time into it
    url = serve(archive, md5="0" * 32)
    actual = hashlib.md5(archive).hexdigest()
    with pytest.raises(ValueError, match=f"{re.escape(url)} but got a checksum mismatch: "
                                         f"expected MD5 0{{32}}, got {actual}.*AML_DATA_DIR"):
        download_cifar10(tmp_path)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name,kind", [("../evil", tarfile.REGTYPE), ("/tmp/evil", tarfile.REGTYPE),
                                       (f"{FOLDER}/link", tarfile.SYMTYPE), (f"{FOLDER}/dev", tarfile.CHRTYPE)])
def test_unsafe_archive_entries_are_refused(tmp_path, serve, name, kind):
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, "/etc/passwd" if kind == tarfile.SYMTYPE else ""
    serve(_fake_archive([(info, b"x" if kind == tarfile.REGTYPE else None)]))
    root = tmp_path / "root"
    with pytest.raises(ValueError, match=f"Got the entry '{re.escape(name)}'"):
        download_cifar10(root)
    assert not root.exists() and not (tmp_path / "evil").exists()


def test_archive_without_the_batches_is_refused(tmp_path, serve):
    serve(_tar_gz([(tarfile.TarInfo(f"{FOLDER}/{TEST_FILE}"), _batch_bytes(0))]))
    with pytest.raises(ValueError, match="lacks data_batch_1"):
        download_cifar10(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_server_that_never_answers_times_out(tmp_path, monkeypatch):
    monkeypatch.setattr(aml.data, "DOWNLOAD_TIMEOUT_S", 0.2)
    monkeypatch.setattr(aml.data, "RETRY_BACKOFF_S", 0.05)
    with socket.socket() as silent:              # accepts connections (in its backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/cifar-10-python.tar.gz"
        monkeypatch.setattr(aml.data, "URL", url)
        start = time.perf_counter()
        with pytest.raises(FileNotFoundError, match=f"Could not download {re.escape(url)} "
                                                    r"\(attempt 3 of 3, timeout 0.2 s\).*timed out.*AML_DATA_DIR"):
            ensure_cifar10(tmp_path / "data")
        assert time.perf_counter() - start < 5
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("status,requests", [(503, 3), (404, 1)])
def test_retries_are_bounded(tmp_path, monkeypatch, status, requests):   # a client error is not retried
    monkeypatch.setattr(aml.data, "RETRY_BACKOFF_S", 0.0)
    seen = []

    class Failing(_Handler):
        def do_GET(self):
            seen.append(self.path)
            self.send_error(status)
    with _server(Failing) as url:
        monkeypatch.setattr(aml.data, "URL", url)
        with pytest.raises(ConnectionError, match=f"Could not download {re.escape(url)} .*HTTP Error {status}"):
            download_cifar10(tmp_path)
    assert len(seen) == requests and list(tmp_path.iterdir()) == []


def test_leftovers_of_killed_runs_are_removed(tmp_path):
    _write_batches(tmp_path / FOLDER)
    old = time.time() - 2 * aml.data.LEFTOVER_AGE_S
    stale = [tmp_path / ".cifar-extract-x1", tmp_path / "cifar-10-python.tar.gz.x2.tmp"]
    fresh = [tmp_path / ".cifar-extract-y1", tmp_path / "cifar-10-python.tar.gz.y2.tmp"]   # a live download's
    for path in (*stale, *fresh):
        if path.suffix == ".tmp":
            path.write_bytes(b"part of an archive")
        else:
            (path / FOLDER).mkdir(parents=True)
    for path in stale:
        os.utime(path, (old, old))
    (tmp_path / "notes.tmp").write_text("not ours")
    ensure_cifar10(tmp_path)
    assert _leftovers(tmp_path) == sorted(p.name for p in fresh) + ["notes.tmp"]
    assert all(Path(p).exists() for p in fresh)
