"""Copies between stores (issue #12), against real servers: SeaweedFS (two, with different
credentials), the GCS emulator and the HTTP range server, with faults only through the real proxy.

What every successful copy must show: the destination holds exactly the source's bytes, its stored
CRC32C is that of those bytes (and the row's), and nothing is left behind: no multipart upload
under the destination prefix, no temporary GCS components, no tracker in ``state_dir``.

The engine is imported inside the tests, so this module collects before the engine exists.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest

from ferry_provider.hooks.errors import FerryError, InvalidArgumentError
from ferry_provider.hooks.gcs import FerryGCSHook
from ferry_provider.hooks.http import FerryHTTPHook
from ferry_provider.hooks.s3 import FerryS3Hook
from ferry_provider.transfer.checkpoint import Checkpoint
from ferry_provider.transfer.retry import RetryPolicy
from tests.conftest import (
    GCS_CONN,
    PROXY_BUCKET,
    S3_B_CONN,
    S3_CONN,
    make_gcs_bucket,
    make_s3_bucket,
)
from tests.servers.fault_proxy import FaultProxy
from tests.stores import MiB, crc32c_hex, unique_prefix

S3_BUCKET = "ferry-copy"  # on SeaweedFS A (and, by the same name, on B)
GCS_BUCKET = "ferry-copy"
COMPONENTS = ".ferry/tmp/"  # where GCS temporary components live, per bucket
PART = 5 * MiB  # S3's minimum part: with a 5 MiB threshold, small objects make many parts
FAST_RETRY = RetryPolicy(attempts=3, initial_wait=0.05, max_wait=0.2)
BIG = 100 * MiB + 12345  # the pipeline's large objects: many parts, an odd tail
CONTENT_TYPE = "application/x-ferry-copy"
METADATA = {"origin": "copy-test"}
FERRY = [sys.executable, "-m", "ferry_provider.cli"]
NOT_FOUND = re.compile(r"(?i)not found|does not exist|no such|\b404\b")
ONTO_ITSELF = re.compile(r"(?i)itself|the same object|same as the source|are the same")


# -- data, stores and helpers -----------------------------------------------------------------
@pytest.fixture(scope="module")
def big() -> bytes:
    """The one large payload of this module (generated once: the machine is small)."""
    return os.urandom(BIG)


@pytest.fixture
def s3a(seaweedfs) -> FerryS3Hook:
    make_s3_bucket(seaweedfs, S3_BUCKET)
    return FerryS3Hook(S3_CONN)


@pytest.fixture
def s3b(seaweedfs_b) -> FerryS3Hook:
    hook = FerryS3Hook(S3_B_CONN)
    with contextlib.suppress(hook.client.exceptions.BucketAlreadyOwnedByYou):
        hook.client.create_bucket(Bucket=S3_BUCKET)
    return hook


@pytest.fixture
def gcs(gcs_endpoint) -> FerryGCSHook:
    make_gcs_bucket(gcs_endpoint, GCS_BUCKET)
    return FerryGCSHook(GCS_CONN)


@pytest.fixture
def gcs_proxy(gcs_endpoint, monkeypatch) -> Iterator[tuple[FerryGCSHook, FerryGCSHook, FaultProxy]]:
    """(hook through the proxy, direct hook, proxy) on the GCS emulator."""
    make_gcs_bucket(gcs_endpoint, GCS_BUCKET)
    proxy = FaultProxy(gcs_endpoint)
    url = proxy.start()
    conn = {"conn_type": "ferry_gcs", "extra": {"endpoint_url": url, "anonymous": True}}
    monkeypatch.setenv("AIRFLOW_CONN_FERRY_PROXY_GCS", json.dumps(conn))
    try:
        yield FerryGCSHook("ferry_proxy_gcs"), FerryGCSHook(GCS_CONN), proxy
    finally:
        proxy.stop()


def options(state_dir: str, **kw):
    from ferry_provider.transfer.copy import CopyOptions

    kw.setdefault("parallelism", 4)
    kw.setdefault("retry", FAST_RETRY)
    return CopyOptions(state_dir=state_dir, **kw)


def run_copy(src_hook, dst_hook, src: str, dst: str, state_dir: str, **kw):
    from ferry_provider.transfer.copy import copy

    return copy(src_hook, dst_hook, src, dst, options(state_dir, **kw))


def failed_copy(src_hook, dst_hook, src: str, dst: str, state_dir: str, **kw):
    """Run a copy that must fail; return its TransferError (which carries the error row)."""
    from ferry_provider.transfer.manifest import TransferError

    with pytest.raises(TransferError) as caught:
        run_copy(src_hook, dst_hook, src, dst, state_dir, **kw)
    row = caught.value.row
    assert row.result == "error" and row.description, row
    return caught.value


def seed(hook, url: str, data: bytes) -> str:
    hook.put(url, data, content_type=CONTENT_TYPE, metadata=dict(METADATA), crc32c=crc32c_hex(data))
    return url


def exists(hook, url: str) -> bool:
    try:
        hook.head(url)
    except FerryError as exc:
        assert NOT_FOUND.search(str(exc)), exc
        return False
    return True


def assert_nothing_left(hook, prefix: str, state_dir: str, expected: set[str]) -> None:
    """Under ``prefix`` only ``expected`` objects; no multipart upload there; no temporary
    component in the bucket; no tracker (no file at all) in ``state_dir``."""
    assert {o.url for o in hook.list(prefix)} == expected
    if hook.capabilities.multipart_upload:
        assert list(hook.list_multipart_uploads(prefix)) == []
    if hook.capabilities.can_compose:
        bucket = hook.parse(prefix).bucket
        assert [o.url for o in hook.list(f"gs://{bucket}/{COMPONENTS}")] == []
    assert os.listdir(state_dir) == []


def assert_copied(row, dst_hook, dst: str, data: bytes) -> None:
    """The row says OK, and the destination holds the bytes with their CRC32C stored."""
    assert row.result == "OK", row
    assert row.source_size == len(data)
    assert row.crc32c == crc32c_hex(data)
    assert "crc32c" in row.description, row.description  # what proved the copy
    assert dst_hook.read_bytes(dst) == data
    assert dst_hook.head(dst).crc32c == crc32c_hex(data)


def part_numbers(proxy: FaultProxy, answered: bool = True) -> list[int]:
    """Part numbers of the UploadPart / UploadPartCopy requests the proxy saw (2xx answers only
    when ``answered``), in order."""
    return [
        int(parse_qs(urlsplit(r.path).query)["partNumber"][0])
        for r in proxy.records
        if r.method == "PUT" and "partNumber=" in r.path and (not answered or 200 <= r.status < 300)
    ]


def writes(proxy: FaultProxy) -> list[tuple[str, str]]:
    return [(m, p) for m, p in proxy.begun if m in ("PUT", "POST", "DELETE", "PATCH")]


def tracked_parts(state_dir: str) -> set[int]:
    """1-based part numbers recorded by any tracker in ``state_dir`` (trackers the checkpoint
    format cannot read count none)."""
    done: set[int] = set()
    for name in os.listdir(state_dir):
        with contextlib.suppress(OSError, ValueError, AttributeError):  # e.g. the writer's lock file
            done |= {index + 1 for index in Checkpoint.peek(os.path.join(state_dir, name)).parts}
    return done


def is_bad_input(exc: BaseException) -> bool:
    """Bad input: an InvalidArgumentError, or a TransferError caused by one (the CLI's exit 2)."""
    return isinstance(exc, InvalidArgumentError) or isinstance(getattr(exc, "cause", None), InvalidArgumentError)


def ferry(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*FERRY, *argv], capture_output=True, text=True, timeout=300, env=os.environ.copy())


def one_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, text
    assert "Traceback" not in text
    return lines[0]


# -- the second store -------------------------------------------------------------------------
def test_the_second_seaweedfs_is_another_store(seaweedfs, seaweedfs_b) -> None:
    """B runs apart from A and refuses A's credentials: a copy between them cannot be server-side."""
    assert seaweedfs_b.url != seaweedfs.url
    assert (seaweedfs_b.access_key, seaweedfs_b.secret_key) != (seaweedfs.access_key, seaweedfs.secret_key)
    b = FerryS3Hook(S3_B_CONN)
    with contextlib.suppress(b.client.exceptions.BucketAlreadyOwnedByYou):
        b.client.create_bucket(Bucket=S3_BUCKET)
    url = f"s3://{S3_BUCKET}/{unique_prefix()}b-only.bin"
    b.put(url, b"on B")
    assert b.read_bytes(url) == b"on B"
    import boto3

    with_a_keys = boto3.client(
        "s3",
        endpoint_url=seaweedfs_b.url,
        aws_access_key_id=seaweedfs.access_key,
        aws_secret_access_key=seaweedfs.secret_key,
        region_name=seaweedfs.region,
    )
    with pytest.raises(with_a_keys.exceptions.ClientError, match="InvalidAccessKeyId"):
        with_a_keys.list_objects_v2(Bucket=S3_BUCKET)


# -- S3 -> S3 on one store: server-side -------------------------------------------------------
@pytest.mark.parametrize(
    "size",
    [0, 1, 3 * MiB + 5, PART, PART + 1, 6 * PART + 7],
    ids=["0B", "1B", "below-threshold", "at-threshold", "threshold+1", "7-parts"],
)
def test_s3_server_side_copy(s3_proxy, state_dir, size: int) -> None:
    """The same hook on both sides: CopyObject up to the threshold, parallel UploadPartCopy above
    it; no byte of the object passes through the worker, type and metadata are carried over."""
    via_proxy, direct, proxy = s3_proxy
    prefix = f"s3://{PROXY_BUCKET}/{unique_prefix()}"
    data = os.urandom(size)
    src = seed(direct, prefix + "src.bin", data)
    dst = prefix + "dst.bin"
    parts = math.ceil(size / PART) if size > PART else 0
    proxy.faults.request_delay = 0.1 if parts else 0.0  # parts overlap long enough to be seen
    in_flight = []

    def overlapping(p: FaultProxy) -> bool:
        begun = p.begun_count("PUT", "partNumber=")
        in_flight.append(begun - len(part_numbers(p, answered=False)))
        return max(in_flight) >= 2

    with proxy_watch(proxy, overlapping) as saw_overlap:
        row = run_copy(
            via_proxy, via_proxy, src, dst, state_dir, part_size=PART, multipart_copy_threshold=PART, parallelism=4
        )
    assert_copied(row, direct, dst, data)
    assert "server-side" in row.description and row.bytes_transferred == 0
    assert proxy.body_bytes("GET") == 0  # the object was never read by the worker...
    assert sum(r.request_bytes for r in proxy.records) < 64 * 1024  # ...nor sent to the store
    info = direct.head(dst)
    assert info.content_type == CONTENT_TYPE and info.metadata == METADATA
    if parts:
        assert sorted(part_numbers(proxy)) == list(range(1, parts + 1))
        assert row.upload_id and saw_overlap(), f"parts never ran in parallel: {max(in_flight, default=0)}"
    else:
        assert [m for m, _ in writes(proxy)] == ["PUT"] and part_numbers(proxy) == []  # one CopyObject
    assert direct.read_bytes(src) == data  # a copy, not a move
    assert_nothing_left(direct, prefix, state_dir, {src, dst})


@contextlib.contextmanager
def proxy_watch(proxy: FaultProxy, predicate) -> Iterator:
    """Evaluate ``predicate`` on every change the proxy sees while the block runs; yield a
    callable telling whether it ever held."""
    held = threading.Event()
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            if proxy.wait_until(lambda p: done.is_set() or predicate(p), timeout=1.0) and not done.is_set():
                held.set()
                return

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        yield held.is_set
    finally:
        done.set()
        proxy.release_stalls()  # wakes the watcher's wait
        watcher.join(5)


def test_two_hooks_on_one_connection_copy_server_side(s3_proxy, state_dir) -> None:
    """Not the same hook object, but the same endpoint and credentials: still server-side."""
    _, direct, proxy = s3_proxy
    prefix = f"s3://{PROXY_BUCKET}/{unique_prefix()}"
    data = os.urandom(2 * PART + 3)
    src = seed(direct, prefix + "src.bin", data)
    dst = prefix + "dst.bin"
    row = run_copy(
        FerryS3Hook("ferry_proxy_s3"),
        FerryS3Hook("ferry_proxy_s3"),
        src,
        dst,
        state_dir,
        part_size=PART,
        multipart_copy_threshold=PART,
    )
    assert_copied(row, direct, dst, data)
    assert "server-side" in row.description and row.bytes_transferred == 0
    assert proxy.body_bytes("GET") == 0 and sorted(part_numbers(proxy)) == [1, 2, 3]
    assert_nothing_left(direct, prefix, state_dir, {src, dst})


def copy_within(s3a, state_dir: str, data: bytes, check_hashes: str, *, source_crc32c: bool):
    """``data`` written to a fresh prefix of one bucket (with or without a stored CRC32C) and
    copied server-side beside it, in PART-sized part copies above PART; (prefix, src, dst, row)."""
    prefix = f"s3://{S3_BUCKET}/{unique_prefix()}"
    src, dst = prefix + "src.bin", prefix + "dst.bin"
    if source_crc32c:
        seed(s3a, src, data)
    else:
        s3a.put(src, data)
    row = run_copy(
        s3a, s3a, src, dst, state_dir, part_size=PART, multipart_copy_threshold=PART, check_hashes=check_hashes
    )
    return prefix, src, dst, row


@pytest.mark.parametrize("check_hashes", ["if_fast_else_fail", "always"])
@pytest.mark.parametrize("size", [3 * MiB, 3 * PART + 1], ids=["CopyObject", "UploadPartCopy"])
def test_server_side_copy_of_a_source_that_keeps_no_crc32c(s3a, state_dir, size: int, check_hashes: str) -> None:
    """A source written without a checksum. By default the row may say only the size was
    verified, but any CRC32C it or the store gives is that of the bytes; with
    check_hashes='always' the copy must be proved by its CRC32C."""
    data = os.urandom(size)
    prefix, src, dst, row = copy_within(s3a, state_dir, data, check_hashes, source_crc32c=False)
    assert s3a.head(src).crc32c is None  # the premise: nothing stored to compare with
    assert row.result == "OK" and row.description.startswith("server-side"), row
    assert s3a.read_bytes(dst) == data
    if check_hashes == "always":
        assert row.crc32c == crc32c_hex(data) and "crc32c" in row.description, row
        # CopyObject asks for a CRC32C of the copy; SeaweedFS computes none when the source has
        # none (S3 does), so the stored value may be missing, never wrong.
        assert s3a.head(dst).crc32c in (None, crc32c_hex(data))
    else:
        assert row.crc32c in ("", crc32c_hex(data)) and s3a.head(dst).crc32c in (None, crc32c_hex(data))
    assert_nothing_left(s3a, prefix, state_dir, {src, dst})


@pytest.mark.parametrize("check_hashes", ["if_fast_else_fail", "never"])
def test_server_side_part_copies_ask_the_store_for_a_crc32c_unless_never(s3a, state_dir, check_hashes: str) -> None:
    """By default the store computes the copy's full-object CRC32C, which proves it against the
    source's; with check_hashes='never' the store is not asked (on SeaweedFS asking doubles
    the time of a part copy), the copy keeps no CRC32C and the row says only the size was checked."""
    data = os.urandom(3 * PART + 1)
    prefix, src, dst, row = copy_within(s3a, state_dir, data, check_hashes, source_crc32c=True)
    assert row.result == "OK" and row.description.startswith("server-side, 4 part copies"), row
    assert s3a.read_bytes(dst) == data
    if check_hashes == "never":
        assert s3a.head(dst).crc32c is None and row.crc32c == ""
        assert "size verified (check_hashes='never')" in row.description, row
    else:
        assert s3a.head(dst).crc32c == crc32c_hex(data) == row.crc32c
        assert "verified size and crc32c" in row.description, row
    assert_nothing_left(s3a, prefix, state_dir, {src, dst})


def test_server_side_copy_between_buckets(seaweedfs, s3a, state_dir) -> None:
    make_s3_bucket(seaweedfs, PROXY_BUCKET)
    prefix = unique_prefix()
    data = os.urandom(2 * PART + 1)
    src = seed(s3a, f"s3://{PROXY_BUCKET}/{prefix}src.bin", data)
    dst = f"s3://{S3_BUCKET}/{prefix}dst.bin"
    row = run_copy(s3a, s3a, src, dst, state_dir, part_size=PART, multipart_copy_threshold=PART)
    assert_copied(row, s3a, dst, data)
    assert row.description.startswith("server-side") and row.bytes_transferred == 0
    assert_nothing_left(s3a, f"s3://{S3_BUCKET}/{prefix}", state_dir, {dst})


def test_a_destination_ending_in_a_slash_takes_the_source_name(s3a, state_dir) -> None:
    prefix = f"s3://{S3_BUCKET}/{unique_prefix()}"
    data = os.urandom(1000)
    src = seed(s3a, prefix + "in/name.bin", data)
    row = run_copy(s3a, s3a, src, prefix + "out/", state_dir)
    assert row.destination == prefix + "out/name.bin"
    assert_copied(row, s3a, prefix + "out/name.bin", data)


def test_an_identical_destination_is_skipped_and_no_clobber_kept(s3a, s3b, state_dir) -> None:
    prefix = unique_prefix()
    data = os.urandom(PART + 1)
    src = seed(s3a, f"s3://{S3_BUCKET}/{prefix}src.bin", data)
    dst = f"s3://{S3_BUCKET}/{prefix}dst.bin"
    assert run_copy(s3a, s3b, src, dst, state_dir, part_size=PART).result == "OK"
    again = run_copy(s3a, s3b, src, dst, state_dir, part_size=PART)
    assert again.result == "skip" and again.bytes_transferred == 0 and again.crc32c == crc32c_hex(data)
    other = seed(s3a, f"s3://{S3_BUCKET}/{prefix}other.bin", os.urandom(100))
    kept = run_copy(s3a, s3b, other, dst, state_dir, no_clobber=True)
    assert kept.result == "skip" and "no_clobber" in kept.description
    assert s3b.read_bytes(dst) == data
    assert_nothing_left(s3b, f"s3://{S3_BUCKET}/{prefix}", state_dir, {dst})


@pytest.mark.parametrize("size", [3 * MiB, 3 * PART + 1], ids=["CopyObject", "UploadPartCopy"])
def test_s3_server_side_copy_sets_the_content_type_and_metadata_given(s3a, state_dir, size: int) -> None:
    prefix = f"s3://{S3_BUCKET}/{unique_prefix()}"
    data = os.urandom(size)
    src = seed(s3a, prefix + "src.bin", data)
    dst = prefix + "dst.bin"
    row = run_copy(
        s3a,
        s3a,
        src,
        dst,
        state_dir,
        part_size=PART,
        multipart_copy_threshold=PART,
        content_type="text/plain",
        metadata={"set": "by-copy"},
    )
    assert_copied(row, s3a, dst, data)
    info = s3a.head(dst)
    assert info.content_type == "text/plain" and info.metadata == {"set": "by-copy"}
    assert s3a.head(src).metadata == METADATA  # the source is untouched
    assert_nothing_left(s3a, prefix, state_dir, {src, dst})


def test_server_side_never_sends_the_bytes_through_the_worker(s3_proxy, state_dir) -> None:
    via_proxy, direct, proxy = s3_proxy
    prefix = f"s3://{PROXY_BUCKET}/{unique_prefix()}"
    data = os.urandom(3 * PART + 11)
    src = seed(direct, prefix + "src.bin", data)
    dst = prefix + "dst.bin"
    row = run_copy(via_proxy, via_proxy, src, dst, state_dir, part_size=PART, server_side="never")
    assert_copied(row, direct, dst, data)
    assert "pipeline" in row.description and row.bytes_transferred == len(data)
    assert proxy.body_bytes("GET") == len(data)  # each byte read once, in ranges...
    assert len([r for r in proxy.records if r.method == "GET" and r.range]) == 4
    assert sorted(part_numbers(proxy)) == [1, 2, 3, 4]  # ...and uploaded as parts
    assert sum(r.request_bytes for r in proxy.records if "partNumber=" in r.path) == len(data)
    assert direct.head(dst).content_type == CONTENT_TYPE and direct.head(dst).metadata == METADATA
    assert_nothing_left(direct, prefix, state_dir, {src, dst})


def test_server_side_never_on_gcs_reads_and_composes(gcs_proxy, state_dir) -> None:
    via_proxy, direct, proxy = gcs_proxy
    prefix = f"gs://{GCS_BUCKET}/{unique_prefix()}"
    data = os.urandom(3 * MiB + 11)
    src = seed(direct, prefix + "src.bin", data)
    dst = prefix + "dst.bin"
    row = run_copy(via_proxy, via_proxy, src, dst, state_dir, part_size=MiB, server_side="never")
    assert_copied(row, direct, dst, data)
    assert "pipeline" in row.description and row.bytes_transferred == len(data)
    assert not [p for _, p in proxy.begun if "/rewriteTo/" in p]
    assert sum(r.body_bytes for r in proxy.records if r.method == "GET" and r.range) == len(data)
    assert direct.head(dst).content_type == CONTENT_TYPE
    assert_nothing_left(direct, prefix, state_dir, {src, dst})


def test_an_unknown_server_side_mode_is_refused() -> None:
    from ferry_provider.transfer.copy import CopyOptions

    with pytest.raises(InvalidArgumentError, match="server_side"):
        CopyOptions(server_side="sometimes")


# -- GCS -> GCS: rewrite ----------------------------------------------------------------------
@pytest.mark.parametrize("size", [0, 1, 3 * MiB + 5], ids=["0B", "1B", "3MiB"])
def test_gcs_server_side_copy_is_a_rewrite(gcs_proxy, state_dir, size: int) -> None:
    via_proxy, direct, proxy = gcs_proxy
    prefix = f"gs://{GCS_BUCKET}/{unique_prefix()}"
    data = os.urandom(size)
    src = seed(direct, prefix + "src.bin", data)
    dst = prefix + "dst.bin"
    row = run_copy(via_proxy, via_proxy, src, dst, state_dir)
    assert_copied(row, direct, dst, data)
    assert "server-side" in row.description and row.bytes_transferred == 0
    assert any(m == "POST" and "/rewriteTo/" in p for m, p in proxy.begun), proxy.begun
    assert proxy.body_bytes("GET", "alt=media") == 0 and proxy.body_bytes("GET", "/download/") == 0
    assert not [p for _, p in proxy.begun if "/upload/" in p]
    info = direct.head(dst)
    assert info.content_type == CONTENT_TYPE and info.metadata.get("origin") == "copy-test"
    assert direct.read_bytes(src) == data
    assert_nothing_left(direct, prefix, state_dir, {src, dst})


def test_gcs_server_side_copy_sets_the_content_type_and_metadata_given(gcs, state_dir) -> None:
    prefix = f"gs://{GCS_BUCKET}/{unique_prefix()}"
    data = os.urandom(MiB + 1)
    src = seed(gcs, prefix + "src.bin", data)
    dst = prefix + "dst.bin"
    row = run_copy(gcs, gcs, src, dst, state_dir, content_type="text/plain", metadata={"set": "by-copy"})
    assert_copied(row, gcs, dst, data)
    info = gcs.head(dst)
    assert info.content_type == "text/plain" and info.metadata.get("set") == "by-copy"
    assert "origin" not in info.metadata  # given metadata replaces the source's
    assert_nothing_left(gcs, prefix, state_dir, {src, dst})


# -- across stores: the pipeline --------------------------------------------------------------
ROUTES = ["s3-to-gcs", "gcs-to-s3", "http-to-s3", "s3a-to-s3b"]


def route(request, name: str) -> tuple[object, object, str, object]:
    """(source hook, destination hook, destination prefix, writer of a source object)."""
    src_store, dst_store = name.split("-to-")
    hooks = {
        "s3": lambda: request.getfixturevalue("s3a"),
        "s3a": lambda: request.getfixturevalue("s3a"),
        "s3b": lambda: request.getfixturevalue("s3b"),
        "gcs": lambda: request.getfixturevalue("gcs"),
    }
    prefix = unique_prefix()
    scheme = {"s3": "s3", "s3a": "s3", "s3b": "s3", "gcs": "gs"}
    dst_hook = hooks[dst_store]()
    dst_prefix = f"{scheme[dst_store]}://{S3_BUCKET if scheme[dst_store] == 's3' else GCS_BUCKET}/{prefix}"
    if src_store == "http":
        url, root, _ = request.getfixturevalue("http_server")

        def write(key: str, data: bytes) -> str:
            path = os.path.join(root, prefix, key)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as f:
                f.write(data)
            return f"{url}/{prefix}{key}"

        return FerryHTTPHook(), dst_hook, dst_prefix, write
    src_hook = hooks[src_store]()
    src_prefix = f"{scheme[src_store]}://{S3_BUCKET if scheme[src_store] == 's3' else GCS_BUCKET}/{prefix}"
    return src_hook, dst_hook, dst_prefix, lambda key, data: seed(src_hook, src_prefix + key, data)


def http_served(log: str, path: str) -> list[tuple[str, int]]:
    """(Range header, body bytes) of the GETs the HTTP server answered for ``path``."""
    served = []
    with open(log) as f:
        for line in f:
            method, logged, rng, status, sent = line.split()
            if method == "GET" and logged == path and status in ("200", "206"):
                served.append((rng.removeprefix("range="), int(sent)))
    return served


@pytest.mark.parametrize("name", ROUTES)
def test_large_pipeline_copy(request, state_dir, big: bytes, name: str) -> None:
    """>= 100 MiB between different stores: ranged reads feed part uploads, verified end to end."""
    src_hook, dst_hook, dst_prefix, write = route(request, name)
    src = write("big.bin", big)
    dst = dst_prefix + "big.bin"
    part = 8 * MiB
    row = run_copy(src_hook, dst_hook, src, dst, state_dir, part_size=part, parallelism=4)
    assert_copied(row, dst_hook, dst, big)
    assert "pipeline" in row.description and row.bytes_transferred == BIG
    if dst_hook.capabilities.multipart_upload:
        assert row.upload_id
    if name == "http-to-s3":
        _, _, log = request.getfixturevalue("http_server")
        served = http_served(log, urlsplit(src).path)
        assert len(served) >= math.ceil(BIG / part) and all(r != "-" for r, _ in served)  # ranged, in parts
        assert sum(n for _, n in served) == BIG  # each byte read once
    else:
        info = dst_hook.head(dst)
        assert info.content_type == CONTENT_TYPE and info.metadata.get("origin") == "copy-test"
    assert_nothing_left(dst_hook, dst_prefix, state_dir, {dst})  # the source is in another store


@pytest.mark.parametrize("size", [0, 1, 2 * MiB + 3], ids=["0B", "1B", "2MiB"])
def test_small_pipeline_copy(s3a, s3b, state_dir, size: int) -> None:
    prefix = unique_prefix()
    data = os.urandom(size)
    src = seed(s3a, f"s3://{S3_BUCKET}/{prefix}src.bin", data)
    dst = f"s3://{S3_BUCKET}/{prefix}dst.bin"
    row = run_copy(s3a, s3b, src, dst, state_dir, part_size=PART)
    assert_copied(row, s3b, dst, data)
    assert "pipeline" in row.description and row.bytes_transferred == size
    assert s3b.head(dst).content_type == CONTENT_TYPE and s3b.head(dst).metadata == METADATA
    assert_nothing_left(s3b, f"s3://{S3_BUCKET}/{prefix}", state_dir, {dst})


def test_pipeline_copy_sets_the_content_type_and_metadata_given(s3a, gcs, state_dir) -> None:
    prefix = unique_prefix()
    data = os.urandom(3 * MiB + 1)
    src = seed(s3a, f"s3://{S3_BUCKET}/{prefix}src.bin", data)
    dst = f"gs://{GCS_BUCKET}/{prefix}dst.bin"
    row = run_copy(s3a, gcs, src, dst, state_dir, part_size=MiB, content_type="text/plain", metadata={"set": "x"})
    assert_copied(row, gcs, dst, data)
    info = gcs.head(dst)
    assert info.content_type == "text/plain" and info.metadata.get("set") == "x" and "origin" not in info.metadata
    assert_nothing_left(gcs, f"gs://{GCS_BUCKET}/{prefix}", state_dir, {dst})


# -- bad input and missing things -------------------------------------------------------------
@pytest.mark.parametrize("delete_source", [False, True], ids=["copy", "move"])
@pytest.mark.parametrize("hooks", ["same-hook", "two-hooks"])
def test_a_copy_onto_itself_is_refused_and_changes_nothing(
    s3_proxy, state_dir, hooks: str, delete_source: bool
) -> None:
    via_proxy, direct, proxy = s3_proxy
    url = seed(direct, f"s3://{PROXY_BUCKET}/{unique_prefix()}self.bin", data := os.urandom(PART + 1))
    src_hook, dst_hook = (via_proxy, via_proxy) if hooks == "same-hook" else (via_proxy, FerryS3Hook("ferry_proxy_s3"))
    from ferry_provider.transfer.copy import copy

    with pytest.raises(FerryError) as caught:
        copy(src_hook, dst_hook, url, url, options(state_dir, delete_source=delete_source))
    exc = caught.value
    assert is_bad_input(exc), repr(exc)
    assert exc.row.result == "error" and ONTO_ITSELF.search(exc.row.description), exc.row
    assert writes(proxy) == []  # refused before any request that writes
    assert direct.read_bytes(url) == data and direct.head(url).metadata == METADATA
    assert os.listdir(state_dir) == []


def test_an_http_destination_is_refused(s3a, http_server, state_dir) -> None:
    url, _, _ = http_server
    src = seed(s3a, f"s3://{S3_BUCKET}/{unique_prefix()}src.bin", b"data")
    exc = failed_copy(s3a, FerryHTTPHook(), src, f"{url}/x.bin", state_dir)
    assert is_bad_input(exc), repr(exc.cause)
    assert os.listdir(state_dir) == []


def test_a_move_from_a_read_only_source_is_refused_before_copying(s3a, http_server, state_dir) -> None:
    """An HTTP source cannot be deleted: a move from it is bad input, refused before a byte is
    written (not a copy left behind under an error row)."""
    url, root, _ = http_server
    prefix = unique_prefix()
    os.makedirs(os.path.join(root, prefix))
    with open(os.path.join(root, prefix, "src.bin"), "wb") as f:
        f.write(os.urandom(1000))
    dst = f"s3://{S3_BUCKET}/{prefix}dst.bin"
    exc = failed_copy(FerryHTTPHook(), s3a, f"{url}/{prefix}src.bin", dst, state_dir, delete_source=True)
    assert is_bad_input(exc), repr(exc.cause)
    assert_nothing_left(s3a, f"s3://{S3_BUCKET}/{prefix}", state_dir, set())


@pytest.mark.parametrize("kind", ["norange", "chunked"])
def test_an_http_source_without_ranges(s3a, http_server, state_dir, kind: str) -> None:
    """A server that ignores Range is read as one stream; one that states no length is refused
    with a reason (its size cannot be checked)."""
    url, root, _ = http_server
    prefix = unique_prefix()
    data = os.urandom(2 * PART + 3)
    os.makedirs(os.path.join(root, prefix))
    with open(os.path.join(root, prefix, "src.bin"), "wb") as f:
        f.write(data)
    src = f"{url}/{kind}/{prefix}src.bin"
    dst = f"s3://{S3_BUCKET}/{prefix}dst.bin"
    if kind == "chunked":
        exc = failed_copy(FerryHTTPHook(), s3a, src, dst, state_dir, part_size=PART)
        assert "length" in exc.row.description, exc.row.description
        assert_nothing_left(s3a, f"s3://{S3_BUCKET}/{prefix}", state_dir, set())
        return
    row = run_copy(FerryHTTPHook(), s3a, src, dst, state_dir, part_size=PART)
    assert_copied(row, s3a, dst, data)
    assert "pipeline" in row.description and row.bytes_transferred == len(data)
    assert_nothing_left(s3a, f"s3://{S3_BUCKET}/{prefix}", state_dir, {dst})


MISSING = ["s3-server-side", "s3-pipeline", "gcs-server-side", "http-pipeline"]


def endpoints(request, case: str) -> tuple[object, object, str, str]:
    """(source hook, destination hook, source prefix, destination prefix) for a failure case."""
    prefix = unique_prefix()
    a = request.getfixturevalue("s3a")
    if case == "s3-server-side":
        return a, a, f"s3://{S3_BUCKET}/{prefix}", f"s3://{S3_BUCKET}/{prefix}"
    if case == "s3-pipeline":
        return request.getfixturevalue("s3b"), a, f"s3://{S3_BUCKET}/{prefix}", f"s3://{S3_BUCKET}/{prefix}"
    if case == "gcs-server-side":
        g = request.getfixturevalue("gcs")
        return g, g, f"gs://{GCS_BUCKET}/{prefix}", f"gs://{GCS_BUCKET}/{prefix}"
    url, _, _ = request.getfixturevalue("http_server")
    return FerryHTTPHook(), a, f"{url}/{prefix}", f"s3://{S3_BUCKET}/{prefix}"


@pytest.mark.parametrize("case", MISSING)
def test_a_missing_source_is_one_clear_error(request, state_dir, case: str) -> None:
    src_hook, dst_hook, src_prefix, dst_prefix = endpoints(request, case)
    src, dst = src_prefix + "missing.bin", dst_prefix + "dst.bin"
    exc = failed_copy(src_hook, dst_hook, src, dst, state_dir)
    row = exc.row
    assert row.source == src and row.destination == dst
    assert src in row.description and NOT_FOUND.search(row.description), row.description
    assert "gave up" not in row.description  # a 404 is not retried into a vaguer message
    assert_nothing_left(dst_hook, dst_prefix, state_dir, set())


@pytest.mark.parametrize("case", ["s3-server-side", "s3-pipeline", "gcs-server-side"])
def test_a_missing_destination_bucket_is_a_clear_error_and_leaves_nothing(request, state_dir, case: str) -> None:
    src_hook, dst_hook, src_prefix, dst_prefix = endpoints(request, case)
    data = os.urandom(2 * PART + 1)
    src = seed(src_hook, src_prefix + "src.bin", data)
    bucket = f"ferry-no-such-{os.urandom(3).hex()}"
    scheme = dst_prefix.split("://")[0]
    dst = f"{scheme}://{bucket}/dst.bin"
    exc = failed_copy(src_hook, dst_hook, src, dst, state_dir, part_size=PART, multipart_copy_threshold=PART)
    assert bucket in exc.row.description and re.search(
        r"(?i)bucket.*(not exist|not found|no such)|nosuchbucket|\b404\b", exc.row.description
    ), exc.row.description
    assert os.listdir(state_dir) == []
    assert src_hook.read_bytes(src) == data
    with pytest.raises(FerryError):  # and the bucket was not created by the copy
        list(dst_hook.list(f"{scheme}://{bucket}/"))


# -- moves ------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", ["server-side", "pipeline"])
def test_a_move_deletes_the_source_after_the_destination_is_complete(s3_proxy, s3b, state_dir, case: str) -> None:
    via_proxy, direct, proxy = s3_proxy
    prefix = unique_prefix()
    data = os.urandom(2 * PART + 9)
    src = seed(direct, f"s3://{PROXY_BUCKET}/{prefix}src.bin", data)
    if case == "server-side":
        dst_hook, dst = via_proxy, f"s3://{PROXY_BUCKET}/{prefix}dst.bin"
    else:
        dst_hook, dst = s3b, f"s3://{S3_BUCKET}/{prefix}dst.bin"
    row = run_copy(
        via_proxy, dst_hook, src, dst, state_dir, part_size=PART, multipart_copy_threshold=PART, delete_source=True
    )
    assert_copied(row, FerryS3Hook(S3_CONN) if case == "server-side" else s3b, dst, data)
    assert not exists(direct, src)
    # In the order requests began: the source's DELETE is the last request on either object
    # (server-side, both go through the proxy), after the destination was published.
    src_path, dst_path = "/" + src.removeprefix("s3://"), "/" + dst.removeprefix("s3://")
    order = [(m, urlsplit(p).path) for m, p in proxy.begun if urlsplit(p).path in (src_path, dst_path)]
    assert order[-1] == ("DELETE", src_path) and order.count(("DELETE", src_path)) == 1, order
    if case == "server-side":
        assert_nothing_left(direct, f"s3://{PROXY_BUCKET}/{prefix}", state_dir, {dst})
    else:
        assert_nothing_left(s3b, f"s3://{S3_BUCKET}/{prefix}", state_dir, {dst})


@pytest.mark.parametrize("existing", ["identical", "different"])
def test_a_move_onto_an_existing_destination(s3a, s3b, state_dir, existing: str) -> None:
    """An identical destination is proof enough: the move skips the copy and deletes the
    source. A different one kept by no_clobber proves nothing: the source stays."""
    prefix = unique_prefix()
    data = os.urandom(PART + 1)
    src = seed(s3a, f"s3://{S3_BUCKET}/{prefix}src.bin", data)
    dst = f"s3://{S3_BUCKET}/{prefix}dst.bin"
    before = data if existing == "identical" else os.urandom(PART + 1)
    seed(s3b, dst, before)
    clobber = {"no_clobber": existing != "identical"}
    row = run_copy(s3a, s3b, src, dst, state_dir, part_size=PART, delete_source=True, **clobber)
    assert row.result == "skip" and row.bytes_transferred == 0, row
    assert s3b.read_bytes(dst) == before
    assert exists(s3a, src) == (existing != "identical")
    assert_nothing_left(s3b, f"s3://{S3_BUCKET}/{prefix}", state_dir, {dst})


@pytest.mark.parametrize("digest", ["crc32c", "sha256"])
def test_a_pipeline_move_with_a_wrong_expected_digest_publishes_nothing_and_keeps_the_source(
    s3a, s3b, state_dir, digest: str
) -> None:
    prefix = unique_prefix()
    data = os.urandom(2 * PART + 9)
    src = seed(s3a, f"s3://{S3_BUCKET}/{prefix}src.bin", data)
    dst = f"s3://{S3_BUCKET}/{prefix}dst.bin"
    wrong = {"crc32c": "00000000", "sha256": "ab" * 32}[digest]
    exc = failed_copy(
        s3a, s3b, src, dst, state_dir, part_size=PART, delete_source=True, expected_digests={digest: wrong}
    )
    assert digest in exc.row.description and "mismatch" in exc.row.description, exc.row.description
    assert s3a.read_bytes(src) == data
    assert_nothing_left(s3b, f"s3://{S3_BUCKET}/{prefix}", state_dir, set())


@pytest.mark.parametrize("case", ["wrong-expected-digest", "publish-fails"])
def test_a_failed_move_keeps_the_source(s3_proxy, state_dir, case: str) -> None:
    via_proxy, direct, proxy = s3_proxy
    prefix = f"s3://{PROXY_BUCKET}/{unique_prefix()}"
    data = os.urandom(2 * PART + 9)
    src = seed(direct, prefix + "src.bin", data)
    dst = prefix + "dst.bin"
    kw: dict = {"part_size": PART, "multipart_copy_threshold": PART, "delete_source": True, "resume": False}
    if case == "wrong-expected-digest":
        wrong = f"{(int(crc32c_hex(data), 16) ^ 1):08x}"
        kw["expected_digests"] = {"crc32c": wrong}
    else:  # every CompleteMultipartUpload fails: the copy cannot publish
        f = proxy.faults
        f.error_methods, f.only_path, f.error_status, f.error_times = ("POST",), "uploadId=", 500, 10**6
    exc = failed_copy(via_proxy, via_proxy, src, dst, state_dir, **kw)
    if case == "wrong-expected-digest":
        assert "crc32c" in exc.row.description
    assert direct.read_bytes(src) == data
    assert ("DELETE", "/" + src.removeprefix("s3://")) not in proxy.begun
    assert_nothing_left(direct, prefix, state_dir, {src})


# -- faults mid-copy --------------------------------------------------------------------------
FAULTS = ["pipeline-destination-s3", "pipeline-destination-gcs", "pipeline-source-s3", "server-side-s3"]


def faulty(request, case: str) -> dict:
    """A copy of a 6-part object (parallelism 1) with a fault armed past the retry budget once
    two requests of the faulted kind went through: the hooks and URLs, the direct view of the
    destination, what else lives under its prefix, and the proxy that counts what landed."""
    prefix = unique_prefix()
    data = os.urandom(5 * PART + 17)
    s: dict = {"data": data, "part": PART, "beside": set(), "src_view": None}
    if case == "pipeline-destination-gcs":  # temporary components, joined by compose
        b = request.getfixturevalue("s3b")
        via_proxy, direct, proxy = request.getfixturevalue("gcs_proxy")
        s |= {"src_hook": b, "src": seed(b, f"s3://{S3_BUCKET}/{prefix}src.bin", data), "dst_hook": via_proxy}
        s |= {"dst": f"gs://{GCS_BUCKET}/{prefix}dst.bin", "view": direct, "dst_prefix": f"gs://{GCS_BUCKET}/{prefix}"}
        s["part"] = MiB
        methods, only = ("POST", "PUT"), "/upload/"  # component uploads; compose and deletes pass
    else:
        via_proxy, direct, proxy = request.getfixturevalue("s3_proxy")
        on_a = f"s3://{PROXY_BUCKET}/{prefix}"
        if case == "pipeline-destination-s3":
            b = request.getfixturevalue("s3b")
            s |= {"src_hook": b, "src": seed(b, f"s3://{S3_BUCKET}/{prefix}src.bin", data)}
            s |= {"dst_hook": via_proxy, "dst": on_a + "dst.bin", "view": direct, "dst_prefix": on_a}
            methods, only = ("PUT",), "partNumber="
        elif case == "server-side-s3":
            s |= {"src_hook": via_proxy, "src": seed(direct, on_a + "src.bin", data)}
            s |= {"dst_hook": via_proxy, "dst": on_a + "dst.bin", "view": direct, "dst_prefix": on_a}
            s["beside"] = {s["src"]}
            methods, only = ("PUT",), "partNumber="
        else:  # pipeline-source-s3: reads of the source fail
            b = request.getfixturevalue("s3b")
            s |= {"src_hook": via_proxy, "src": seed(direct, on_a + "src.bin", data), "dst_hook": b, "src_view": direct}
            s |= {"dst": f"s3://{S3_BUCKET}/{prefix}dst.bin", "view": b, "dst_prefix": f"s3://{S3_BUCKET}/{prefix}"}
            methods, only = ("GET",), f"{prefix}src.bin"
    f = proxy.faults
    f.error_methods, f.only_path, f.error_status, f.error_times, f.error_after_requests = methods, only, 500, 10**6, 2
    s["proxy"] = proxy
    s["parts"] = math.ceil(len(data) / s["part"])
    s["src_view"] = s["src_view"] or s["src_hook"]  # the source's bytes, read past the proxy's faults
    return s


def landed(case: str, proxy: FaultProxy) -> int:
    """Parts that reached the destination, as the proxy saw them."""
    if case == "pipeline-destination-gcs":
        return sum(1 for r in proxy.records if "/upload/" in r.path and 200 <= r.status < 300)
    if case == "pipeline-source-s3":
        return sum(1 for r in proxy.records if r.method == "GET" and r.range and 200 <= r.status < 300)
    return len(part_numbers(proxy))


@pytest.mark.parametrize("case", FAULTS)
def test_a_failure_mid_copy_without_resume_leaves_nothing(request, state_dir, case: str) -> None:
    s = faulty(request, case)
    multipart = {"part_size": s["part"], "multipart_copy_threshold": PART, "parallelism": 1}
    exc = failed_copy(s["src_hook"], s["dst_hook"], s["src"], s["dst"], state_dir, resume=False, **multipart)
    assert s["proxy"].fired["error"] >= FAST_RETRY.attempts, "the fault never fired"
    assert 1 <= landed(case, s["proxy"]) <= 2, "parts were meant to land before the fault"
    assert exc.row.result == "error"
    assert_nothing_left(s["view"], s["dst_prefix"], state_dir, s["beside"])
    assert s["src_view"].read_bytes(s["src"]) == s["data"]


@pytest.mark.parametrize("case", FAULTS)
def test_a_failure_mid_copy_with_resume_is_finished_by_a_rerun(request, state_dir, case: str) -> None:
    s = faulty(request, case)
    proxy = s["proxy"]
    multipart = {"part_size": s["part"], "multipart_copy_threshold": PART, "parallelism": 1}
    failed_copy(s["src_hook"], s["dst_hook"], s["src"], s["dst"], state_dir, resume=True, **multipart)
    first = landed(case, proxy)
    assert 1 <= first <= 2 and proxy.fired["error"] >= FAST_RETRY.attempts
    assert os.listdir(state_dir), "a resumable failure keeps its tracker"
    proxy.reset()
    # The tracker's parts are taken as they are (for the source-side case, re-reading them to
    # verify would count as reads through the proxy).
    row = run_copy(
        s["src_hook"], s["dst_hook"], s["src"], s["dst"], state_dir, resume=True, verify_on_resume=False, **multipart
    )
    assert_copied(row, s["view"], s["dst"], s["data"])
    assert landed(case, proxy) == s["parts"] - first  # only the parts missing
    if case in ("pipeline-destination-s3", "server-side-s3"):
        assert sorted(part_numbers(proxy)) == list(range(first + 1, s["parts"] + 1))
    assert s["src_view"].read_bytes(s["src"]) == s["data"]
    assert_nothing_left(s["view"], s["dst_prefix"], state_dir, {s["dst"]} | s["beside"])


# -- SIGKILL, then a rerun through the CLI ----------------------------------------------------
@pytest.mark.parametrize("case", ["server-side", "pipeline"])
def test_sigkill_then_rerun_sends_only_the_missing_parts(s3_proxy, s3b, state_dir, case: str) -> None:
    _, direct, proxy = s3_proxy
    prefix = unique_prefix()
    parts = 8
    data = os.urandom(parts * PART)
    dst = f"s3://{PROXY_BUCKET}/{prefix}dst.bin"
    if case == "server-side":
        src = seed(direct, f"s3://{PROXY_BUCKET}/{prefix}src.bin", data)
        conns = ["--conn", "ferry_proxy_s3", "--multipart-copy-threshold", "5MiB"]
    else:
        src = seed(s3b, f"s3://{S3_BUCKET}/{prefix}src.bin", data)
        conns = ["--src-conn", S3_B_CONN, "--dst-conn", "ferry_proxy_s3"]
    argv = ["cp", src, dst, *conns, "--state-dir", state_dir, "-j", "2", "--part-size", "5MiB", "-q"]
    proxy.faults.request_delay = 0.4  # each part takes a while: the kill lands mid-copy
    child = subprocess.Popen([*FERRY, *argv], env=os.environ.copy(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        reached = proxy.wait_until(lambda p: len(part_numbers(p)) >= 3, timeout=120)
    finally:
        child.send_signal(signal.SIGKILL)
        _, err = child.communicate(timeout=30)
    assert reached, err.decode()
    assert proxy.wait_idle(timeout=30)  # the dead client's delayed parts reach the store, or not
    tracked = tracked_parts(state_dir)
    (upload,) = direct.list_multipart_uploads(f"s3://{PROXY_BUCKET}/{prefix}")
    on_server = {p.number for p in direct.list_parts(dst, upload.upload_id)}
    assert len(on_server) >= 3
    proxy.reset()
    rerun = ferry(*argv, "--json")
    assert rerun.returncode == 0, rerun.stderr
    row = json.loads(rerun.stdout)
    sent = part_numbers(proxy, answered=False)
    everything = set(range(1, parts + 1))
    assert len(sent) == len(set(sent)), sent  # each missing part once
    assert everything - on_server <= set(sent) <= everything - tracked, (sent, on_server, tracked)
    assert len(sent) <= parts - 2, f"the rerun resent parts it had: {sent}"
    assert row["upload_id"] == upload.upload_id  # the killed run's upload, finished
    assert direct.read_bytes(dst) == data and direct.head(dst).crc32c == crc32c_hex(data) == row["crc32c"]
    assert list(direct.list_multipart_uploads(f"s3://{PROXY_BUCKET}/{prefix}")) == []
    assert os.listdir(state_dir) == []


# -- the command line -------------------------------------------------------------------------
def test_cli_cp_on_one_store(s3a, state_dir) -> None:
    prefix = f"s3://{S3_BUCKET}/{unique_prefix()}"
    data = os.urandom(MiB + 3)
    src = seed(s3a, prefix + "src.bin", data)
    dst = prefix + "dst.bin"
    out = ferry("cp", src, dst, "--conn", S3_CONN, "--state-dir", state_dir, "-q")
    assert out.returncode == 0, out.stderr
    line = one_line(out.stdout)
    assert line.startswith(f"OK: {src} -> {dst} (0 bytes; ") and "server-side" in line, line
    assert s3a.read_bytes(dst) == data and s3a.head(dst).crc32c == crc32c_hex(data)
    assert_nothing_left(s3a, prefix, state_dir, {src, dst})


def test_cli_mv(s3a, state_dir) -> None:
    prefix = f"s3://{S3_BUCKET}/{unique_prefix()}"
    data = os.urandom(MiB + 3)
    src = seed(s3a, prefix + "src.bin", data)
    dst = prefix + "dst.bin"
    out = ferry("mv", src, dst, "--conn", S3_CONN, "--state-dir", state_dir, "-q", "--json")
    assert out.returncode == 0, out.stderr
    row = json.loads(one_line(out.stdout))
    assert row["result"] == "OK" and row["crc32c"] == crc32c_hex(data)
    assert s3a.read_bytes(dst) == data and not exists(s3a, src)
    assert_nothing_left(s3a, prefix, state_dir, {dst})


def test_cli_cp_between_connections(s3a, s3b, state_dir) -> None:
    prefix = unique_prefix()
    data = os.urandom(PART + 3)
    src = seed(s3b, f"s3://{S3_BUCKET}/{prefix}src.bin", data)
    dst = f"s3://{S3_BUCKET}/{prefix}dst.bin"
    argv = ["cp", src, dst, "--src-conn", S3_B_CONN, "--dst-conn", S3_CONN, "--state-dir", state_dir, "-q"]
    out = ferry(*argv)
    assert out.returncode == 0, out.stderr
    line = one_line(out.stdout)
    assert line.startswith(f"OK: {src} -> {dst} ({len(data)} bytes; ") and "pipeline" in line, line
    assert s3a.read_bytes(dst) == data and s3a.head(dst).crc32c == crc32c_hex(data)
    assert_nothing_left(s3a, f"s3://{S3_BUCKET}/{prefix}", state_dir, {dst})


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["cp", "SRC", "SRC", "--conn", S3_CONN], 2, ONTO_ITSELF.pattern),
        (["mv", "SRC", "SRC", "--conn", S3_CONN], 2, ONTO_ITSELF.pattern),
        (["cp", "SRC", "DST", "--conn", S3_CONN, "--src-conn", S3_CONN], 2, "--conn"),
        (["cp", "MISSING", "DST", "--conn", S3_CONN], 1, "MISSING"),
    ],
    ids=["cp-onto-itself", "mv-onto-itself", "conn-and-src-conn", "missing-source"],
)
def test_cli_refusals_are_one_line(s3a, state_dir, argv: list[str], code: int, message: str) -> None:
    prefix = f"s3://{S3_BUCKET}/{unique_prefix()}"
    data = os.urandom(1000)
    urls = {"SRC": seed(s3a, prefix + "src.bin", data), "DST": prefix + "dst.bin", "MISSING": prefix + "missing"}
    out = ferry(*[urls.get(a, a) for a in argv], "--state-dir", state_dir, "-q")
    assert out.returncode == code, (out.stdout, out.stderr)
    assert re.search(re.escape(urls[message]) if message in urls else message, one_line(out.stderr)), out.stderr
    assert s3a.read_bytes(urls["SRC"]) == data
    assert_nothing_left(s3a, prefix, state_dir, {urls["SRC"]})


# -- the operator under dag.test() ------------------------------------------------------------
def test_copy_operator_in_a_dag_run(airflow_db, s3a, s3b, gcs, state_dir, monkeypatch) -> None:
    """``same_store``: one connection, server-side part copies; ``cross_store``: two connections
    (SeaweedFS B -> GCS), the pipeline. Each task's XCom is its row."""
    from tests.conftest import run_dag

    prefix = unique_prefix()
    same_data, cross_data = os.urandom(3 * PART + 5), os.urandom(2 * PART + 7)
    same_src = seed(s3a, f"s3://{S3_BUCKET}/{prefix}same-src.bin", same_data)
    same_dst = f"s3://{S3_BUCKET}/{prefix}same-dst.bin"
    cross_src = seed(s3b, f"s3://{S3_BUCKET}/{prefix}cross-src.bin", cross_data)
    cross_dst = f"gs://{GCS_BUCKET}/{prefix}cross-dst.bin"
    env = {
        "FERRY_COPY_STATE_DIR": state_dir,
        "FERRY_COPY_SAME_SOURCE": same_src,
        "FERRY_COPY_SAME_DEST": same_dst,
        "FERRY_COPY_CONN": S3_CONN,
        "FERRY_COPY_CROSS_SOURCE": cross_src,
        "FERRY_COPY_CROSS_DEST": cross_dst,
        "FERRY_COPY_SRC_CONN": S3_B_CONN,
        "FERRY_COPY_DST_CONN": GCS_CONN,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    run = run_dag("ferry_test_copy")
    assert run.state == "success"
    same = run.get_task_instance("same_store").xcom_pull(task_ids="same_store")
    assert same["result"] == "OK" and same["source"] == same_src and same["destination"] == same_dst
    assert same["description"].startswith("server-side") and "4 part" in same["description"]
    assert same["bytes_transferred"] == 0 and same["upload_id"]
    assert same["crc32c"] == crc32c_hex(same_data) == s3a.head(same_dst).crc32c
    assert s3a.read_bytes(same_dst) == same_data
    cross = run.get_task_instance("cross_store").xcom_pull(task_ids="cross_store")
    assert cross["result"] == "OK" and cross["source"] == cross_src and cross["destination"] == cross_dst
    assert cross["description"].startswith("pipeline") and cross["bytes_transferred"] == len(cross_data)
    assert cross["crc32c"] == crc32c_hex(cross_data) == gcs.head(cross_dst).crc32c
    assert gcs.read_bytes(cross_dst) == cross_data
    assert gcs.head(cross_dst).content_type == CONTENT_TYPE
    assert_nothing_left(s3a, f"s3://{S3_BUCKET}/{prefix}", state_dir, {same_src, same_dst})
    assert_nothing_left(gcs, f"gs://{GCS_BUCKET}/{prefix}", state_dir, {cross_dst})


# -- a source that changes --------------------------------------------------------------------
@pytest.mark.parametrize("case", ["pipeline-destination-s3", "server-side-s3"])
def test_a_source_changed_between_runs_is_copied_afresh_and_the_stale_upload_goes(
    request, state_dir, case: str
) -> None:
    """Run 1 fails with parts kept for a resume; the source is then rewritten (same size). The
    rerun must not join the old parts to the new bytes, and must not leave the old upload."""
    s = faulty(request, case)
    proxy = s["proxy"]
    multipart = {"part_size": s["part"], "multipart_copy_threshold": PART, "parallelism": 1}
    failed_copy(s["src_hook"], s["dst_hook"], s["src"], s["dst"], state_dir, resume=True, **multipart)
    assert landed(case, proxy) == 2
    new = os.urandom(len(s["data"]))
    seed(s["src_view"] if case == "server-side-s3" else s["src_hook"], s["src"], new)
    proxy.reset()
    row = run_copy(s["src_hook"], s["dst_hook"], s["src"], s["dst"], state_dir, resume=True, **multipart)
    assert_copied(row, s["view"], s["dst"], new)
    assert_nothing_left(s["view"], s["dst_prefix"], state_dir, {s["dst"]} | s["beside"])


@pytest.mark.parametrize("restart_on_change", [False, True], ids=["fails", "restarts"])
@pytest.mark.parametrize("mode", ["pipeline", "server-side"])
def test_a_source_rewritten_mid_copy_is_never_published_mixed(
    s3_proxy, s3b, state_dir, mode: str, restart_on_change: bool
) -> None:
    """The source is rewritten (same size) while its parts are being read (pipeline: ranged
    GETs; server-side: UploadPartCopy): the copy fails naming the source, or with
    restart_on_change starts over once and publishes the new bytes; never a mix."""
    via_proxy, direct, proxy = s3_proxy
    prefix = unique_prefix()
    old, new = os.urandom(6 * PART), os.urandom(6 * PART)
    src = seed(direct, f"s3://{PROXY_BUCKET}/{prefix}src.bin", old)
    if mode == "pipeline":
        dst_hook, view, dst = s3b, s3b, f"s3://{S3_BUCKET}/{prefix}dst.bin"
        method, only = "GET", f"{prefix}src.bin"
    else:
        dst_hook, view, dst = via_proxy, direct, f"s3://{PROXY_BUCKET}/{prefix}dst.bin"
        method, only = "PUT", "partNumber="
    # The first part is done; the next ones are held until the source has been rewritten.
    f = proxy.faults
    f.stall_methods, f.stall_after_requests, f.stall_times, f.only_path = (method,), 1, 10**6, only
    outcome: dict = {}

    def run() -> None:
        try:
            outcome["row"] = run_copy(
                via_proxy,
                dst_hook,
                src,
                dst,
                state_dir,
                part_size=PART,
                multipart_copy_threshold=PART,
                parallelism=2,
                restart_on_change=restart_on_change,
            )
        except FerryError as exc:
            outcome["error"] = exc

    def part_done(p: FaultProxy) -> bool:
        return p.held >= 1 and any(r.method == method and only in r.path for r in p.records)

    worker = threading.Thread(target=run)
    worker.start()
    try:
        assert proxy.wait_until(part_done, timeout=60)
        assert [r.status for r in proxy.records if r.method == method and only in r.path] == [
            206 if method == "GET" else 200
        ]  # one part done, the others held
        seed(direct, src, new)
    finally:
        proxy.release_stalls()  # the held requests are cut; their retries meet the new version
        worker.join(120)
    assert not worker.is_alive()
    prefix_url = dst.rsplit("/", 1)[0] + "/"
    beside = {src} if mode == "server-side" else set()
    if restart_on_change:
        row = outcome.get("row")
        assert row is not None, outcome
        assert_copied(row, view, dst, new)
        assert "changed" in row.description or "restart" in row.description, row.description
        assert_nothing_left(view, prefix_url, state_dir, {dst} | beside)
    else:
        exc = outcome.get("error")
        assert exc is not None, outcome
        assert "changed" in exc.row.description and src in exc.row.description, exc.row.description
        assert not exists(view, dst)
        # A resumable failure may keep its upload, but only with the tracker that finds it again.
        assert list(view.list_multipart_uploads(prefix_url)) == [] or os.listdir(state_dir)


# -- bounded memory ---------------------------------------------------------------------------
# Runs the CLI's main() and then records the process's peak resident memory. VmHWM belongs to
# the address space exec created; a parent's rusage of the child would not do: Linux carries the
# forking parent's peak (pytest's, with this module's 100 MiB) into the child's ru_maxrss.
_MEASURED = (
    "import os, sys\n"
    "from ferry_provider.cli import main\n"
    "try:\n"
    "    code = main(sys.argv[1:])\n"
    "finally:\n"
    "    with open('/proc/self/status') as f:\n"
    "        hwm = next(line for line in f if line.startswith('VmHWM:'))\n"
    "    with open(os.environ['FERRY_TEST_HWM'], 'w') as f:\n"
    "        f.write(hwm.split()[1])\n"
    "sys.exit(code)\n"
)


def ferry_with_peak_rss(tmp_path, *argv: str) -> tuple[subprocess.CompletedProcess[str], float]:
    """Run ``ferry``; return its result and its peak resident memory in MiB."""
    hwm = tmp_path / "hwm"
    env = {**os.environ, "FERRY_TEST_HWM": str(hwm)}
    done = subprocess.run(
        [sys.executable, "-c", _MEASURED, *argv], capture_output=True, text=True, timeout=300, env=env
    )
    return done, int(hwm.read_text()) / 1024


def test_a_pipeline_copy_holds_parts_not_the_object(s3a, http_server, state_dir, big: bytes, tmp_path) -> None:
    """HTTP -> S3, 100 MiB in 5 MiB parts, two at a time: the process grows by a few parts'
    worth over the same command doing nothing but a HEAD, never by the object's size."""
    url, root, _ = http_server
    prefix = unique_prefix()
    os.makedirs(os.path.join(root, prefix))
    with open(os.path.join(root, prefix, "big.bin"), "wb") as f:
        f.write(big)
    src, dst = f"{url}/{prefix}big.bin", f"s3://{S3_BUCKET}/{prefix}big.bin"
    common = ["--dst-conn", S3_CONN, "--state-dir", state_dir, "-q", "-j", "2", "--part-size", "5MiB"]
    # The same command, imports and connections, with a source that fails at its HEAD.
    idle, idle_rss = ferry_with_peak_rss(tmp_path, "cp", f"{url}/{prefix}missing.bin", dst, *common)
    assert idle.returncode == 1, idle.stderr
    done, rss = ferry_with_peak_rss(tmp_path, "cp", src, dst, *common)
    assert done.returncode == 0, done.stderr
    assert s3a.head(dst).crc32c == crc32c_hex(big) and s3a.read_bytes(dst) == big
    print(f"peak RSS: {rss:.0f} MiB copying, {idle_rss:.0f} MiB failing at the HEAD")
    assert rss - idle_rss < 60, f"{rss - idle_rss:.0f} MiB more than the idle command for 2 x 5 MiB parts"
    assert_nothing_left(s3a, f"s3://{S3_BUCKET}/{prefix}", state_dir, {dst})
