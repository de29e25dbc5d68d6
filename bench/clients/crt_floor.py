"""Child process: W3's floor for a Python engine. Small objects fetched by awscrt's S3 client
(HTTP in C, on its own event-loop thread, many GETs in flight and no thread waiting on any), with
the work Ferry does for each object in a bulk download and nothing more: the writer's lock file,
the MD5 checked against the listed ETag, a CRC32C, an O_EXCL temp file written and fsynced, the
rename and the folder's fsync. No manifest, retries, resume or link control.

It is not a tool and not Ferry: it says how close to s5cmd any Python path keeping those
guarantees can come on this machine (bench/small_objects.md).

argv: ENDPOINT BUCKET PREFIX DEST (a plain-HTTP endpoint; keys from the environment). Prints
{"seconds": .., "baseline_rss": ..}: the transfer only (imports and the listing are not timed).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import queue
import sys
import threading
import time

import boto3
from awscrt import http, io, s3
from botocore.config import Config

from bench.common import vm_hwm
from ferry_provider.hooks.s3_sigv4 import PROBE_KEY, BucketTarget, SigV4Signer
from ferry_provider.transfer.checksums import crc32c

IN_FLIGHT = 64
WRITERS = 2


def main() -> None:
    endpoint, bucket, prefix, dest = sys.argv[1:5]
    client = boto3.client("s3", endpoint_url=endpoint, config=Config(signature_version="s3v4"))
    listed = [
        (item["Key"], item["ETag"].strip('"'))
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        for item in page.get("Contents", [])
    ]
    target = BucketTarget.from_presigned(
        client.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": PROBE_KEY})
    )
    assert target is not None and target.scheme == "http", "a plain-HTTP endpoint is needed"
    frozen = client._request_signer._credentials.get_frozen_credentials()
    keys = (frozen.access_key, frozen.secret_key, frozen.token)
    signer = SigV4Signer()
    loop = io.EventLoopGroup(1)
    crt = s3.S3Client(
        bootstrap=io.ClientBootstrap(loop, io.DefaultHostResolver(loop)),
        region=target.region,
        tls_mode=s3.S3RequestTlsMode.DISABLED,
    )
    baseline = vm_hwm()
    started = time.perf_counter()

    fetched: queue.SimpleQueue[tuple[str, str, bytes] | None] = queue.SimpleQueue()
    room = threading.Semaphore(IN_FLIGHT)
    failures: list[str] = []

    def write() -> None:
        while (job := fetched.get()) is not None:
            try:
                publish(os.path.join(dest, job[0][len(prefix) :]), job[1], job[2])
            except Exception as exc:
                failures.append(f"{job[0]}: {exc}")
            room.release()

    writers = [threading.Thread(target=write) for _ in range(WRITERS)]
    for t in writers:
        t.start()
    for key, etag in listed:
        room.acquire()
        request_target, headers = signer.sign("GET", target, target.path(key), {}, {"If-Match": f'"{etag}"'}, keys)
        chunks: list[bytes] = []

        def done(
            error: BaseException | None = None,
            key: str = key,
            etag: str = etag,
            chunks: list[bytes] = chunks,
            **_: object,
        ) -> None:
            if error is not None:
                failures.append(f"{key}: {error}")
                room.release()
            else:
                fetched.put((key, etag, b"".join(chunks)))

        crt.make_request(
            type=s3.S3RequestType.DEFAULT,
            operation_name="GetObject",
            request=http.HttpRequest("GET", request_target, http.HttpHeaders(list(headers.items()))),
            on_body=lambda chunk, chunks=chunks, **_: chunks.append(chunk),
            on_done=done,
        )
    for _ in range(IN_FLIGHT):
        room.acquire()
    for _ in writers:
        fetched.put(None)
    for t in writers:
        t.join()
    seconds = time.perf_counter() - started
    if failures:
        raise SystemExit(f"{len(failures)} object(s) failed, first: {failures[0]}")
    print(json.dumps({"seconds": seconds, "baseline_rss": baseline}))


def publish(path: str, etag: str, body: bytes) -> None:
    """Ferry's per-object steps for a small download, in the same order."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    lock = os.open(path + ".ferry-lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.pwrite(lock, f"{os.getpid():<15}\n".encode(), 0)
        if os.path.lexists(path):
            raise FileExistsError(path)
        if hashlib.md5(body).hexdigest() != etag:
            raise ValueError("MD5 does not match the ETag")
        crc32c(body)
        tmp = path + ".ferry-tmp"
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            view = memoryview(body)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
            os.fchmod(fd, 0o644)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        folder = os.open(os.path.dirname(path), os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)
    finally:
        os.unlink(path + ".ferry-lock")
        os.close(lock)


if __name__ == "__main__":
    main()
