"""The parallel ranged download engine against real servers, with faults through a real proxy."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from typing import Any

import boto3
import pytest
from boto3.s3.transfer import TransferConfig

from ferry_provider.hooks.digests import b64_to_hex
from ferry_provider.hooks.errors import ChecksumMismatchError, SourceChangedError
from ferry_provider.hooks.s3 import FerryS3Hook
from ferry_provider.transfer.checkpoint import Checkpoint, current_boot
from ferry_provider.transfer.download import DownloadOptions, download
from ferry_provider.transfer.manifest import ERROR, OK, SKIP, TransferError
from ferry_provider.transfer.retry import RetryPolicy
from tests.conftest import GCS_CONN, PROXY_BUCKET, S3_CONN, make_gcs_bucket, make_s3_bucket, put_object
from tests.servers.seaweedfs import S3Endpoint
from tests.stores import MiB, Store, crc32c_hex, http_store, local_store, unique_prefix

BUCKET = "ferry-download"
PART = 1 * MiB
FAST_RETRY = RetryPolicy(attempts=4, initial_wait=0.05, max_wait=0.2)


def opts(**kw) -> DownloadOptions:
    kw.setdefault("part_size", PART)
    kw.setdefault("parallelism", 4)
    kw.setdefault("retry", FAST_RETRY)
    return DownloadOptions(**kw)


@pytest.fixture(params=["s3", "gcs", "http", "local"])
def store(request, tmp_path_factory) -> Store:
    kind = request.param
    if kind == "s3":
        make_s3_bucket(request.getfixturevalue("seaweedfs"), BUCKET)
        return Store("s3", FerryS3Hook(S3_CONN), f"s3://{BUCKET}/{unique_prefix()}")
    if kind == "gcs":
        from ferry_provider.hooks.gcs import FerryGCSHook

        make_gcs_bucket(request.getfixturevalue("gcs_endpoint"), BUCKET)
        return Store("gcs", FerryGCSHook(GCS_CONN), f"gs://{BUCKET}/{unique_prefix()}")
    if kind == "http":
        url, root, _ = request.getfixturevalue("http_server")
        return http_store(url, root)
    return local_store(str(tmp_path_factory.mktemp("local-src")))


def assert_clean(directory) -> None:
    """No temporary or tracker file is left beside the destination."""
    leftovers = [n for n in os.listdir(directory) if ".ferry-" in n]
    assert leftovers == []


@pytest.mark.parametrize(
    "size", [0, 1, PART - 1, PART, PART + 1, 3 * PART + 12345], ids=["0", "1", "part-1", "part", "part+1", "3parts+"]
)
def test_bytes_are_identical_for_every_size(store: Store, tmp_path, size: int) -> None:
    data = os.urandom(size)
    url = store.seed("obj", data)
    row = download(store.hook, url, str(tmp_path / "out.bin"), opts())
    assert (tmp_path / "out.bin").read_bytes() == data
    assert row.result == OK
    assert row.source_size == size == row.bytes_transferred
    assert row.crc32c == crc32c_hex(data)
    if store.keeps_crc32c:
        assert "verified size and crc32c" in row.description
    assert_clean(tmp_path)


def test_large_object_in_parallel_parts(store: Store, tmp_path) -> None:
    size = 105 * MiB + 17
    data = os.urandom(size)
    if store.hook.capabilities.multipart_upload:
        store.join([data[i : i + 16 * MiB] for i in range(0, size, 16 * MiB)], "big")
        url = store.url("big")
    else:
        url = store.seed("big", data)
    row = download(store.hook, url, str(tmp_path / "big.bin"), opts(part_size=16 * MiB, parallelism=4))
    assert row.result == OK
    assert hashlib.sha256((tmp_path / "big.bin").read_bytes()).digest() == hashlib.sha256(data).digest()
    assert row.crc32c == crc32c_hex(data)
    if store.keeps_crc32c:
        assert "crc32c" in row.description


def test_destination_directory_gets_the_key_basename_and_parents_are_created(store: Store, tmp_path) -> None:
    url = store.seed("nested/name.txt", b"payload")
    row = download(store.hook, url, str(tmp_path / "a" / "b") + "/", opts())
    assert row.destination == str(tmp_path / "a" / "b" / "name.txt")
    assert (tmp_path / "a" / "b" / "name.txt").read_bytes() == b"payload"


def test_existing_identical_destination_is_a_skip(seaweedfs, tmp_path) -> None:
    make_s3_bucket(seaweedfs, BUCKET)
    hook = FerryS3Hook(S3_CONN)
    data = os.urandom(3 * PART)
    url = f"s3://{BUCKET}/{unique_prefix()}same"
    hook.put(url, data, crc32c=crc32c_hex(data))
    dest = tmp_path / "same.bin"
    assert download(hook, url, str(dest), opts()).result == OK
    again = download(hook, url, str(dest), opts())
    assert again.result == SKIP and "identical" in again.description and again.bytes_transferred == 0
    dest.write_bytes(b"x" * len(data))  # same size, different bytes: transferred again
    assert download(hook, url, str(dest), opts()).result == OK
    assert dest.read_bytes() == data
    dest.write_bytes(b"other")
    clobber = download(hook, url, str(dest), opts(no_clobber=True))
    assert clobber.result == SKIP and "no_clobber" in clobber.description
    assert dest.read_bytes() == b"other"


def test_expected_digest_mismatch_leaves_nothing(http_server, tmp_path) -> None:
    url, root, _ = http_server
    data = os.urandom(2 * PART + 5)
    with open(os.path.join(root, "digest.bin"), "wb") as f:
        f.write(data)
    good = hashlib.sha256(data).hexdigest()
    from ferry_provider.hooks.http import FerryHTTPHook

    hook = FerryHTTPHook()
    row = download(hook, f"{url}/digest.bin", str(tmp_path / "ok.bin"), opts(expected_digests={"sha256": good}))
    assert row.result == OK and "sha256" in row.description
    with pytest.raises(TransferError) as err:
        download(hook, f"{url}/digest.bin", str(tmp_path / "bad.bin"), opts(expected_digests={"sha256": "00" * 32}))
    assert isinstance(err.value.cause, ChecksumMismatchError)
    assert f"expected {'00' * 32}, got {good}" in str(err.value)
    assert err.value.row.result == ERROR
    assert not (tmp_path / "bad.bin").exists()
    assert_clean(tmp_path)
    with pytest.raises(TransferError, match="expected 5 bytes, the source has"):
        download(hook, f"{url}/digest.bin", str(tmp_path / "bad.bin"), opts(expected_size=5))


def test_server_without_ranges_falls_back_to_one_stream(http_server, tmp_path) -> None:
    url, root, _log = http_server
    data = os.urandom(3 * PART + 3)
    with open(os.path.join(root, "whole.bin"), "wb") as f:
        f.write(data)
    from ferry_provider.hooks.http import FerryHTTPHook

    row = download(
        FerryHTTPHook(),
        f"{url}/norange/whole.bin",
        str(tmp_path / "w.bin"),
        opts(expected_digests={"md5": hashlib.md5(data).hexdigest()}),
    )
    assert (tmp_path / "w.bin").read_bytes() == data
    assert row.result == OK and "md5" in row.description


# -- S3 composite (per-part) checksums ---------------------------------------------------------
def put_multipart(
    client: Any, bucket: str, sizes: list[int], algorithm: str | None = "CRC32C", full_object: bool = False
) -> tuple[str, bytes, str]:
    """A multipart object in parts of ``sizes`` (uneven, so a layout guessed from the first part
    would be wrong) -> (url, bytes, the stored checksum: base64 CRC, or the ETag without one).
    By default stored with a COMPOSITE CRC32C, as SDKs write it."""
    key = f"{unique_prefix()}multipart.bin"
    with_crc = {"ChecksumAlgorithm": algorithm} if algorithm else {}
    typed = {"ChecksumType": "FULL_OBJECT"} if full_object else {}
    upload = client.create_multipart_upload(Bucket=bucket, Key=key, **with_crc, **typed)["UploadId"]
    data, parts = b"", []
    for number, size in enumerate(sizes, start=1):
        chunk = os.urandom(size)
        data += chunk
        resp = client.upload_part(Bucket=bucket, Key=key, UploadId=upload, PartNumber=number, Body=chunk, **with_crc)
        entry = {"PartNumber": number, "ETag": resp["ETag"]}
        if algorithm:
            entry[f"Checksum{algorithm}"] = resp[f"Checksum{algorithm}"]
        parts.append(entry)
    done = client.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload, MultipartUpload={"Parts": parts})
    if not algorithm:
        return f"s3://{bucket}/{key}", data, done["ETag"].strip('"')
    stored = done[f"Checksum{algorithm}"]
    assert done["ChecksumType"] == ("FULL_OBJECT" if full_object else "COMPOSITE")
    assert stored.endswith(f"-{len(sizes)}") != full_object
    return f"s3://{bucket}/{key}", data, stored


COMPOSITE_SIZES = [5 * MiB, 6 * MiB + 17, 5 * MiB + 3]


def test_composite_checksum_is_verified_through_the_part_layout(seaweedfs, tmp_path) -> None:
    make_s3_bucket(seaweedfs, BUCKET)
    hook = FerryS3Hook(S3_CONN)
    url, data, stored = put_multipart(hook.client, BUCKET, COMPOSITE_SIZES)
    assert hook.head(url).crc32c == b64_to_hex(stored)  # e.g. "1a2b3c4d-3"
    assert hook.part_sizes(url, hook.head(url)) == COMPOSITE_SIZES
    row = download(hook, url, str(tmp_path / "c.bin"), opts(part_size=2 * MiB, parallelism=3))
    assert (tmp_path / "c.bin").read_bytes() == data
    assert row.result == OK
    assert "verified size and composite crc32c of 3 parts" in row.description
    assert row.crc32c == crc32c_hex(data)  # the manifest still carries the whole object's CRC32C
    assert_clean(tmp_path)


def test_flipped_byte_in_a_composite_object_fails_with_no_file(s3_proxy, tmp_path) -> None:
    via_proxy, direct, proxy = s3_proxy
    url, _data, stored = put_multipart(direct.client, PROXY_BUCKET, COMPOSITE_SIZES)
    proxy.faults.flip_offset = 5 * MiB + 4242  # inside part 2
    with pytest.raises(TransferError) as err:
        download(via_proxy, url, str(tmp_path / "c.bin"), opts(part_size=2 * MiB))
    assert f"composite crc32c of 3 parts mismatch: expected {b64_to_hex(stored)}, got " in str(err.value)
    assert not (tmp_path / "c.bin").exists()
    assert_clean(tmp_path)


@pytest.mark.parametrize("algorithm", ["CRC32C", None], ids=["composite-crc32c", "multipart-etag"])
def test_an_object_uploaded_in_one_part_is_verified_by_its_per_part_value(seaweedfs, tmp_path, algorithm) -> None:
    """A one-part upload's per-part value ("...-1") covers the whole object: no layout to ask."""
    make_s3_bucket(seaweedfs, BUCKET)
    hook = FerryS3Hook(S3_CONN)
    url, data, _ = put_multipart(hook.client, BUCKET, [700 * 1024 + 3], algorithm)
    row = download(hook, url, str(tmp_path / "one.bin"), opts(part_size=MiB))
    assert (tmp_path / "one.bin").read_bytes() == data and row.result == OK
    kind = "composite crc32c of 1 part" if algorithm else "md5 of 1 part (multipart ETag)"
    assert row.description == f"verified size and {kind}"
    assert_clean(tmp_path)


def test_flipped_byte_in_a_one_part_upload_fails_with_no_file(s3_proxy, tmp_path) -> None:
    via_proxy, direct, proxy = s3_proxy
    url, _data, stored = put_multipart(direct.client, PROXY_BUCKET, [700 * 1024 + 3])
    proxy.faults.flip_offset = 4242
    with pytest.raises(TransferError) as err:
        download(via_proxy, url, str(tmp_path / "one.bin"), opts(part_size=MiB))
    assert f"composite crc32c of 1 part mismatch: expected {b64_to_hex(stored)}, got " in str(err.value)
    assert not (tmp_path / "one.bin").exists()
    assert_clean(tmp_path)


# -- the other digests S3 keeps: CRC32, CRC64NVME, multipart ETags ---------------------------
def sdk_client(endpoint: S3Endpoint) -> Any:
    """A boto3 client with the SDK's defaults (it sends CRC32 checksums), unlike Ferry's own."""
    return boto3.client(
        "s3",
        endpoint_url=endpoint.url,
        aws_access_key_id=endpoint.access_key,
        aws_secret_access_key=endpoint.secret_key,
        region_name=endpoint.region,
    )


def put_by_writer(endpoint: S3Endpoint, bucket: str, writer: str) -> tuple[str, bytes, str]:
    """An object as ``writer`` leaves it -> (url, bytes, what a download must say it verified)."""
    direct = FerryS3Hook(S3_CONN).client
    if writer == "boto3 put_object":  # the SDK's default: a full-object CRC32
        url, data = f"s3://{bucket}/{unique_prefix()}put.bin", os.urandom(3 * PART + 11)
        sdk_client(endpoint).put_object(Bucket=bucket, Key=url.split("/", 3)[3], Body=data)
        return url, data, "crc32"
    if writer == "boto3 upload_fileobj":  # TransferManager multipart: a composite CRC32
        url, data = f"s3://{bucket}/{unique_prefix()}tm.bin", os.urandom(12 * MiB + 5)
        config = TransferConfig(multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB)
        sdk_client(endpoint).upload_fileobj(io.BytesIO(data), bucket, url.split("/", 3)[3], Config=config)
        return url, data, "composite crc32 of 3 parts"
    if writer == "full-object CRC64NVME multipart":
        url, data, _ = put_multipart(direct, bucket, COMPOSITE_SIZES, "CRC64NVME", full_object=True)
        return url, data, "crc64nvme"
    url, data, _ = put_multipart(direct, bucket, COMPOSITE_SIZES, algorithm=None)  # no checksum at all
    return url, data, "md5 of 3 parts (multipart ETag)"


WRITERS = ["boto3 put_object", "boto3 upload_fileobj", "full-object CRC64NVME multipart", "multipart without checksums"]


@pytest.mark.parametrize("writer", WRITERS)
def test_every_digest_s3_keeps_is_verified(seaweedfs, tmp_path, writer: str) -> None:
    make_s3_bucket(seaweedfs, BUCKET)
    url, data, verified = put_by_writer(seaweedfs, BUCKET, writer)
    row = download(FerryS3Hook(S3_CONN), url, str(tmp_path / "o.bin"), opts(part_size=2 * MiB, parallelism=3))
    assert (tmp_path / "o.bin").read_bytes() == data
    assert row.description == f"verified size and {verified}"
    assert row.crc32c == crc32c_hex(data)
    again = download(FerryS3Hook(S3_CONN), url, str(tmp_path / "o.bin"), opts())
    assert again.result == SKIP and again.description == f"destination is identical (same size and {verified})"
    assert_clean(tmp_path)


@pytest.mark.parametrize("writer", WRITERS)
def test_a_flipped_byte_fails_whichever_digest_s3_keeps(s3_proxy, seaweedfs, tmp_path, writer: str) -> None:
    via_proxy, _direct, proxy = s3_proxy
    url, data, verified = put_by_writer(seaweedfs, PROXY_BUCKET, writer)
    proxy.faults.flip_offset = len(data) - 4242  # in the last part
    with pytest.raises(TransferError) as err:
        download(via_proxy, url, str(tmp_path / "o.bin"), opts(part_size=2 * MiB))
    assert isinstance(err.value.cause, ChecksumMismatchError)
    assert f"{verified} mismatch: expected " in str(err.value)
    assert not (tmp_path / "o.bin").exists()
    assert_clean(tmp_path)


def test_part_sizes_come_from_part_heads_when_attributes_are_refused(s3_proxy, tmp_path) -> None:
    via_proxy, direct, proxy = s3_proxy
    url, data, etag = put_multipart(direct.client, PROXY_BUCKET, COMPOSITE_SIZES, algorithm=None)
    # A bucket policy without s3:GetObjectAttributes; AWS itself lists no parts for such an object.
    proxy.faults.error_status, proxy.faults.error_times, proxy.faults.only_path = 403, 1000, "?attributes"
    row = download(via_proxy, url, str(tmp_path / "o.bin"), opts(part_size=2 * MiB))
    assert (tmp_path / "o.bin").read_bytes() == data
    assert row.description == "verified size and md5 of 3 parts (multipart ETag)"
    assert any(r.status == 403 for r in proxy.records)
    heads = [r.path for r in proxy.records if r.method == "HEAD" and "partNumber=" in r.path]
    assert sorted(path.split("partNumber=")[1][:1] for path in heads) == ["1", "2", "3"]
    assert etag.endswith("-3")


def test_a_multipart_etag_is_hashed_part_by_part_while_streaming(s3_proxy, tmp_path) -> None:
    via_proxy, direct, proxy = s3_proxy
    sizes = [5 * MiB] * 5 + [MiB + 7]
    url, data, _ = put_multipart(direct.client, PROXY_BUCKET, sizes, algorithm=None)
    # The first cut falls on the (shorter) layout request; the next two cut ranges 6 MiB in,
    # inside their second upload part: the retry must go on with that part's MD5.
    proxy.faults.cut_after, proxy.faults.cut_times = 6 * MiB, 3
    row = download(via_proxy, url, str(tmp_path / "o.bin"), opts(part_size=10 * MiB, parallelism=3))
    assert (tmp_path / "o.bin").read_bytes() == data
    assert row.description == "verified size and md5 of 6 parts (multipart ETag)"
    ranges = [(0, 10 * MiB), (10 * MiB, 20 * MiB), (20 * MiB, len(data))]  # two whole upload parts each
    asked = sorted(tuple(int(n) for n in r.range.split("=")[1].split("-")) for r in proxy.records if r.range)
    retried = [(start, end + 1) for start, end in asked if (start, end + 1) not in ranges]
    assert {(start, end + 1) for start, end in asked} - set(retried) == set(ranges)
    assert len(retried) == 2 and all((start - 6 * MiB, end) in ranges for start, end in retried)


def test_per_part_md5s_survive_in_the_tracker_for_a_resume(s3_proxy, tmp_path) -> None:
    via_proxy, direct, proxy = s3_proxy
    url, data, _ = put_multipart(direct.client, PROXY_BUCKET, COMPOSITE_SIZES, algorithm=None)
    dest = tmp_path / "o.bin"
    # The layout GET and two parts go through, then every GET fails: one part is left to fetch.
    proxy.faults.error_status, proxy.faults.error_times, proxy.faults.error_after_requests = 503, 1000, 3
    with pytest.raises(TransferError):
        download(via_proxy, url, str(dest), opts(parallelism=1))
    tracker = Checkpoint.peek(str(next(tmp_path.glob("*.ferry-tracker"))))
    assert [[len(md5) for md5 in p["md5"]] for p in tracker.parts.values()] == [[32], [32]]
    proxy.reset()
    row = download(via_proxy, url, str(dest), opts(parallelism=1))
    assert dest.read_bytes() == data
    assert row.description == (
        "verified size and md5 of 3 parts (multipart ETag); resumed: 2 part(s) reused (re-hashed on disk)"
    )
    assert row.bytes_transferred == COMPOSITE_SIZES[2]


# -- faults through the proxy -----------------------------------------------------------------
def test_flipped_byte_fails_with_no_file_at_the_destination(s3_proxy, tmp_path) -> None:
    via_proxy, direct, proxy = s3_proxy
    url, data = put_object(direct, 3 * PART + 100)
    proxy.faults.flip_offset = 2 * PART + 7
    with pytest.raises(TransferError) as err:
        download(via_proxy, url, str(tmp_path / "flipped.bin"), opts())
    assert "crc32c mismatch: expected " + crc32c_hex(data) in str(err.value)
    assert not (tmp_path / "flipped.bin").exists()
    assert_clean(tmp_path)


def test_cut_connections_resume_at_the_last_good_byte(s3_proxy, tmp_path) -> None:
    via_proxy, direct, proxy = s3_proxy
    url, data = put_object(direct, 4 * PART)
    proxy.faults.cut_after, proxy.faults.cut_times = 300_000, 2
    row = download(via_proxy, url, str(tmp_path / "cut.bin"), opts(parallelism=1))
    assert (tmp_path / "cut.bin").read_bytes() == data
    ranges = [r.range for r in proxy.records if r.method == "GET"]
    # The two cut parts were continued from byte 300000 of their part, not restarted.
    assert "bytes=300000-1048575" in ranges
    assert proxy.body_bytes("GET") == len(data)
    assert row.bytes_transferred == len(data)


def test_throttling_is_retried_honouring_retry_after(s3_proxy, tmp_path) -> None:
    via_proxy, direct, proxy = s3_proxy
    url, data = put_object(direct, 2 * PART)
    proxy.faults.error_status, proxy.faults.error_times, proxy.faults.retry_after = 503, 2, "1"
    started = time.monotonic()
    download(via_proxy, url, str(tmp_path / "throttled.bin"), opts(parallelism=1))
    assert (tmp_path / "throttled.bin").read_bytes() == data
    assert [r.status for r in proxy.records if r.method == "GET"][:2] == [503, 503]
    assert time.monotonic() - started >= 1.0  # botocore or Ferry waited for Retry-After


def test_persistent_failure_names_the_part_and_keeps_state_for_resume(s3_proxy, tmp_path) -> None:
    via_proxy, direct, proxy = s3_proxy
    url, data = put_object(direct, 3 * PART)
    proxy.faults.cut_after, proxy.faults.cut_times, proxy.faults.only_path = 1000, 100, url.split("/", 3)[3]
    dest = tmp_path / "fails.bin"
    with pytest.raises(TransferError, match=r"part \d \(bytes \d+-\d+\): gave up after 4 attempts") as err:
        download(via_proxy, url, str(dest), opts(parallelism=1))
    assert err.value.row.result == ERROR
    assert not dest.exists()
    assert (tmp_path / "fails.bin.ferry-tracker").exists() and (tmp_path / "fails.bin.ferry-tmp").exists()
    proxy.reset()
    row = download(via_proxy, url, str(dest), opts(parallelism=1))
    assert dest.read_bytes() == data and row.result == OK
    assert_clean(tmp_path)


def test_source_overwritten_mid_download_is_detected(s3_proxy, tmp_path) -> None:
    via_proxy, direct, _proxy = s3_proxy
    url, _data = put_object(direct, 8 * PART)
    overwritten = threading.Event()
    gate = threading.Lock()  # every worker reports progress through here: all pause for the overwrite

    def overwrite_midway(done: int, total: int | None) -> None:
        # Called by the engine as bytes arrive: once 2 of 8 parts are in, a producer rewrites it.
        with gate:
            if done < 2 * PART or overwritten.is_set():
                return
            overwritten.set()
            direct.put(url, os.urandom(8 * PART))

    with pytest.raises(TransferError, match="changed since it was examined") as err:
        download(via_proxy, url, str(tmp_path / "moving.bin"), opts(parallelism=2, progress_callback=overwrite_midway))
    assert overwritten.is_set()
    assert isinstance(err.value.cause, SourceChangedError)
    assert not (tmp_path / "moving.bin").exists()
    assert_clean(tmp_path)
    # With restart_on_change the new version is fetched whole and verified.
    newer = os.urandom(5 * PART)
    direct.put(url, newer, crc32c=crc32c_hex(newer))
    row = download(via_proxy, url, str(tmp_path / "moving.bin"), opts(restart_on_change=True))
    assert (tmp_path / "moving.bin").read_bytes() == newer and row.result == OK


def test_sigkill_mid_download_then_resume_fetches_only_the_missing_parts(s3_proxy, tmp_path) -> None:
    via_proxy, direct, proxy = s3_proxy
    part = 2 * MiB
    url, data = put_object(direct, 24 * MiB)
    proxy.faults.delay_per_chunk = 0.004  # ~16 MiB/s per connection: several seconds in all
    dest = tmp_path / "killed.bin"
    tracker = tmp_path / "killed.bin.ferry-tracker"
    argv = [
        sys.executable,
        "-m",
        "ferry_provider.cli",
        "cp",
        url,
        str(dest),
        "--conn",
        "ferry_proxy_s3",
        "-j",
        "2",
        "--part-size",
        "2MiB",
        "--quiet",
    ]
    child = subprocess.Popen(argv, env=os.environ.copy(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    done_parts: dict = {}
    while time.monotonic() < deadline:
        if tracker.exists():
            try:
                done_parts = Checkpoint.peek(str(tracker)).parts
            except ValueError:
                done_parts = {}
            if len(done_parts) >= 3:
                break
        time.sleep(0.05)
    child.send_signal(signal.SIGKILL)
    child.wait(10)
    assert len(done_parts) >= 3, child.stderr.read().decode()
    assert not dest.exists()
    assert oct(tracker.stat().st_mode & 0o777) == "0o600"
    done_parts = Checkpoint.peek(str(tracker)).parts  # as the killed process left it
    time.sleep(1.5)  # let the dead client's requests all reach the proxy: reset() then disowns them
    proxy.reset()
    row = download(via_proxy, url, str(dest), opts(part_size=part, parallelism=2))
    assert dest.read_bytes() == data
    assert row.result == OK and f"resumed: {len(done_parts)} part(s) reused" in row.description
    expected = len(data) - sum(p["size"] for p in done_parts.values())
    assert proxy.body_bytes("GET") == expected == row.bytes_transferred
    assert_clean(tmp_path)


def leave_damaged_resume_state(hook: FerryS3Hook, url: str, data: bytes, dest, boot: str | None) -> None:
    """A tracker (written in ``boot``) that says parts 0-3 are done, over a temp file whose part 1
    was damaged on disk."""
    pin = hook.head(url)
    identity = {"source": url, "size": pin.size, "etag": pin.etag, "version": pin.version, "part_size": PART}
    damaged = bytearray(data)
    damaged[PART + 5] ^= 0xFF
    (dest.parent / f"{dest.name}.ferry-tmp").write_bytes(bytes(damaged))
    parts = {}
    for i in range(4):
        chunk = data[i * PART : (i + 1) * PART]
        parts[i] = {"crc32c": int(crc32c_hex(chunk), 16), "size": len(chunk)}
    Checkpoint(str(dest.parent / f"{dest.name}.ferry-tracker"), identity, parts, boot=boot).save()


def test_verify_on_resume_refetches_a_damaged_part(s3_proxy, tmp_path) -> None:
    via_proxy, direct, proxy = s3_proxy
    url, data = put_object(direct, 4 * PART)
    dest = tmp_path / "damaged.bin"
    leave_damaged_resume_state(direct, url, data, dest, boot=current_boot())
    row = download(via_proxy, url, str(dest), opts(parallelism=1, verify_on_resume=True))
    assert dest.read_bytes() == data
    assert proxy.body_bytes("GET") == PART  # only the damaged part was fetched again
    assert "resumed: 3 part(s) reused" in row.description


def test_a_tracker_from_before_a_reboot_has_its_parts_rechecked(s3_proxy, tmp_path) -> None:
    """Parts are recorded once in the page cache; a crash can lose them, so after a reboot the
    tracker's word is checked against the disk even without verify_on_resume."""
    via_proxy, direct, proxy = s3_proxy
    url, data = put_object(direct, 4 * PART)
    dest = tmp_path / "after-crash.bin"
    leave_damaged_resume_state(direct, url, data, dest, boot="0f0e0d0c-an-earlier-boot")
    row = download(via_proxy, url, str(dest), opts(parallelism=1))
    assert dest.read_bytes() == data
    assert proxy.body_bytes("GET") == PART
    assert "resumed: 3 part(s) reused" in row.description


def test_verify_on_resume_follows_an_uneven_part_layout(s3_proxy, tmp_path) -> None:
    """Re-hashed ranges are the plan's, which follow the upload's uneven parts, not index x size."""
    via_proxy, direct, proxy = s3_proxy
    url, data, _ = put_multipart(direct.client, PROXY_BUCKET, COMPOSITE_SIZES)
    dest = tmp_path / "layout.bin"
    # Ranges of 2 MiB inside the parts: [0,2) [2,4) [4,5) | [5,7) ... MiB. The attributes GET and
    # ranges 0-4 go through, then the proxy fails every GET until the download gives up.
    proxy.faults.error_status, proxy.faults.error_times, proxy.faults.error_after_requests = 503, 1000, 6
    with pytest.raises(TransferError):
        download(via_proxy, url, str(dest), opts(part_size=2 * MiB, parallelism=1))
    done = Checkpoint.peek(str(tmp_path / "layout.bin.ferry-tracker")).parts
    assert sorted(done) == [0, 1, 2, 3, 4]
    with open(tmp_path / "layout.bin.ferry-tmp", "r+b") as tmp:  # damage range 3, which starts at 5 MiB
        tmp.seek(5 * MiB + 10)
        tmp.write(bytes([data[5 * MiB + 10] ^ 0xFF]))
    proxy.reset()
    row = download(via_proxy, url, str(dest), opts(part_size=2 * MiB, parallelism=1, verify_on_resume=True))
    assert dest.read_bytes() == data
    reused = sum(p["size"] for p in done.values()) - 2 * MiB
    ranged_bytes = sum(r.body_bytes for r in proxy.records if r.method == "GET" and r.range)
    assert ranged_bytes == len(data) - reused  # range 3 again, and those never fetched
    assert "resumed: 4 part(s) reused" in row.description


@pytest.fixture
def tiny_disk(tmp_path):
    """A real 2 MiB filesystem (tmpfs), where this machine lets us mount one."""
    mount_point = tmp_path / "tiny"
    mount_point.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount_point)], capture_output=True, check=False
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {done.stderr.decode().strip()}")
    yield mount_point
    subprocess.run(["umount", str(mount_point)], check=False)


def test_disk_full_fails_early_and_clearly_leaving_nothing(seaweedfs, tiny_disk) -> None:
    make_s3_bucket(seaweedfs, BUCKET)
    hook = FerryS3Hook(S3_CONN)
    data = os.urandom(3 * PART)
    url = f"s3://{BUCKET}/{unique_prefix()}too-big"
    hook.put(url, data, crc32c=crc32c_hex(data))
    with pytest.raises(TransferError, match=r"not enough disk space: need 3145728 bytes, \d+ free"):
        download(hook, url, str(tiny_disk / "too-big.bin"), opts())
    assert os.listdir(tiny_disk) == []


def test_stream_of_unknown_length(http_server, tmp_path) -> None:
    """A chunked answer with no Content-Length: one stream, written with pwrite, checked by digest."""
    url, root, _ = http_server
    data = os.urandom(3 * PART + 77)
    with open(os.path.join(root, "dynamic.bin"), "wb") as f:
        f.write(data)
    from ferry_provider.hooks.http import FerryHTTPHook

    hook = FerryHTTPHook()
    assert hook.head(f"{url}/chunked/dynamic.bin").size is None
    row = download(
        hook,
        f"{url}/chunked/dynamic.bin",
        str(tmp_path / "dyn.bin"),
        opts(expected_digests={"sha256": hashlib.sha256(data).hexdigest()}),
    )
    assert (tmp_path / "dyn.bin").read_bytes() == data
    assert row.result == OK and row.bytes_transferred == len(data) and "sha256" in row.description
    assert_clean(tmp_path)


# -- leftovers at Ferry's own names beside the destination (hostile review) --------------------
def seeded_s3(seaweedfs, size: int) -> tuple[FerryS3Hook, str, bytes]:
    make_s3_bucket(seaweedfs, BUCKET)
    hook = FerryS3Hook(S3_CONN)
    data = os.urandom(size)
    url = f"s3://{BUCKET}/{unique_prefix()}obj"
    hook.put(url, data, crc32c=crc32c_hex(data))
    return hook, url, data


PRECIOUS = b"precious, not Ferry's"


def outside_victim(tmp_path, exists: bool = True):
    (tmp_path / "outside").mkdir()
    victim = tmp_path / "outside" / "victim"
    if exists:
        victim.write_bytes(PRECIOUS)
        os.chmod(victim, 0o640)
    return victim


def assert_victim_untouched(victim, existed: bool) -> None:
    if existed:
        assert victim.read_bytes() == PRECIOUS, "the object was written into a file outside the destination"
        assert victim.stat().st_mode & 0o777 == 0o640
    else:
        assert not victim.exists(), "the download created a file outside the destination folder"


@pytest.mark.parametrize("kind", ["symlink", "dangling-symlink", "hard-link"])
def test_a_link_left_at_the_temp_path_is_never_written_through(seaweedfs, tmp_path, kind: str) -> None:
    """A ``<dest>.ferry-tmp`` with no tracker beside it (a killed one-stream run, or planted) is
    of no use: it must be replaced, not opened and truncated in place, which follows a symbolic
    link (or shares a hard link's inode) and writes the object into a file outside the
    destination folder, then renames the link itself to the destination."""
    hook, url, data = seeded_s3(seaweedfs, 1000)
    victim = outside_victim(tmp_path, exists=kind != "dangling-symlink")
    folder = tmp_path / "dest"
    folder.mkdir()
    leftover = folder / "out.bin.ferry-tmp"
    if kind == "hard-link":
        os.link(victim, leftover)
    else:
        os.symlink(victim, leftover)
    row = download(hook, url, str(folder / "out.bin"), opts())
    assert row.result == OK
    assert_victim_untouched(victim, existed=kind != "dangling-symlink")
    dest = folder / "out.bin"
    assert not dest.is_symlink(), f"the destination is a symbolic link to {os.readlink(dest)}"
    assert dest.read_bytes() == data and dest.stat().st_nlink == 1
    assert_clean(folder)


def test_a_symlink_left_at_the_tracker_rewrite_path_is_never_written_through(seaweedfs, tmp_path) -> None:
    """A ``<dest>.ferry-tracker.new`` with no tracker: the first tracker write of a ranged
    download must not follow it (it wrote the tracker's JSON over a file outside the folder and
    made it mode 0600)."""
    hook, url, data = seeded_s3(seaweedfs, 3 * PART)
    victim = outside_victim(tmp_path)
    folder = tmp_path / "dest"
    folder.mkdir()
    os.symlink(victim, folder / "out.bin.ferry-tracker.new")
    row = download(hook, url, str(folder / "out.bin"), opts())
    assert row.result == OK and (folder / "out.bin").read_bytes() == data
    assert_victim_untouched(victim, existed=True)
    assert_clean(folder)


def test_a_leftover_temp_file_this_user_cannot_write_does_not_fail_every_rerun(seaweedfs, tmp_path) -> None:
    """A killed run as another user (root, say) leaves a 0600 temp file and no tracker. Replacing
    it needs only the folder's write permission; opening it for writing fails with Permission
    denied, before the clean-up, so every rerun fails the same way."""
    _, url, data = seeded_s3(seaweedfs, 1000)
    leftover = tmp_path / "out.bin.ferry-tmp"
    leftover.write_bytes(b"partial")
    os.chmod(leftover, 0o400)
    argv = [sys.executable, "-m", "ferry_provider.cli", "cp", url, str(tmp_path / "out.bin"), "--conn", S3_CONN]
    if os.geteuid() == 0:  # root writes any file: take away the capabilities that let it
        if shutil.which("setpriv") is None:
            pytest.skip("running as root without setpriv to drop CAP_DAC_OVERRIDE")
        argv = ["setpriv", "--bounding-set=-dac_override,-dac_read_search,-fowner", *argv]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300, env=os.environ.copy())
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "out.bin").read_bytes() == data
    assert_clean(tmp_path)


def test_a_download_started_from_a_progress_callback_does_not_share_the_read_buffer(seaweedfs, tmp_path) -> None:
    """progress_callback runs on the downloading thread between a read and its pwrite. A download
    it starts (same thread) reused the thread's module-level buffer, so the outer file got the
    inner object's bytes while its streamed CRC, computed before, still matched: published as
    verified, corrupt."""
    hook, outer_url, outer = seeded_s3(seaweedfs, 3 * PART)
    _, inner_url, inner = seeded_s3(seaweedfs, 2 * PART)
    fired: list[int] = []

    def on_progress(done: int, total: int | None) -> None:
        if not fired:
            fired.append(done)
            # One stream (no parts), on this same thread.
            download(hook, inner_url, str(tmp_path / "inner.bin"), opts(part_size=4 * PART))

    outer_opts = opts(part_size=4 * PART, progress_callback=on_progress)  # one stream, on this thread
    row = download(hook, outer_url, str(tmp_path / "outer.bin"), outer_opts)
    assert (tmp_path / "inner.bin").read_bytes() == inner
    assert row.result == OK
    assert (tmp_path / "outer.bin").read_bytes() == outer, "published as verified with another object's bytes"
