"""Download benchmark: one object on a local SeaweedFS, fetched to tmpfs by Ferry and its peers.

    python -m bench.download [--size-mib 1024] [--rounds 3] [--parallelism 8 4] [--dest-dir DIR]
                             [--seeded-as {crc32c,etag}]

The object is stored with a full-object CRC32C (as Ferry uploads), or with ``--seeded-as etag``
in 8 MiB parts with no checksum (as older SDKs and most other tools leave it), so that only its
multipart ETag can prove it. Ferry (validation on), boto3 download_file (defaults), s5cmd cp and rclone copyto run
against the same server in the same run, alternated, and the medians and ratios are printed
with each client's peak RSS. "server ceiling" is parallel ranged GETs that throw the bytes away
(no file, no checksum): what this server can deliver at all, which bounds every client here.
Every client reads the endpoint and keys from AWS_* variables; none loads Airflow.
Not a test: it asserts only that every client produced the bytes.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import sys

from bench.common import (
    BENCH_DIR,
    Contender,
    MiB,
    fresh_scratch,
    print_table,
    run_rounds,
    start_store,
    stop_store,
)

BUCKET = "ferry-bench"
KEY = "big.bin"


def seed_object(hook: object, size: int, seeded_as: str) -> str:
    """Write ``size`` random bytes to SeaweedFS as one multipart object with a full-object CRC32C,
    or (``etag``) in 8 MiB parts without any checksum; return their SHA-256."""
    if seeded_as == "etag":
        return seed_without_checksums(hook.client, size)  # type: ignore[attr-defined]
    return seed_crc32c(hook, KEY, size)[0]


def seed_crc32c(hook: object, key: str, size: int) -> tuple[str, int]:
    """``size`` random bytes at ``key`` in 64 MiB parts with a full-object CRC32C, as Ferry
    uploads; returns their SHA-256 and CRC32C."""
    from ferry_provider.transfer import checksums

    part = 64 * MiB
    url = f"s3://{BUCKET}/{key}"
    upload_id = hook.create_multipart(url)  # type: ignore[attr-defined]
    parts, crc, digest = [], 0, hashlib.sha256()
    for number, offset in enumerate(range(0, size, part), start=1):
        chunk = os.urandom(min(part, size - offset))
        crc = checksums.crc32c(chunk, crc)
        digest.update(chunk)
        parts.append(
            hook.upload_part(
                url,
                upload_id,
                number,
                chunk,
                size=len(chunk),  # type: ignore[attr-defined]
                crc32c=checksums.hex32(checksums.crc32c(chunk)),
            )
        )
    hook.complete_multipart(url, upload_id, parts, crc32c=checksums.hex32(crc), size=size)  # type: ignore[attr-defined]
    return digest.hexdigest(), crc


def seed_without_checksums(client: object, size: int, part: int = 8 * MiB) -> str:
    """What aws-cli and boto3 wrote before 2025: 8 MiB parts, nothing but the multipart ETag."""
    upload_id = client.create_multipart_upload(Bucket=BUCKET, Key=KEY)["UploadId"]  # type: ignore[attr-defined]
    parts, digest = [], hashlib.sha256()
    for number, offset in enumerate(range(0, size, part), start=1):
        chunk = os.urandom(min(part, size - offset))
        digest.update(chunk)
        resp = client.upload_part(Bucket=BUCKET, Key=KEY, UploadId=upload_id, PartNumber=number, Body=chunk)  # type: ignore[attr-defined]
        parts.append({"PartNumber": number, "ETag": resp["ETag"]})
    client.complete_multipart_upload(  # type: ignore[attr-defined]
        Bucket=BUCKET, Key=KEY, UploadId=upload_id, MultipartUpload={"Parts": parts}
    )
    return digest.hexdigest()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--parallelism", type=int, nargs="+", default=[8, 4])
    parser.add_argument("--only-ferry", action="store_true", help="skip the peers (RSS checks on big objects)")
    parser.add_argument("--dest-dir", default=None, help="write here instead of tmpfs (e.g. a real disk)")
    parser.add_argument("--seeded-as", choices=["crc32c", "etag"], default="crc32c", help="what the store keeps")
    args = parser.parse_args()
    size = args.size_mib * MiB
    scratch = fresh_scratch()
    workdir = os.path.join(BENCH_DIR, "seaweedfs")
    proc, endpoint = start_store(workdir)
    try:
        from ferry_provider.hooks.s3_store import S3Store

        hook = S3Store()
        hook.client.create_bucket(Bucket=BUCKET)
        print(f"seeding a {args.size_mib} MiB object on SeaweedFS ...", flush=True)
        expected = seed_object(hook, size, args.seeded_as)
        verified = "crc32c" if args.seeded_as == "crc32c" else "multipart ETag"
        dest_dir = args.dest_dir or scratch
        os.makedirs(dest_dir, exist_ok=True)
        dest = os.path.join(dest_dir, "ferry-bench-out.bin")
        py = sys.executable
        bin_dir = os.path.dirname(py)
        contenders = [
            Contender(
                f"ferry -j{p} ({verified} verified)",
                [
                    py,
                    "-m",
                    "bench.clients.ferry_get",
                    f"s3://{BUCKET}/{KEY}",
                    dest,
                    str(p),
                ],
                reports_own_time=True,
            )
            for p in args.parallelism
        ]
        if not args.only_ferry:
            contenders += [
                Contender(
                    "boto3 download_file",
                    [py, "-m", "bench.clients.boto3_get", endpoint.url, BUCKET, KEY, dest],
                    reports_own_time=True,
                ),
                Contender(
                    "s5cmd cp",
                    [
                        os.path.join(bin_dir, "s5cmd"),
                        "--endpoint-url",
                        endpoint.url,
                        "cp",
                        f"s3://{BUCKET}/{KEY}",
                        dest,
                    ],
                ),
                Contender(
                    "rclone copyto",
                    [
                        os.path.join(bin_dir, "rclone"),
                        "--config",
                        os.devnull,
                        "copyto",
                        f":s3,provider=Other,endpoint='{endpoint.url}',access_key_id={endpoint.access_key},"
                        f"secret_access_key='{endpoint.secret_key}':{BUCKET}/{KEY}",
                        dest,
                    ],
                ),
            ]

            contenders.append(
                Contender(
                    f"server ceiling x{max(args.parallelism)} (bytes discarded)",
                    [py, "-m", "bench.clients.null_get", endpoint.url, BUCKET, KEY, str(max(args.parallelism))],
                    reports_own_time=True,
                )
            )

        def check_and_remove(c: Contender) -> None:
            if not os.path.exists(dest) and c.name.startswith("server ceiling"):
                return
            with open(dest, "rb") as f:
                if hashlib.file_digest(f, "sha256").hexdigest() != expected:
                    raise RuntimeError(f"{c.name} produced different bytes")
            os.unlink(dest)

        run_rounds(contenders, args.rounds, after_each=check_and_remove)
        print_table(contenders, size, contenders[0].name)
    finally:
        stop_store(proc, workdir)
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
