"""The storage contract: the same cases against SeaweedFS, the GCS emulator, HTTP and local files."""

from __future__ import annotations

import os

import pytest

from ferry_provider.hooks.errors import (
    InvalidArgumentError,
    InvalidRangeError,
    NotFoundError,
    PreconditionFailedError,
    ReadOnlyStoreError,
    SourceChangedError,
)
from tests.conftest import GCS_CONN, S3_CONN, make_gcs_bucket, make_s3_bucket
from tests.stores import MiB, Store, crc32c_hex, http_store, local_store, unique_prefix

BUCKET = "ferry-contract"
STORES = ["s3", "gcs", "http", "local"]


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Store:
    kind = request.param
    if kind == "s3":
        from ferry_provider.hooks.s3 import FerryS3Hook

        endpoint = request.getfixturevalue("seaweedfs")
        make_s3_bucket(endpoint, BUCKET)
        return Store("s3", FerryS3Hook(S3_CONN), f"s3://{BUCKET}/{unique_prefix()}")
    if kind == "gcs":
        from ferry_provider.hooks.gcs import FerryGCSHook

        endpoint = request.getfixturevalue("gcs_endpoint")
        make_gcs_bucket(endpoint, BUCKET)
        return Store("gcs", FerryGCSHook(GCS_CONN), f"gs://{BUCKET}/{unique_prefix()}", detects_same_size_change=False)
    if kind == "http":
        url, root, _ = request.getfixturevalue("http_server")
        return http_store(url, root)
    return local_store(str(tmp_path_factory.mktemp("local-store")))


def test_head_of_missing_object_is_not_found(store: Store) -> None:
    with pytest.raises(NotFoundError) as err:
        store.hook.head(store.url("missing"))
    assert "missing" in str(err.value)


def test_head_reports_size_and_validators(store: Store) -> None:
    data = os.urandom(1000)
    url = store.seed("obj", data)
    info = store.hook.head(url)
    assert info.size == 1000
    assert info.etag
    if store.keeps_crc32c:
        assert info.crc32c == crc32c_hex(data)


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (0, 1, slice(0, 1)),  # first byte
        (999, 1000, slice(999, 1000)),  # last byte
        (100, 300, slice(100, 300)),  # middle
        (0, None, slice(0, 1000)),  # whole object
        (0, 1000, slice(0, 1000)),  # whole object as an explicit range
        (900, 5000, slice(900, 1000)),  # end past the end is clipped
        (500, None, slice(500, 1000)),  # open-ended
    ],
)
def test_ranged_reads_return_exact_bytes(store: Store, start: int, end: int | None, expected: slice) -> None:
    data = os.urandom(1000)
    url = store.seed("ranged", data)
    pin = store.hook.head(url)
    assert store.hook.read_bytes(url, start, end) == data[expected]
    assert store.hook.read_bytes(url, start, end, pin) == data[expected]


def test_range_starting_past_the_end_is_invalid(store: Store) -> None:
    url = store.seed("short", b"0123456789")
    with pytest.raises(InvalidRangeError):
        store.hook.read_bytes(url, 10, 20)
    with pytest.raises(InvalidRangeError):
        store.hook.read_bytes(url, 50, None)


def test_negative_or_inverted_range_is_rejected_before_any_request(store: Store) -> None:
    url = store.url("never-requested")
    with pytest.raises(InvalidArgumentError, match="start must be >= 0"):
        store.hook.open_range(url, -1, 5)
    with pytest.raises(InvalidArgumentError, match="before its start"):
        store.hook.open_range(url, 10, 5)


@pytest.mark.parametrize("data", [b"", b"x"], ids=["zero-byte", "one-byte"])
def test_tiny_objects(store: Store, data: bytes) -> None:
    url = store.seed("tiny", data)
    pin = store.hook.head(url)
    assert pin.size == len(data)
    assert store.hook.read_bytes(url) == data
    assert store.hook.read_bytes(url, pin=pin) == data


def test_reader_refuses_to_return_more_than_the_range(store: Store) -> None:
    data = os.urandom(4096)
    url = store.seed("reader", data)
    with store.hook.open_range(url, 1000, 2000) as reader:
        buf = bytearray(8192)
        got = bytearray()
        while n := reader.readinto(buf):
            got += buf[:n]
    assert bytes(got) == data[1000:2000]


def test_put_then_head(store: Store) -> None:
    data = os.urandom(3000)
    url = store.url("written")
    if not store.hook.capabilities.writable:
        with pytest.raises(ReadOnlyStoreError, match="read-only"):
            store.hook.put(url, data)
        return
    put_info = store.hook.put(
        url, data, crc32c=crc32c_hex(data), metadata={"origin": "ferry-test"}, content_type="application/x-test"
    )
    info = store.hook.head(url)
    assert info.size == put_info.size == 3000
    assert store.hook.read_bytes(url) == data
    if store.keeps_crc32c:
        assert info.crc32c == crc32c_hex(data)
        assert info.metadata.get("origin") == "ferry-test"
        assert info.content_type == "application/x-test"


def test_put_if_absent_refuses_to_overwrite(store: Store) -> None:
    if not store.hook.capabilities.writable or store.name == "gcs":
        pytest.skip("read-only store" if store.name == "http" else "the GCS emulator ignores ifGenerationMatch")
    url = store.url("once")
    store.hook.put(url, b"first", if_absent=True)
    with pytest.raises(PreconditionFailedError):
        store.hook.put(url, b"second", if_absent=True)
    assert store.hook.read_bytes(url) == b"first"


def test_put_from_a_stream(store: Store, tmp_path) -> None:
    if not store.hook.capabilities.writable:
        pytest.skip("read-only store")
    data = os.urandom(2 * MiB + 7)
    path = tmp_path / "src"
    path.write_bytes(data)
    url = store.url("streamed")
    with open(path, "rb") as f:
        store.hook.put(url, f, size=len(data))
    assert store.hook.read_bytes(url) == data


def test_composite_join_of_three_parts(store: Store) -> None:
    caps = store.hook.capabilities
    if not (caps.multipart_upload or caps.can_compose):
        with pytest.raises(InvalidArgumentError):
            store.hook.compose([store.url("a"), store.url("b")], store.url("joined"))
        return
    # S3 parts other than the last must be at least 5 MiB; the other stores take any size.
    size = caps.min_part_size or 1000
    parts = [os.urandom(size), os.urandom(size), os.urandom(17)]
    info = store.join(parts, "joined")
    whole = b"".join(parts)
    assert info.size == len(whole)
    assert store.hook.read_bytes(store.url("joined")) == whole
    if store.keeps_crc32c:
        assert store.hook.head(store.url("joined")).crc32c == crc32c_hex(whole)


def test_server_side_copy(store: Store) -> None:
    data = os.urandom(5000)
    src = store.seed("copy-src", data)
    if not store.hook.capabilities.server_side_copy:
        with pytest.raises(InvalidArgumentError):
            store.hook.copy(src, store.url("copy-dst"))
        return
    info = store.hook.copy(src, store.url("copy-dst"), pin=store.hook.head(src))
    assert info.size == 5000
    assert store.hook.read_bytes(store.url("copy-dst")) == data


def test_list_pages_through_a_prefix(store: Store) -> None:
    if store.name == "http":
        with pytest.raises(InvalidArgumentError, match="no listing"):
            list(store.hook.list(store.url("")))
        return
    keys = ["dir/a", "dir/b", "dir/c/d", "dir/e", "dir-x", "dirz"]
    for k in keys:
        store.seed(k, k.encode())
    listed = [info.url for info in store.hook.list(store.url("dir/"), page_size=2)]
    assert listed == [store.url(k) for k in ["dir/a", "dir/b", "dir/c/d", "dir/e"]]
    # Order across folders is the store's: S3 lists in byte order, SeaweedFS folder by folder.
    everything = [info.url for info in store.hook.list(store.url(""), page_size=2)]
    assert sorted(everything) == sorted(store.url(k) for k in keys)
    assert len(everything) == len(keys)
    sizes = {info.url: info.size for info in store.hook.list(store.url("dir/c"))}
    assert sizes == {store.url("dir/c/d"): 7}


def test_delete_is_idempotent(store: Store) -> None:
    url = store.seed("doomed", b"bye")
    if not store.hook.capabilities.writable:
        with pytest.raises(ReadOnlyStoreError):
            store.hook.delete(url)
        return
    store.hook.delete(url)
    with pytest.raises(NotFoundError):
        store.hook.head(url)
    store.hook.delete(url)


@pytest.mark.parametrize("same_size", [False, True], ids=["new-size", "same-size"])
def test_pinned_read_after_the_source_changed(store: Store, same_size: bool) -> None:
    if same_size and not store.detects_same_size_change:
        pytest.skip("the GCS emulator ignores ifGenerationMatch; real GCS answers 412")
    old = os.urandom(4000)
    url = store.seed("moving", old)
    pin = store.hook.head(url)
    assert store.hook.read_bytes(url, 0, 100, pin) == old[:100]
    store.seed("moving", os.urandom(4000 if same_size else 4100))
    with pytest.raises(SourceChangedError):
        store.hook.read_bytes(url, 0, 100, pin)
    with pytest.raises(SourceChangedError):
        store.hook.read_bytes(url, 2000, None, pin)
