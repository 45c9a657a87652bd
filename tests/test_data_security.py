"""The CIFAR-10 loader against hostile files and servers: pickles that run code, unsafe archives,
servers that never answer or send the wrong bytes, and what killed downloads leave behind."""
import contextlib
import hashlib
import io
import os
import pickle
import re
import shutil
import socket
import stat
import sys
import tarfile
import tempfile
import threading
import time
import types
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

import aml.data
from aml.data import FOLDER, TEST_FILE, TRAIN_FILES, download_cifar10, ensure_cifar10, load_cifar10_images
from aml.runs import REPO_ROOT

pytestmark = pytest.mark.usefixtures("isolated_data_dir")


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
def test_pickle_that_calls_os_system_is_refused(tmp_dir, wrap):
    folder = _write_batches(tmp_dir / FOLDER)
    marker = tmp_dir / "pwned"
    (folder / "data_batch_1").write_bytes(pickle.dumps(wrap(_RunsACommand(f"touch {marker}")), protocol=4))
    with pytest.raises(ValueError, match=r"data_batch_1 names the Python object '(posix|nt|os)\.system'"):
        load_cifar10_images(tmp_dir, download=False)
    assert not marker.exists()


def test_pickle_that_allocates_a_huge_array_is_refused(tmp_dir):   # case 1: no MemoryError escapes
    class Huge:
        def __reduce__(self):
            return aml.data._reconstruct, (np.ndarray, (2**62,), b"b")
    folder = _write_batches(tmp_dir / FOLDER)
    (folder / TEST_FILE).write_bytes(pickle.dumps({b"data": Huge(), b"labels": []}, protocol=4))
    with pytest.raises(ValueError, match="test_batch is truncated or corrupted"):
        load_cifar10_images(tmp_dir, download=False)


# where an offline copy of CIFAR-10 may be, looked up before isolated_data_dir takes effect
_REAL_ROOTS = (aml.data.data_root(), REPO_ROOT.parent / "shared" / "data")


def _real_test_batch():
    for root in _REAL_ROOTS:
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
    threading.Thread(target=server.serve_forever, kwargs=dict(poll_interval=0.02), daemon=True).start()
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


class _Stderr:
    """A stream that shows what was written only once it is flushed, like a block-buffered pipe."""
    def __init__(self):
        self.pending, self.shown = "", ""

    def write(self, text):
        self.pending += text
        return len(text)

    def flush(self):
        self.shown, self.pending = self.shown + self.pending, ""


def test_successful_download_puts_the_batches_in_place(tmp_dir, serve, capsys):
    url = serve(_fake_archive())
    root = tmp_dir / "new" / "data"
    assert ensure_cifar10(root) == root / FOLDER
    X_train, _, test = load_cifar10_images(root, download=False)
    X_test = test._open()[0]
    assert X_train.shape == (50, 32, 32, 3) and X_test.shape == (10, 32, 32, 3) and X_test[0, 0, 0, 0] == 5
    assert _leftovers(root) == [] and sorted(p.name for p in root.iterdir()) == [FOLDER]
    # the archive is smaller than 1 MiB: one read, one report
    assert capsys.readouterr().err == f"CIFAR-10: downloading {url} into {root}\nCIFAR-10: 100% (0 of 0 MiB)\n"


def test_download_reports_progress_every_10_percent(tmp_dir, serve, monkeypatch):
    payload = bytes(12 * 2**20)        # twelve reads of 1 MiB; a report whenever a new tenth is complete
    url = serve(payload, md5="0" * 32)
    stderr = _Stderr()
    monkeypatch.setattr(sys, "stderr", stderr)
    with pytest.raises(ValueError, match="checksum mismatch"):
        download_cifar10(tmp_dir)
    reports = [" 10% (2", " 20% (3", " 30% (4", " 40% (5", " 50% (6", " 60% (8", " 70% (9", " 80% (10", " 90% (11",
               "100% (12"]
    assert stderr.shown == (f"CIFAR-10: downloading {url} into {tmp_dir}\n"
                            + "".join(f"CIFAR-10: {r} of 12 MiB)\n" for r in reports))
    assert stderr.pending == ""        # each line was flushed as it was written


class _NoLength(_Handler):
    def do_GET(self):                  # HTTP/1.0 without Content-Length: the body ends when the connection does
        self.send_response(200)
        self.end_headers()
        self.wfile.write(self.payload)


def test_download_without_content_length(tmp_dir, monkeypatch):
    archive = _fake_archive()
    with _server(type("Handler", (_NoLength,), {"payload": archive})) as url:
        monkeypatch.setattr(aml.data, "URL", url)
        monkeypatch.setattr(aml.data, "MD5", hashlib.md5(archive).hexdigest())
        stderr = _Stderr()
        monkeypatch.setattr(sys, "stderr", stderr)
        assert download_cifar10(tmp_dir) == tmp_dir / FOLDER
    assert stderr.shown == f"CIFAR-10: downloading {url} into {tmp_dir}\n"      # no size, so no percentages
    assert load_cifar10_images(tmp_dir, download=False)[2]._open()[0][0, 0, 0, 0] == 5


def test_download_of_exactly_the_size_limit_is_accepted(tmp_dir, serve, monkeypatch):
    archive = _fake_archive()
    serve(archive)
    monkeypatch.setattr(aml.data, "MAX_ARCHIVE_BYTES", len(archive))
    assert download_cifar10(tmp_dir) == tmp_dir / FOLDER


def test_download_over_the_size_limit_is_refused(tmp_dir, serve, monkeypatch, whole):
    url = serve(bytes(2**20 + 6))
    monkeypatch.setattr(aml.data, "MAX_ARCHIVE_BYTES", 2**20 + 5)
    written = []
    real_copy = aml.data._copy

    def copy(response, f, url):        # what had reached the file when the download was refused
        try:
            return real_copy(response, f, url)
        finally:
            written.append(f.tell())
    monkeypatch.setattr(aml.data, "_copy", copy)
    with pytest.raises(ValueError, match=whole(
            f"The download of {url} must be at most {2**20 + 5} bytes. Got more than that instead; "
            "this is not the CIFAR-10 archive.")):
        download_cifar10(tmp_dir)
    assert written == [2**20] and list(tmp_dir.iterdir()) == []


def test_download_replaces_an_incomplete_folder(tmp_dir, serve):   # case 7
    serve(_fake_archive())
    (tmp_dir / FOLDER).mkdir()
    (tmp_dir / FOLDER / "data_batch_1").write_bytes(b"half a file")
    load_cifar10_images(tmp_dir)
    assert load_cifar10_images(tmp_dir, download=False)[0].shape == (50, 32, 32, 3)


def test_checksum_mismatch(tmp_dir, serve):
    archive = _fake_archive()            # built once: gzip stamps the time into it
    url = serve(archive, md5="0" * 32)
    actual = hashlib.md5(archive).hexdigest()
    with pytest.raises(ValueError, match=f"{re.escape(url)} but got a checksum mismatch: "
                                         f"expected MD5 0{{32}}, got {actual}.*AML_DATA_DIR"):
        download_cifar10(tmp_dir)
    assert list(tmp_dir.iterdir()) == []


@pytest.mark.parametrize("name,kind", [("../evil", tarfile.REGTYPE), ("/tmp/evil", tarfile.REGTYPE),
                                       ("..\\evil", tarfile.REGTYPE), (f"{FOLDER}\\..\\..\\evil", tarfile.REGTYPE),
                                       ("\\tmp\\evil", tarfile.REGTYPE), ("C:evil", tarfile.REGTYPE),
                                       (f"{FOLDER}/link", tarfile.SYMTYPE), (f"{FOLDER}/dev", tarfile.CHRTYPE)])
def test_unsafe_archive_entries_are_refused(tmp_dir, serve, name, kind, whole):
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, "/etc/passwd" if kind == tarfile.SYMTYPE else ""
    url = serve(_fake_archive([(info, b"x" if kind == tarfile.REGTYPE else None)]))
    root = tmp_dir / "root"
    what = ("relative paths only. Got the entry {!r} instead." if kind == tarfile.REGTYPE else
            "regular files and folders only. Got the entry {!r} (a link, device or FIFO) instead.")
    with pytest.raises(ValueError, match=whole(f"The archive {url} must hold {what.format(name)}")):
        download_cifar10(root)
    assert not root.exists() and not (tmp_dir / "evil").exists()


def test_extracted_files_get_safe_permissions(tmp_dir, serve):
    # tarfile's "data" filter: no set-user-ID, set-group-ID or sticky bit, no write access for group and
    # others, and the owner may always read and write
    entries = []
    for i, name in enumerate((*TRAIN_FILES, TEST_FILE)):
        info = tarfile.TarInfo(f"{FOLDER}/{name}")
        info.mode = 0o7777 if i % 2 else 0o000
        entries.append((info, _batch_bytes(i)))
    serve(_tar_gz(entries))
    folder = download_cifar10(tmp_dir)
    modes = {name: stat.S_IMODE((folder / name).stat().st_mode) for name in (*TRAIN_FILES, TEST_FILE)}
    assert modes == {name: 0o755 if i % 2 else 0o600 for i, name in enumerate((*TRAIN_FILES, TEST_FILE))}


def test_archive_that_is_not_gzip_compressed_is_refused(tmp_dir, serve):
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:        # a plain tar of the same files
        for i, name in enumerate((*TRAIN_FILES, TEST_FILE)):
            data = _batch_bytes(i)
            info = tarfile.TarInfo(f"{FOLDER}/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    serve(archive.getvalue())
    with pytest.raises(tarfile.ReadError, match="not a gzip file"):
        download_cifar10(tmp_dir)
    assert list(tmp_dir.iterdir()) == []


def test_archive_without_the_batches_is_refused(tmp_dir, serve):
    serve(_tar_gz([(tarfile.TarInfo(f"{FOLDER}/{TEST_FILE}"), _batch_bytes(0))]))
    with pytest.raises(ValueError, match="lacks data_batch_1"):
        download_cifar10(tmp_dir)
    assert list(tmp_dir.iterdir()) == []


def test_server_that_never_answers_times_out(tmp_dir, monkeypatch):
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
            ensure_cifar10(tmp_dir / "data")
        assert time.perf_counter() - start < 5
    assert list(tmp_dir.iterdir()) == []


@pytest.mark.parametrize("status,requests", [(503, 3), (500, 3), (404, 1), (400, 1), (499, 1)])
def test_retries_are_bounded(tmp_dir, monkeypatch, status, requests):   # a client error is not retried
    monkeypatch.setattr(aml.data, "RETRY_BACKOFF_S", 0.0)
    seen = []

    class Failing(_Handler):
        def do_GET(self):
            seen.append(self.path)
            self.send_error(status)
    with _server(Failing) as url:
        monkeypatch.setattr(aml.data, "URL", url)
        with pytest.raises(ConnectionError, match=f"Could not download {re.escape(url)} .*HTTP Error {status}"):
            download_cifar10(tmp_dir)
    assert len(seen) == requests and list(tmp_dir.iterdir()) == []


def test_retries_back_off_linearly(tmp_dir, monkeypatch, whole):
    sleeps = []
    monkeypatch.setattr(aml.data, "time", types.SimpleNamespace(time=time.time, sleep=sleeps.append))
    monkeypatch.setattr(aml.data, "RETRY_BACKOFF_S", 0.25)

    class Failing(_Handler):
        def do_GET(self):
            self.send_error(503)
    with _server(Failing) as url:
        monkeypatch.setattr(aml.data, "URL", url)
        with pytest.raises(ConnectionError, match=whole(
                f"Could not download {url} (attempt 3 of 3, timeout 60 s): HTTPError: HTTP Error 503: Service "
                f"Unavailable. Put the extracted '{FOLDER}' folder of {url} under {tmp_dir}, or set AML_DATA_DIR "
                "to the folder that holds it (e.g. AML_DATA_DIR=../shared/data).")):
            download_cifar10(tmp_dir)
    assert sleeps == [0.25, 0.5]


def test_temporary_files_stay_in_the_root(tmp_dir, monkeypatch):
    # the archive is 170 MB and is renamed into place: nothing goes to the system's temporary folder
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_dir / "no-system-tmp"))
    root = tmp_dir / "root"
    seen = []

    class Watching(_Handler):
        payload = _fake_archive()

        def do_GET(self):
            seen.extend(sorted(p.name for p in root.iterdir()))
            super().do_GET()
    with _server(Watching) as url:
        monkeypatch.setattr(aml.data, "URL", url)
        monkeypatch.setattr(aml.data, "MD5", hashlib.md5(Watching.payload).hexdigest())
        assert download_cifar10(root) == root / FOLDER
    # while the archive streams in, the root holds its *.tmp file, which _remove_leftovers knows
    assert len(seen) == 1 and re.fullmatch(r"cifar-10-python\.tar\.gz\.\w+\.tmp", seen[0]), seen
    assert sorted(p.name for p in tmp_dir.iterdir()) == ["root"] and os.listdir(root) == [FOLDER]


def test_extraction_folder_of_a_killed_run_is_cleaned_up(tmp_dir):
    archive = tmp_dir / "archive.tar.gz"
    archive.write_bytes(_fake_archive())
    root = tmp_dir / "root"
    _write_batches(root / FOLDER)
    extracted = aml.data._extract(archive, root)     # what a run killed before the move leaves behind
    assert extracted.parent == root and extracted.name.startswith(".cifar-extract-")
    assert sorted(p.name for p in (extracted / FOLDER).iterdir()) == sorted((*TRAIN_FILES, TEST_FILE))
    old = time.time() - 2 * aml.data.LEFTOVER_AGE_S
    os.utime(extracted, (old, old))
    ensure_cifar10(root)
    assert os.listdir(root) == [FOLDER]


def _racing_rmtree(monkeypatch):
    """Make every shutil.rmtree find its folder already removed by someone else."""
    real = shutil.rmtree

    def rmtree(path, ignore_errors=False, **kwargs):
        real(path, ignore_errors=True)
        real(path, ignore_errors=ignore_errors, **kwargs)
    monkeypatch.setattr(shutil, "rmtree", rmtree)


def test_cleanup_errors_do_not_hide_the_outcome(tmp_dir, serve, monkeypatch):
    serve(_fake_archive())
    _racing_rmtree(monkeypatch)
    assert download_cifar10(tmp_dir / "ok") == tmp_dir / "ok" / FOLDER
    assert os.listdir(tmp_dir / "ok") == [FOLDER]
    serve(_tar_gz([(tarfile.TarInfo(f"{FOLDER}/{TEST_FILE}"), _batch_bytes(0))]))
    with pytest.raises(ValueError, match="lacks data_batch_1"):
        download_cifar10(tmp_dir / "bad")
    assert not (tmp_dir / "bad").exists()


def test_archive_removed_by_someone_else_does_not_hide_the_error(tmp_dir, monkeypatch):
    class Deleting(_Handler):
        def do_GET(self):
            for p in tmp_dir.glob("*.tmp"):
                p.unlink()
            self.send_error(404)
    with _server(Deleting) as url:
        monkeypatch.setattr(aml.data, "URL", url)
        with pytest.raises(ConnectionError, match="HTTP Error 404"):
            download_cifar10(tmp_dir)
    assert list(tmp_dir.iterdir()) == []


@pytest.mark.parametrize("what", ["file", "dangling link", "link to a folder"])
def test_download_replaces_what_is_in_the_way(tmp_dir, serve, what):
    serve(_fake_archive())
    root, outside = tmp_dir / "root", tmp_dir / "outside"
    root.mkdir()
    (outside / "keep").mkdir(parents=True)
    if what == "file":
        (root / FOLDER).write_text("not a folder")
    else:
        (root / FOLDER).symlink_to(outside if what == "link to a folder" else tmp_dir / "nothing")
    assert download_cifar10(root) == root / FOLDER
    assert (root / FOLDER).is_dir() and not (root / FOLDER).is_symlink()
    assert load_cifar10_images(root, download=False)[0].shape == (50, 32, 32, 3)
    assert os.listdir(outside) == ["keep"]          # a linked folder is unlinked, not emptied


def test_leftovers_of_killed_runs_are_removed(tmp_dir):
    _write_batches(tmp_dir / FOLDER)
    old = time.time() - 2 * aml.data.LEFTOVER_AGE_S
    stale = [tmp_dir / ".cifar-extract-x1", tmp_dir / "cifar-10-python.tar.gz.x2.tmp"]
    fresh = [tmp_dir / ".cifar-extract-y1", tmp_dir / "cifar-10-python.tar.gz.y2.tmp"]   # a live download's
    for path in (*stale, *fresh):
        if path.suffix == ".tmp":
            path.write_bytes(b"part of an archive")
        else:
            (path / FOLDER).mkdir(parents=True)
    for path in stale:
        os.utime(path, (old, old))
    (tmp_dir / "notes.tmp").write_text("not ours")
    ensure_cifar10(tmp_dir)
    assert _leftovers(tmp_dir) == sorted(p.name for p in fresh) + ["notes.tmp"]
    assert all(Path(p).exists() for p in fresh)


def test_leftover_age_limit_is_inclusive(tmp_dir, monkeypatch):
    now = 1_800_000_000.0
    monkeypatch.setattr(aml.data, "time", types.SimpleNamespace(time=lambda: now, sleep=time.sleep))
    _write_batches(tmp_dir / FOLDER)
    for name, age in [("cifar-10-python.tar.gz.a.tmp", aml.data.LEFTOVER_AGE_S),
                      ("cifar-10-python.tar.gz.b.tmp", aml.data.LEFTOVER_AGE_S - 1)]:
        (tmp_dir / name).write_bytes(b"part of an archive")
        os.utime(tmp_dir / name, (now - age, now - age))
    ensure_cifar10(tmp_dir)
    assert _leftovers(tmp_dir) == ["cifar-10-python.tar.gz.b.tmp"]


def test_leftover_that_is_a_link_is_unlinked_not_followed(tmp_dir):
    _write_batches(tmp_dir / FOLDER)
    (tmp_dir / "elsewhere" / "precious").mkdir(parents=True)
    link = tmp_dir / ".cifar-extract-link"
    link.symlink_to(tmp_dir / "elsewhere")
    old = time.time() - 2 * aml.data.LEFTOVER_AGE_S
    os.utime(link, (old, old), follow_symlinks=False)
    ensure_cifar10(tmp_dir)
    assert not os.path.lexists(link) and (tmp_dir / "elsewhere" / "precious").is_dir()
