"""Safety defects fixed in the engine, tested through its API against real servers; each failed before."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ferry_provider.hooks.errors import InvalidArgumentError
from ferry_provider.hooks.http import FerryHTTPHook
from ferry_provider.transfer.checkpoint import Checkpoint, current_boot
from ferry_provider.transfer.cleanup import find_leftovers, remove_leftovers
from ferry_provider.transfer.download import DownloadOptions, download
from ferry_provider.transfer.manifest import OK, SKIP, TransferError
from ferry_provider.transfer.pool import Stopped
from ferry_provider.transfer.retry import RetryPolicy
from ferry_provider.transfer.shared_fd import SharedFd
from ferry_provider.transfer.upload import UploadOptions, upload
from ferry_provider.transfer.writer_lock import DestinationBusyError, WriterLock
from tests.conftest import PROXY_BUCKET, put_object
from tests.stores import MiB, crc32c_hex, unique_prefix
from tests.test_download import leave_damaged_resume_state

FAST_RETRY = RetryPolicy(attempts=3, initial_wait=0.05, max_wait=0.2)


# -- 1. one writer per destination; resumed parts re-hashed by default ----------------------
def test_the_writer_lock_admits_one_holder_and_survives_its_removal(tmp_path) -> None:
    path = str(tmp_path / "d.ferry-lock")
    busy = rf"d: destination is being written by another transfer \(pid {os.getpid()}\)"
    with WriterLock(path, "d"), pytest.raises(DestinationBusyError, match=busy):
        WriterLock(path, "d").acquire()
    assert not os.path.exists(path)  # released and removed
    with open(path, "w") as stale:  # a dead holder's file: no lock on it
        stale.write("999999\n")
    with WriterLock(path, "d"):
        pass
    assert not os.path.exists(path)


def test_a_byte_damaged_between_a_kill_and_the_resume_is_fetched_again_by_default(s3_proxy, tmp_path) -> None:
    """Used to publish the damaged file as 'verified' unless verify_on_resume was asked for."""
    via_proxy, direct, proxy = s3_proxy
    url, data = put_object(direct, 4 * MiB)
    dest = tmp_path / "damaged.bin"
    leave_damaged_resume_state(direct, url, data, dest, boot=current_boot())
    row = download(via_proxy, url, str(dest), DownloadOptions(part_size=MiB, parallelism=1, retry=FAST_RETRY))
    assert dest.read_bytes() == data
    assert proxy.body_bytes("GET") == MiB  # only the damaged part again
    assert "resumed: 3 part(s) reused (re-hashed on disk)" in row.description


# -- 4. HTTP sources without validators -----------------------------------------------------
class _ChangingHandler(BaseHTTPRequestHandler):
    """Serves ranges of a body that changes with every request, and no ETag; at most a
    Last-Modified date that stays the same (a rewrite within the same second)."""

    versions: tuple[bytes, bytes] = (b"", b"")
    served = [0]
    last_modified: str | None = None
    protocol_version = "HTTP/1.1"

    def end_headers(self) -> None:
        if self.last_modified:
            self.send_header("Last-Modified", self.last_modified)
        super().end_headers()

    def _body(self) -> bytes:
        self.served[0] += 1
        return self.versions[self.served[0] % 2]

    def do_HEAD(self) -> None:
        body = self._body()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()

    def do_GET(self) -> None:
        body = self._body()
        header = self.headers.get("Range")
        if header:
            first, last = header.removeprefix("bytes=").split("-")
            start, end = int(first), min(int(last) + 1 if last else len(body), len(body))
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{end - 1}/{len(body)}")
            body = body[start:end]
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@contextlib.contextmanager
def changing_server(a: bytes, b: bytes, last_modified: str | None) -> Iterator[str]:
    handler = type("Handler", (_ChangingHandler,), {"versions": (a, b), "served": [0], "last_modified": last_modified})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/changing.bin"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("last_modified", [None, "Mon, 23 Nov 2026 10:00:00 GMT"])
def test_a_source_without_a_strong_validator_is_read_as_one_version(tmp_path, last_modified: str | None) -> None:
    a, b = os.urandom(6 * MiB), os.urandom(6 * MiB)
    with changing_server(a, b, last_modified) as url:
        row = download(FerryHTTPHook(), url, str(tmp_path / "out"), DownloadOptions(part_size=MiB, parallelism=4))
    assert (tmp_path / "out").read_bytes() in (a, b)  # one version whole, never a mix
    assert row.result == OK and "read as one stream: the source gives no version or strong ETag" in row.description


# -- 7. a tracker whose upload is gone ------------------------------------------------------
def test_resume_after_cleanup_starts_a_new_upload_at_once(s3_proxy, tmp_path) -> None:
    via_proxy, direct, proxy = s3_proxy
    data = os.urandom(12 * MiB)
    src = tmp_path / "src.bin"
    src.write_bytes(data)
    prefix = f"s3://{PROXY_BUCKET}/{unique_prefix()}"
    options = UploadOptions(part_size=5 * MiB, parallelism=2, retry=FAST_RETRY)
    proxy.faults.error_status, proxy.faults.error_times = 503, 1000
    proxy.faults.error_methods, proxy.faults.only_path = ("PUT",), "partNumber="
    with pytest.raises(TransferError):
        upload(via_proxy, str(src), prefix + "o.bin", options)
    tracker = next(p for p in tmp_path.iterdir() if p.name.endswith(".ferry-upload-tracker"))
    assert Checkpoint.peek(str(tracker)).parts == {}  # an upload id and no part
    assert remove_leftovers(direct, find_leftovers(direct, prefix, older_than=timedelta(0))) == []
    proxy.reset()
    row = upload(via_proxy, str(src), prefix + "o.bin", options)  # used to fail once with NoSuchUpload
    assert row.result == OK and direct.read_bytes(prefix + "o.bin") == data
    assert list(direct.list_multipart_uploads(prefix)) == []


# -- 11. part floor and O(1) part records ---------------------------------------------------
def test_tiny_parts_are_raised_to_the_floor(s3_proxy, tmp_path) -> None:
    via_proxy, direct, proxy = s3_proxy
    url, data = put_object(direct, 2 * MiB + 5)
    row = download(via_proxy, url, str(tmp_path / "o"), DownloadOptions(part_size=256, parallelism=2))
    assert (tmp_path / "o").read_bytes() == data
    assert "part size 256 raised to the minimum of 1048576 bytes" in row.description
    assert len([r for r in proxy.records if r.method == "GET" and r.range]) == 3  # not 8,193 ranges


def test_recording_a_part_appends_one_line_and_a_torn_line_is_ignored(tmp_path) -> None:
    path = str(tmp_path / "t.ferry-tracker")
    identity = {"source": "s3://b/k", "size": 10}
    checkpoint = Checkpoint(path, identity)
    checkpoint.save()
    inode, size = os.stat(path).st_ino, os.path.getsize(path)
    for i in range(200):
        checkpoint.record(i, crc32c=i, size=1)
    assert os.stat(path).st_ino == inode  # appended to, never rewritten
    with open(path) as f:
        lines = f.read().splitlines()
    assert len(lines) == 201 and os.path.getsize(path) - size == sum(len(line) + 1 for line in lines[1:])
    with open(path, "a") as f:
        f.write('{"part":200,"info":{"crc')  # a kill mid-append
    again = Checkpoint.load(path, identity)
    assert sorted(again.parts) == list(range(200))
    again.record(200, crc32c=1, size=1)  # rewrites first: the torn line must not swallow this one
    assert sorted(Checkpoint.load(path, identity).parts) == list(range(201))
    again.delete()
    assert os.listdir(tmp_path) == []


# -- 12. skip rows carry the digests compared --------------------------------------------------
def test_skip_rows_carry_the_digests_they_compared(s3_proxy, tmp_path) -> None:
    via_proxy, direct, _ = s3_proxy
    url, data = put_object(direct, 3 * MiB)
    options = DownloadOptions(part_size=MiB)
    assert download(via_proxy, url, str(tmp_path / "d"), options).result == OK
    skipped = download(via_proxy, url, str(tmp_path / "d"), options)
    assert skipped.result == SKIP and skipped.crc32c == crc32c_hex(data)
    (tmp_path / "u").write_bytes(data)
    target = f"s3://{PROXY_BUCKET}/{unique_prefix()}u"
    assert upload(via_proxy, str(tmp_path / "u"), target).result == OK
    again = upload(via_proxy, str(tmp_path / "u"), target)
    assert again.result == SKIP and again.crc32c == crc32c_hex(data)


def test_state_dir_must_exist_and_nothing_is_written_otherwise(tmp_path) -> None:
    with pytest.raises(InvalidArgumentError, match="state_dir '/nonexistent/x' is not an existing directory"):
        DownloadOptions(state_dir="/nonexistent/x")
    assert os.listdir(tmp_path) == []


def test_no_clobber_never_replaces_a_file_that_appears_during_the_download(s3_proxy, tmp_path) -> None:
    via_proxy, direct, _ = s3_proxy
    url, _ = put_object(direct, 3 * MiB)
    dest = tmp_path / "d"

    def someone_else_writes(done: int, total: int | None) -> None:
        if not dest.exists():
            dest.write_bytes(b"precious")

    options = DownloadOptions(part_size=MiB, no_clobber=True, progress_callback=someone_else_writes)
    row = download(via_proxy, url, str(dest), options)
    assert row.result == SKIP and "appeared during the download" in row.description
    assert dest.read_bytes() == b"precious" and os.listdir(tmp_path) == ["d"]


def test_a_skip_removes_what_an_earlier_interrupted_run_left(s3_proxy, tmp_path) -> None:
    via_proxy, direct, proxy = s3_proxy
    url, _ = put_object(direct, 4 * MiB)
    dest = tmp_path / "d"
    proxy.faults.error_status, proxy.faults.error_times, proxy.faults.error_after_requests = 503, 1000, 2
    with pytest.raises(TransferError):
        download(via_proxy, url, str(dest), DownloadOptions(part_size=MiB, parallelism=1, retry=FAST_RETRY))
    assert os.path.exists(f"{dest}.ferry-tmp") and os.path.exists(f"{dest}.ferry-tracker")
    proxy.reset()
    dest.write_bytes(b"already here")
    row = download(via_proxy, url, str(dest), DownloadOptions(part_size=MiB, no_clobber=True))
    assert row.result == SKIP and os.listdir(tmp_path) == ["d"]


def test_an_upload_of_another_version_removes_the_upload_the_tracker_named(s3_proxy, tmp_path) -> None:
    """The upload id is appended to the tracker after its header; a stale tracker's id used to be
    missed, leaving the earlier multipart upload on the server forever."""
    via_proxy, direct, proxy = s3_proxy
    src = tmp_path / "src.bin"
    src.write_bytes(os.urandom(12 * MiB))
    prefix = f"s3://{PROXY_BUCKET}/{unique_prefix()}"
    proxy.faults.error_status, proxy.faults.error_times = 503, 1000
    proxy.faults.error_methods, proxy.faults.only_path = ("PUT",), "partNumber="
    with pytest.raises(TransferError):
        upload(via_proxy, str(src), prefix + "o.bin", UploadOptions(part_size=5 * MiB, retry=FAST_RETRY))
    assert len(list(direct.list_multipart_uploads(prefix))) == 1
    proxy.reset()
    row = upload(via_proxy, str(src), prefix + "o.bin", UploadOptions(part_size=6 * MiB))  # another plan
    assert row.result == OK and list(direct.list_multipart_uploads(prefix)) == []


def test_a_file_stays_open_while_an_abandoned_part_still_uses_it(tmp_path) -> None:
    """An interrupt returned from the pool while parts still ran, and the caller closed the file
    under them: a part then read (or wrote) a closed, or reused, descriptor."""
    path = tmp_path / "f"
    path.write_bytes(b"x")
    shared = SharedFd(os.open(path, os.O_RDONLY))
    with shared as fd:  # a part still running
        shared.release()  # the owner lets go on its way out
        assert os.pread(fd, 1, 0) == b"x"  # still this file's descriptor
    with contextlib.suppress(FileNotFoundError):  # closed by the last user (or the number reused)
        assert os.readlink(f"/proc/self/fd/{fd}") != str(path)
    with pytest.raises(Stopped), shared:
        pass  # a part starting after that must not use the number
