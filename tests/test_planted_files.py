"""What a download (and a one-request copy) finds at the names it uses, with no tracker to go by:
files, FIFOs, symbolic and hard links planted or left at the temp, tracker, tracker-rewrite
and lock paths are removed or replaced, never written through, read through or waited on;
leftovers of killed runs never outlive a successful one. Also the per-object shortcuts of the
download path (the O_EXCL temp create, the one-lstat destination check, the bare first retry
attempt, the size from the fstat, the fixed-width pid in the lock file). Real servers and files.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import threading
import time

import pytest

from ferry_provider.hooks.errors import InvalidArgumentError, TransientError
from ferry_provider.transfer.checkpoint import Checkpoint, tracker_path
from ferry_provider.transfer.download import download
from ferry_provider.transfer.manifest import OK, TransferError
from ferry_provider.transfer.pool import Stopped
from ferry_provider.transfer.retry import RetryPolicy
from ferry_provider.transfer.writer_lock import DestinationBusyError, WriterLock
from tests.conftest import put_object
from tests.stores import crc32c_hex, unique_prefix
from tests.test_download import FAST_RETRY, PART, opts
from tests.test_download import seeded_s3 as seeded

BUCKET = "ferry-review-a"
PRECIOUS = b"precious, not Ferry's: a file outside the destination folder\n"


def leftovers(*folders) -> list[str]:
    return sorted(
        os.path.join(str(folder), name) for folder in folders for name in os.listdir(folder) if ".ferry-" in name
    )


def victim_file(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir(exist_ok=True)
    victim = outside / "victim"
    victim.write_bytes(PRECIOUS)
    os.chmod(victim, 0o640)
    return victim


def plant(path, kind: str, victim=None) -> None:
    """Put a ``kind`` of thing at ``path``: a regular file of junk, a FIFO, or a link to ``victim``."""
    if kind == "file":
        path.write_bytes(b'{"format":2,"identity":{"source":"s3://other/obj"')  # a torn write
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "symlink":
        os.symlink(victim, path)
    elif kind == "dangling-symlink":
        os.symlink(path.parent / "nowhere" / "at-all", path)
    elif kind == "hard-link":
        os.link(victim, path)
    else:
        raise AssertionError(kind)


# =============================================================================================
# Leftovers at the tracker's names are removed even when there is no tracker to load.
#
# A one-stream download writes no tracker, and when it finds none it removes nothing up front
# (a bulk run saves the syscalls): what a killed run left at <tracker>.new, or a dangling link
# at <tracker>, must still be found and removed, not survive every later successful run.
# How it happens without anyone planting anything: a ranged run is killed inside its first
# tracker write (after <tracker>.new is written, before the rename), and the temp file is gone
# by the rerun: the destination folder is a tmpfs that a reboot emptied while state_dir is on
# disk, or someone removed the *.ferry-tmp. The object is then small (or changed to one), read
# as one stream: <tracker>.new stays forever.
# =============================================================================================
@pytest.mark.parametrize("kind", ["file", "fifo", "dangling-symlink"])
@pytest.mark.parametrize("in_state_dir", [False, True], ids=["beside", "state_dir"])
def test_a_leftover_tracker_rewrite_file_is_removed_by_a_one_stream_download(
    seaweedfs, tmp_path, kind: str, in_state_dir: bool
) -> None:
    hook, url, data = seeded(seaweedfs, 1000)  # one stream: no tracker of its own
    folder = tmp_path / "dest"
    folder.mkdir()
    state = tmp_path / "state"
    state.mkdir()
    dest = folder / "out.bin"
    new = tracker_path(str(dest), str(state) if in_state_dir else None) + ".new"
    plant(type(tmp_path)(new), kind)
    row = download(hook, url, str(dest), opts(state_dir=str(state) if in_state_dir else None))
    assert row.result == OK and dest.read_bytes() == data
    assert leftovers(folder, state) == [], "a killed run's <tracker>.new survives a successful rerun"


def test_a_dangling_link_at_the_tracker_path_is_removed_by_a_one_stream_download(seaweedfs, tmp_path) -> None:
    """A symbolic link at <dest>.ferry-tracker whose target is missing is not taken for 'no
    tracker' (opening through it would say so): it is removed, and its target never created."""
    hook, url, data = seeded(seaweedfs, 1000)
    folder = tmp_path / "dest"
    folder.mkdir()
    target = tmp_path / "outside" / "tracker-target"
    (tmp_path / "outside").mkdir()
    os.symlink(target, folder / "out.bin.ferry-tracker")
    row = download(hook, url, str(folder / "out.bin"), opts())
    assert row.result == OK and (folder / "out.bin").read_bytes() == data
    assert not target.exists(), "the tracker was written through a symbolic link"
    assert leftovers(folder) == [], "a link at the tracker path survives a successful run"


def test_a_leftover_tracker_rewrite_file_is_removed_by_a_single_request_server_side_copy(seaweedfs, tmp_path) -> None:
    """The same on_disk short cut in Checkpoint.delete() hits copies: a one-request CopyObject
    loads its tracker (none: on_disk=False), never writes one, and its delete() now skips the
    unlinks that removed a <copy-tracker>.new a killed parted copy left."""
    from ferry_provider.transfer.copy import CopyOptions, copy, copy_tracker_path

    hook, src, data = seeded(seaweedfs, 1000)
    dst = src + "-copy"
    state = tmp_path / "state"
    state.mkdir()
    plant(type(tmp_path)(copy_tracker_path(src, dst, str(state)) + ".new"), "file")
    row = copy(hook, hook, src, dst, CopyOptions(state_dir=str(state), retry=FAST_RETRY))
    assert row.result == OK and hook.read_bytes(dst) == data
    assert os.listdir(state) == [], "a killed copy's <tracker>.new survives a successful rerun"


# =============================================================================================
# The writer lock's fixed-width pid, and what is planted at the lock path.
# =============================================================================================
def test_a_stale_lock_file_longer_than_16_bytes_still_lets_the_busy_error_name_the_holder(seaweedfs, tmp_path) -> None:
    """writer_lock.py now pwrites 16 bytes over a stale file without truncating it. A stale file
    longer than that keeps its tail: the holder's own lock file then reads
    '<pid>         \\n<old tail>', _read_pid cannot parse it, and a second writer is told only
    'being written by another transfer', without the pid (the error no longer names the holder)."""
    hook, url, _ = seeded(seaweedfs, 1000)
    dest = tmp_path / "out.bin"
    lock = tmp_path / "out.bin.ferry-lock"
    lock.write_bytes(b"31337\nheld by an older ferry on worker-7\n")  # a dead holder's file
    with WriterLock(str(lock), str(dest)):  # this process takes the stale file over
        with pytest.raises(TransferError) as err:
            download(hook, url, str(dest), opts())
        assert isinstance(err.value.cause, DestinationBusyError)
        assert f"(pid {os.getpid()})" in str(err.value), str(err.value)
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("kind", ["symlink", "hard-link", "fifo"])
def test_a_link_at_the_lock_path_is_never_written_through(seaweedfs, tmp_path, kind: str) -> None:
    """A symbolic link, hard link or FIFO at <dest>.ferry-lock is removed, not used as the lock
    file: the pid is never written into a file outside the folder, and a FIFO does not fail the
    download with an error naming neither the lock file nor what is wrong with it."""
    hook, url, data = seeded(seaweedfs, 1000)
    victim = victim_file(tmp_path)
    folder = tmp_path / "dest"
    folder.mkdir()
    plant(folder / "out.bin.ferry-lock", kind, victim)
    try:
        row = download(hook, url, str(folder / "out.bin"), opts())
    except TransferError as exc:
        row = None  # refusing is fine, naming the lock path; writing into the victim is not
        assert "out.bin.ferry-lock" in str(exc), f"an unclear refusal: {exc}"
    assert victim.read_bytes() == PRECIOUS, "the lock's pid was written into a file outside the folder"
    if row is not None:
        assert (folder / "out.bin").read_bytes() == data
    assert leftovers(folder) == []


# =============================================================================================
# A FIFO at the tracker path is neither waited on nor read.
# =============================================================================================
def test_a_fifo_at_the_tracker_path_neither_hangs_nor_is_read_through(seaweedfs, tmp_path) -> None:
    """Checkpoint.load opens <dest>.ferry-tracker with a plain open(): on a FIFO that blocks
    until someone writes, so the download hangs forever while holding the writer lock (and a
    writer could feed it any tracker). It must be refused or replaced, in well under 20 s."""
    hook, url, data = seeded(seaweedfs, 3 * PART)
    fifo = tmp_path / "out.bin.ferry-tracker"
    os.mkfifo(fifo)
    outcome: list[object] = []

    def run() -> None:
        try:
            outcome.append(download(hook, url, str(tmp_path / "out.bin"), opts()))
        except BaseException as exc:
            outcome.append(exc)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(20)
    hung = worker.is_alive()
    if hung:  # unblock the reader: a writer that opens and closes gives it EOF
        with contextlib.suppress(OSError):
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        worker.join(30)
    assert not hung, "the download hung reading a FIFO planted at the tracker path"
    assert outcome and (isinstance(outcome[0], TransferError) or outcome[0].result == OK), outcome
    if not isinstance(outcome[0], TransferError):
        assert (tmp_path / "out.bin").read_bytes() == data


# =============================================================================================
# The O_EXCL create of the temp file, which finds every leftover.
# =============================================================================================
@pytest.mark.parametrize("kind", ["file", "fifo", "symlink", "dangling-symlink", "hard-link"])
@pytest.mark.parametrize("size", [1000, 3 * PART + 7], ids=["one-stream", "parts"])
def test_anything_left_at_the_temp_path_with_no_tracker_is_replaced_never_used(
    seaweedfs, tmp_path, kind: str, size: int
) -> None:
    """with no tracker, _load_checkpoint no longer discards anything; the temp
    file's O_CREAT|O_EXCL|O_NOFOLLOW create meets the leftover, _discard removes it and the
    create is retried once. A link's target is never written, a FIFO never opened."""
    hook, url, data = seeded(seaweedfs, size)
    victim = victim_file(tmp_path)
    folder = tmp_path / "dest"
    folder.mkdir()
    tmp = folder / "out.bin.ferry-tmp"
    if kind == "file":
        tmp.write_bytes(os.urandom(5 * PART))  # longer than the object: a size check must not see it
    else:
        plant(tmp, kind, victim)
    row = download(hook, url, str(folder / "out.bin"), opts())
    assert row.result == OK
    dest = folder / "out.bin"
    assert not dest.is_symlink() and dest.stat().st_nlink == 1 and dest.read_bytes() == data
    assert victim.read_bytes() == PRECIOUS and victim.stat().st_mode & 0o777 == 0o640
    assert leftovers(folder) == []


@pytest.mark.parametrize("kind", ["fifo", "symlink", "hard-link"])
def test_anything_at_the_tracker_rewrite_path_is_replaced_by_a_ranged_download(seaweedfs, tmp_path, kind: str) -> None:
    """Checkpoint._rewrite now unlinks <tracker>.new and creates it with O_EXCL."""
    hook, url, data = seeded(seaweedfs, 3 * PART)
    victim = victim_file(tmp_path)
    folder = tmp_path / "dest"
    folder.mkdir()
    plant(folder / "out.bin.ferry-tracker.new", kind, victim)
    row = download(hook, url, str(folder / "out.bin"), opts())
    assert row.result == OK and (folder / "out.bin").read_bytes() == data
    assert victim.read_bytes() == PRECIOUS and victim.stat().st_nlink == 1
    assert leftovers(folder) == []


def test_a_tracker_that_is_not_json_over_a_planted_temp_link_starts_afresh(seaweedfs, tmp_path) -> None:
    """a tracker is present (on_disk) but unreadable as JSON, and a symbolic link
    sits at the temp path: everything is discarded up front, the victim is untouched."""
    hook, url, data = seeded(seaweedfs, 3 * PART)
    victim = victim_file(tmp_path)
    (tmp_path / "out.bin.ferry-tracker").write_bytes(b"\x00garbage\n")
    os.symlink(victim, tmp_path / "out.bin.ferry-tmp")
    row = download(hook, url, str(tmp_path / "out.bin"), opts())
    assert row.result == OK and (tmp_path / "out.bin").read_bytes() == data
    assert victim.read_bytes() == PRECIOUS
    assert leftovers(tmp_path) == []


def test_a_valid_tracker_over_a_temp_path_that_is_a_hard_link_is_not_resumed(seaweedfs, tmp_path) -> None:
    """a tracker that matches the source and claims parts, beside a temp path
    that is a hard link to a file outside: not resumable, so discarded, never written."""
    hook, url, data = seeded(seaweedfs, 3 * PART)
    pin = hook.head(url)
    victim = victim_file(tmp_path)
    folder = tmp_path / "dest"
    folder.mkdir()
    identity = {"source": url, "size": pin.size, "etag": pin.etag, "version": pin.version, "part_size": PART}
    parts = {0: {"crc32c": int(crc32c_hex(data[:PART]), 16), "size": PART}}
    Checkpoint(str(folder / "out.bin.ferry-tracker"), identity, parts).save()
    os.link(victim, folder / "out.bin.ferry-tmp")
    row = download(hook, url, str(folder / "out.bin"), opts())
    assert row.result == OK and (folder / "out.bin").read_bytes() == data
    assert "resumed" not in row.description
    assert victim.read_bytes() == PRECIOUS and victim.stat().st_nlink == 1
    assert leftovers(folder) == []


@pytest.mark.parametrize("delta", [5, -5])
def test_bytes_of_another_size_than_expected_are_never_published(seaweedfs, http_server, tmp_path, delta: int) -> None:
    """the final size check now takes the size from the fstat of
    _check_still_ours, and below 1 MiB nothing is preallocated. A listing that states another
    size is caught (the store's answer disagrees); a stream of unknown length whose bytes are
    not expected_size reaches that final check. Either way nothing is published or left."""
    hook, url, _ = seeded(seaweedfs, 1000)
    listed = dataclasses.replace(hook.head(url), size=1000 + delta)
    with pytest.raises(TransferError, match=rf"size (was|mismatch: expected) {1000 + delta}"):
        download(hook, url, str(tmp_path / "out.bin"), opts(), listed=listed, exact=True)
    base, root, _ = http_server
    data = os.urandom(3000)
    name = f"{unique_prefix().strip('/')}-sized.bin"
    with open(os.path.join(root, name), "wb") as f:
        f.write(data)
    from ferry_provider.hooks.http import FerryHTTPHook

    chunked = f"{base}/chunked/{name}"
    with pytest.raises(TransferError, match=rf"size mismatch: expected {3000 + delta} bytes, got 3000"):
        download(FerryHTTPHook(), chunked, str(tmp_path / "chunked.bin"), opts(expected_size=3000 + delta))
    assert not (tmp_path / "out.bin").exists() and not (tmp_path / "chunked.bin").exists()
    assert leftovers(tmp_path) == []


# =============================================================================================
# The one-lstat destination check and the skipped makedirs.
# =============================================================================================
@pytest.mark.parametrize(
    "layout, culprit",
    [
        ("parent-is-a-file", "parent"),
        ("parent-is-a-dangling-symlink", "parent"),
        ("parent-is-a-symlink-to-a-file", "parent"),
        ("grandparent-is-a-file", "grandparent"),
        ("dest-is-a-dangling-symlink", "dangling symbolic link"),
        ("dest-is-a-fifo", "is not a regular file"),
        ("dest-is-a-symlink-to-a-fifo", "is not a regular file"),
    ],
)
def test_destinations_that_cannot_become_a_file_are_refused_naming_the_culprit(
    seaweedfs, tmp_path, layout: str, culprit: str
) -> None:
    """_check_destination_path now does one lstat and returns whether the folder
    exists, skipping os.makedirs then. Every bad shape is still refused, naming what is wrong,
    and nothing is created (no lock file, no folder)."""
    hook, url, _ = seeded(seaweedfs, 10)
    root = tmp_path / "root"
    root.mkdir()
    a_file = root / "a-file"
    a_file.write_bytes(b"x")
    if layout == "parent-is-a-file":
        dest, named = a_file / "out.bin", a_file
    elif layout == "parent-is-a-dangling-symlink":
        os.symlink(root / "missing", root / "dir")
        dest, named = root / "dir" / "out.bin", root / "dir"
    elif layout == "parent-is-a-symlink-to-a-file":
        os.symlink(a_file, root / "dir")
        dest, named = root / "dir" / "out.bin", root / "dir"
    elif layout == "grandparent-is-a-file":
        dest, named = a_file / "sub" / "out.bin", a_file
    elif layout == "dest-is-a-dangling-symlink":
        os.symlink(root / "missing", root / "out.bin")
        dest, named = root / "out.bin", root / "missing"
    elif layout == "dest-is-a-fifo":
        os.mkfifo(root / "out.bin")
        dest, named = root / "out.bin", root / "out.bin"
    else:
        os.mkfifo(root / "fifo")
        os.symlink(root / "fifo", root / "out.bin")
        dest, named = root / "out.bin", root / "out.bin"
    before = sorted(os.listdir(root))
    with pytest.raises(TransferError) as err:
        download(hook, url, str(dest), opts(), exact=True)
    assert isinstance(err.value.cause, InvalidArgumentError), repr(err.value.cause)
    message = str(err.value)
    assert repr(str(named)) in message, message
    if culprit not in ("parent", "grandparent"):
        assert culprit in message, message
    else:
        assert "is not a directory" in message, message
    assert sorted(os.listdir(root)) == before, "something was created beside a refused destination"
    assert not (root / "missing").exists()


def test_a_parent_that_is_a_symlink_to_a_folder_is_used_and_missing_parents_are_made(seaweedfs, tmp_path) -> None:
    """the folder that exists (through a link) skips makedirs; a missing one is made."""
    hook, url, data = seeded(seaweedfs, 1000)
    real = tmp_path / "real"
    real.mkdir()
    os.symlink(real, tmp_path / "via")
    assert download(hook, url, str(tmp_path / "via" / "out.bin"), opts(), exact=True).result == OK
    assert (real / "out.bin").read_bytes() == data and not (real / "out.bin").is_symlink()
    assert download(hook, url, str(tmp_path / "new" / "deeper" / "out.bin"), opts(), exact=True).result == OK
    assert (tmp_path / "new" / "deeper" / "out.bin").read_bytes() == data
    assert leftovers(real, tmp_path / "new" / "deeper") == []


# =============================================================================================
# RetryPolicy.run's bare first attempt, replayed into tenacity.
# =============================================================================================
@pytest.mark.parametrize("attempts", [1, 2, 3])
def test_a_download_failing_every_get_makes_exactly_attempts_requests(s3_proxy, tmp_path, attempts: int) -> None:
    """every GET answers 503; the proxy counts the requests (botocore retries
    nothing: one attempt per call). Exactly ``attempts``, the message says so, nothing is left."""
    via_proxy, direct, proxy = s3_proxy
    url, _ = put_object(direct, 1000)
    listed = direct.head(url)
    proxy.faults.error_status, proxy.faults.error_times = 503, 1000
    retry = RetryPolicy(attempts=attempts, initial_wait=0.01, max_wait=0.05)
    with pytest.raises(TransferError, match=rf": download: gave up after {attempts} attempts"):
        download(via_proxy, url, str(tmp_path / "out.bin"), opts(retry=retry), listed=listed)
    assert [r.status for r in proxy.records if r.method == "GET"] == [503] * attempts
    assert leftovers(tmp_path) == [] and not (tmp_path / "out.bin").exists()


def test_a_first_attempt_failing_for_good_is_not_retried(s3_proxy, tmp_path) -> None:
    """a 403 on the first GET is not transient: one request, no 'gave up'."""
    via_proxy, direct, proxy = s3_proxy
    url, _ = put_object(direct, 1000)
    listed = direct.head(url)
    proxy.faults.error_status, proxy.faults.error_times = 403, 1000
    proxy.faults.error_body = b"<Error><Code>AccessDenied</Code><Message>no</Message></Error>"
    with pytest.raises(TransferError) as err:
        download(via_proxy, url, str(tmp_path / "out.bin"), opts(), listed=listed)
    assert "gave up" not in str(err.value)
    assert len([r for r in proxy.records if r.method == "GET"]) == 1
    assert leftovers(tmp_path) == [] and not (tmp_path / "out.bin").exists()


def test_retry_policy_counts_the_bare_first_attempt_and_honours_stop_and_retry_after() -> None:
    """the replayed first failure counts as attempt 1; its Retry-After sets the
    first wait; a stop event set during the first attempt ends the retries at the first wait."""
    calls: list[float] = []

    def once_then_ok() -> str:
        calls.append(time.monotonic())
        if len(calls) == 1:
            raise TransientError("busy", retry_after=0.3)
        return "ok"

    assert RetryPolicy(attempts=2, initial_wait=0.01, max_wait=1).run(once_then_ok, what="x") == "ok"
    assert len(calls) == 2 and calls[1] - calls[0] >= 0.29

    count = 0

    def down() -> None:
        nonlocal count
        count += 1
        raise TransientError("down")

    with pytest.raises(TransientError, match=r"^p: gave up after 1 attempts: down$"):
        RetryPolicy(attempts=1).run(down, what="p")
    assert count == 1

    stop = threading.Event()

    def down_and_stopping() -> None:
        nonlocal count
        count += 1
        stop.set()  # the transfer failed elsewhere while this attempt ran
        raise TransientError("down")

    count = 0
    started = time.monotonic()
    with pytest.raises(Stopped):
        RetryPolicy(attempts=5, initial_wait=5, max_wait=5).run(down_and_stopping, what="p", stop=stop)
    assert count == 1 and time.monotonic() - started < 2


def test_a_stale_lock_file_of_at_most_16_bytes_is_taken_over_and_removed(seaweedfs, tmp_path) -> None:
    """the fixed-width pid covers a dead holder's shorter pid line."""
    hook, url, data = seeded(seaweedfs, 1000)
    lock = tmp_path / "out.bin.ferry-lock"
    lock.write_bytes(b"4194303999\n")
    with WriterLock(str(lock), "d"):
        assert lock.read_bytes().decode().strip() == str(os.getpid())  # no digit of the stale pid left
        with pytest.raises(DestinationBusyError, match=rf"\(pid {os.getpid()}\)"):
            WriterLock(str(lock), "d").acquire()
    assert download(hook, url, str(tmp_path / "out.bin"), opts()).result == OK
    assert (tmp_path / "out.bin").read_bytes() == data
    assert leftovers(tmp_path) == []
